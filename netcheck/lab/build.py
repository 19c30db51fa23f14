"""Build the lab, start its agents, write its state; and take it all down again."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from typing import Any

from netcheck.lab import cassandra as cassandra_lab
from netcheck.lab import control_plane, image, kubebuild, mgmt_standin, net, operator
from netcheck.lab.javac import compiled
from netcheck.lab.net import LabError
from netcheck.lab.spec import (
    MGMT_HOST,
    MGMT_NET,
    MGMT_NS,
    TRANSIT_NET,
    LabHost,
    LabSpec,
    cluster_nets,
    default_spec,
    lab_hosts,
    spec_to_dict,
)

STATE_DIR_ENV = "NETCHECK_LAB_DIR"
DEFAULT_STATE_DIR = "/run/netcheck-lab"
AGENT_API_PORT = 9925
WAN_NS = "ncl-wan"
NOBODY = "65534"


def state_dir() -> str:
    return os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR)


def state_path() -> str:
    return os.path.join(state_dir(), "state.json")


def load_state() -> dict[str, Any] | None:
    try:
        with open(state_path(), encoding="utf-8") as f:
            state: dict[str, Any] = json.load(f)
            return state
    except (OSError, ValueError):
        return None


def save_state(state: dict[str, Any]) -> None:
    tmp = state_path() + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2)
    os.replace(tmp, state_path())


def require_state() -> dict[str, Any]:
    state = load_state()
    if state is None:
        raise LabError("the lab is not up: run `netcheck lab up` first")
    return state


def _healthy(state: dict[str, Any]) -> bool:
    have = set(net.lab_namespaces())
    if not all(h["namespace"] in have for h in state["hosts"]):
        return False
    if state.get("cassandra") and not (
        cassandra_lab.cluster_running(state, state_dir()) and mgmt_standin.all_running(state)
    ):
        return False
    if state.get("kubernetes") and not control_plane.all_ready(state["kubernetes"]):
        return False
    return all(_agent_alive(h["mgmt_address"]) for h in _with_lab_agent(state))


def _with_lab_agent(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The hosts whose agent the lab starts itself: all of them, except the Kubernetes nodes
    of a lab with Kubernetes, where the netcheck DaemonSet's pods are the agents."""
    skip = set(state.get("node_hosts") or ())
    return [h for h in state["hosts"] if h["name"] not in skip]


def _agent_alive(mgmt_address: str) -> bool:
    try:
        with urllib.request.urlopen(
            f"http://{mgmt_address}:{AGENT_API_PORT}/healthz", timeout=1
        ) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


CQL_READY_S = 120.0


def lab_up(
    spec: LabSpec | None = None,
    *,
    timeout_s: float = 60.0,
    raw: bool = True,
    cassandra: bool = False,
    cassandra_timeout_s: float = 600.0,
    kubernetes: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Build the lab; returns (state, built). Idempotent: a healthy lab of the same spec stays.

    raw: agents hold CAP_NET_RAW (and nothing else) for raw probes; without it they run
    with no capability at all, as an agent deployed without the raw-probes component.
    cassandra: every database pod runs a real Cassandra node (see lab/cassandra.py) and the
    Management API stand-in on 8080 (lab/mgmt_standin.py); Cassandra owns 7000 (and 7001
    where the spec asks), and the pod's agent serves no port.
    """
    net.require_root_and_tools()
    spec = spec or default_spec()
    state = load_state()
    if (
        state is not None
        and state["spec"] == spec_to_dict(spec)
        and state.get("raw", False) == raw
        and bool(state.get("cassandra")) == cassandra
        and bool(state.get("kubernetes")) == kubernetes
        and _healthy(state)
    ):
        return state, False
    lib = cassandra_lab.ensure_runtime() if cassandra else None  # fail before building
    bins = kubebuild.build(kubebuild.bin_dir() + ".log") if kubernetes else None
    netpol = kubebuild.build_netpol(kubebuild.netpol_dir() + ".log") if kubernetes else None
    lab_down()
    os.makedirs(state_dir(), mode=0o755, exist_ok=True)
    try:
        save_state(_build(spec, raw, cassandra, kubernetes))
        state = require_state()  # as saved: one shape whether built now or read back
        _wait_agents(state, timeout_s)
        if bins is not None:
            state["kubernetes"] = control_plane.start(
                state["clusters"], state["hosts"], state_dir(), bins
            )
            save_state(state)
            control_plane.start_kubelets(state["kubernetes"], state_path())
            if netpol is not None:
                control_plane.start_enforcers(state["kubernetes"], state["hosts"], netpol)
        if lib is not None and bins is not None:
            state["cassandra"] = _cassandra_pods(state, lib, cassandra_timeout_s)
        elif lib is not None:
            # the Management API first: in a real pod it is the process that starts Cassandra
            mgmt_standin.start_all(state, state_dir())
            state["cassandra"] = cassandra_lab.start_cluster(
                state, state_dir(), lib, cassandra_timeout_s
            )
        if lib is not None:
            wait_cql(state, CQL_READY_S)
            # compiled now (javac once per source, cached), not during the first run
            compiled(
                cassandra_lab.NODETOOL_BATCH,
                state_dir(),
                cassandra_lab.classpath(state["cassandra"]["lib"]),
            )
            save_state(state)
    except BaseException:
        lab_down()
        raise
    return state, True


def wait_cql(state: dict[str, Any], timeout_s: float) -> None:
    """Until every database node accepts the lab's CQL login and lists all the others in
    system.peers_v2 (lab/cql_ready.py, in each node's namespace, all at once): the cluster a
    user runs netcheck against right after `lab up` answers as it will stay."""
    nodes = [h for h in state["hosts"] if h["role"] == "database"]
    procs = {
        h["name"]: subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                h["namespace"],
                sys.executable,
                "-m",
                "netcheck.lab.cql_ready",
                f"--address={h['address']}",
                f"--peers={len(nodes) - 1}",
                f"--timeout={timeout_s}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in nodes
    }
    failed = {}
    for name, proc in procs.items():
        try:
            _, err = proc.communicate(timeout=timeout_s + 30)
        except subprocess.TimeoutExpired:  # its own deadline is timeout_s: not expected
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode != 0:
            failed[name] = (
                err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
            )
    if failed:
        said = "; ".join(f"{n}: {why}" for n, why in sorted(failed.items()))
        raise LabError(f"CQL not ready within {timeout_s:.0f}s on {len(failed)} node(s): {said}")


def _cassandra_pods(state: dict[str, Any], lib: str, timeout_s: float) -> dict[str, Any]:
    """Cassandra in pods of the lab's Kubernetes clusters (lab/operator.py): the runtime and
    every node's configuration first (the pods' container reads them), then the objects; the
    StatefulSet controller, the scheduler and the lab kubelet do the rest."""
    started = time.monotonic()
    run_lib = cassandra_lab.install_runtime(lib, state_dir())
    classes = compiled(mgmt_standin.CLASS, state_dir())
    cassandra_lab.configure_all(state, state_dir())
    state["cassandra"] = operator.record(state, run_lib, classes)
    save_state(state)  # the lab kubelet reads the runtime's place from it
    asyncio.run(operator.install(state, state_dir()))
    operator.wait_started(state, state_dir(), timeout_s)
    cassandra_lab.wait_gossip(state, state_dir(), timeout_s - (time.monotonic() - started))
    asyncio.run(operator.label_pods(state, started=True))
    return {**state["cassandra"], "start_s": round(time.monotonic() - started, 1)}


def _build(spec: LabSpec, raw: bool, cassandra: bool, kubernetes: bool) -> dict[str, Any]:
    clusters = cluster_nets(spec)
    hosts = lab_hosts(spec, cassandra=cassandra)
    token_file = os.path.join(state_dir(), "agent-token")
    write_secret(token_file, secrets.token_hex(32) + "\n")
    # management network: host side <-> bridge in ncl-mgmt <-> every lab host's mgmt0
    net.add_namespace(MGMT_NS)
    net.ip(MGMT_NS, "link", "add", "br0", "type", "bridge")
    net.ip(MGMT_NS, "link", "set", "br0", "up")
    net.veth(None, net.ROOT_LINK, MGMT_NS, "host0")
    net.ip(None, "addr", "add", f"{MGMT_HOST}/{MGMT_NET.prefixlen}", "dev", net.ROOT_LINK)
    net.ip(None, "link", "set", net.ROOT_LINK, "up")
    net.ip(MGMT_NS, "link", "set", "host0", "master", "br0", "up")
    # WAN router and one router per cluster, each with a bridge for its hosts
    net.add_namespace(WAN_NS)
    net.sysctl(WAN_NS, "net.ipv4.ip_forward", "1")
    for c in clusters:
        net.add_namespace(c.router_ns)
        net.sysctl(c.router_ns, "net.ipv4.ip_forward", "1")
        net.ip(c.router_ns, "link", "add", "br0", "type", "bridge")
        net.ip(c.router_ns, "addr", "add", f"{c.router_address}/19", "dev", "br0")
        net.ip(c.router_ns, "link", "set", "br0", "up")
        net.veth(c.router_ns, "wan0", WAN_NS, f"to-{c.short}")
        net.ip(c.router_ns, "addr", "add", f"{c.transit_router}/30", "dev", "wan0")
        net.ip(WAN_NS, "addr", "add", f"{c.transit_wan}/30", "dev", f"to-{c.short}")
        net.ip(c.router_ns, "link", "set", "wan0", "up")
        net.ip(WAN_NS, "link", "set", f"to-{c.short}", "up")
        net.ip(WAN_NS, "route", "add", c.site, "via", c.transit_router)
    for c in clusters:
        # transit addresses are routed too: masqueraded traffic must find its way back
        net.ip(c.router_ns, "route", "add", TRANSIT_NET, "via", c.transit_wan)
        for other in clusters:
            if other.name != c.name:
                net.ip(c.router_ns, "route", "add", other.site, "via", c.transit_wan)
    router_of = {c.name: c for c in clusters}
    for i, h in enumerate(hosts):
        c = router_of[h.cluster]
        net.add_namespace(h.namespace)
        net.veth(h.namespace, "eth0", c.router_ns, f"h{i}")
        net.ip(c.router_ns, "link", "set", f"h{i}", "master", "br0", "up")
        if kubernetes and h.role == "database":
            # a Kubernetes node: its own address here, its pods' in namespaces of their own
            # behind it (lab/pods.py), which it routes to and answers ARP for
            net.ip(h.namespace, "addr", "add", f"{h.node_address}/19", "dev", "eth0")
            net.sysctl(h.namespace, "net.ipv4.ip_forward", "1")
            net.sysctl(h.namespace, "net.ipv4.conf.eth0.proxy_arp", "1")
        else:
            net.ip(h.namespace, "addr", "add", f"{h.address}/19", "dev", "eth0")
            if h.node_address:
                net.ip(h.namespace, "addr", "add", f"{h.node_address}/19", "dev", "eth0")
        net.ip(h.namespace, "link", "set", "eth0", "up")
        net.ip(h.namespace, "route", "add", "default", "via", c.router_address)
        net.veth(h.namespace, "mgmt0", MGMT_NS, f"m{i}")
        net.ip(MGMT_NS, "link", "set", f"m{i}", "master", "br0", "up")
        net.ip(h.namespace, "addr", "add", f"{h.mgmt_address}/{MGMT_NET.prefixlen}", "dev", "mgmt0")
        net.ip(h.namespace, "link", "set", "mgmt0", "up")
    allow = [c.site for c in clusters]
    if cassandra:
        _write_cql_secret()
    node_hosts = [h.name for h in hosts if kubernetes and h.role == "database"]
    for h in hosts:
        if h.name not in node_hosts:
            _start_agent(h, token_file, allow, raw)
        elif h.node_serve:
            _start_agent(h, token_file, [], False, nodeport_only=True)
    return {
        "spec": spec_to_dict(spec),
        "raw": raw,
        "clusters": [asdict(c) for c in clusters],
        "hosts": [asdict(h) for h in hosts],
        "token_file": token_file,
        "node_hosts": node_hosts,
        "faults": [],
        "next_fault": 1,
    }


def cql_secret_dir() -> str:
    """Where the lab's agents find their CQL login, laid out like a mounted Secret."""
    return os.path.join(state_dir(), "cql")


def _write_cql_secret() -> None:
    """Cassandra's default superuser, which the lab's nodes keep (PasswordAuthenticator)."""
    os.makedirs(cql_secret_dir(), mode=0o700, exist_ok=True)
    os.chown(cql_secret_dir(), int(NOBODY), int(NOBODY))
    for key, value in (("username", "cassandra"), ("password", "cassandra")):
        write_secret(os.path.join(cql_secret_dir(), key), value + "\n")


def write_secret(path: str, text: str) -> None:
    """A file only the lab's agents (nobody) and root can read: 0600, owned by nobody."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with open(fd, "w", encoding="utf-8") as f:
        os.fchmod(fd, 0o600)  # also when the file was there before
        os.fchown(fd, int(NOBODY), int(NOBODY))
        f.write(text)


NODEPORT_API_PORT = 9926  # the NodePort stand-in's API: 9925 is the DaemonSet agent's


def _start_agent(
    h: LabHost, token_file: str, allow: list[str], raw: bool, nodeport_only: bool = False
) -> None:
    """The lab's agent on host h. nodeport_only: on a Kubernetes node of the lab, only what
    kube-proxy would answer at the node's address (the Vector NodePort 30600 on the control
    plane), probing nothing; the DaemonSet's agent pod does the rest."""
    # setsid --fork detaches the agent; teardown finds it through its namespace. It runs as
    # nobody with CAP_NET_RAW alone (ambient, so it survives the exec of Python) or nothing.
    caps = (
        ["--inh-caps=-all,+net_raw", "--ambient-caps=+net_raw", "--bounding-set=-all,+net_raw"]
        if raw
        else ["--inh-caps=-all", "--bounding-set=-all"]
    )
    cmd = [
        "setsid",
        "--fork",
        "ip",
        "netns",
        "exec",
        h.namespace,
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        *caps,
        sys.executable,
        "-m",
        "netcheck",
        "agent",
        "--bind",
        h.mgmt_address,
        "--api-port",
        str(NODEPORT_API_PORT if nodeport_only else AGENT_API_PORT),
        "--serve-bind",
        h.node_address if nodeport_only else "0.0.0.0",
        "--token-file",
        token_file,
        "--name",
        f"{h.name}-nodeport" if nodeport_only else h.name,
        "--rate",
        "1000",
        "--cql-credentials",  # optional, as the Secret mount is: there with --cassandra only
        cql_secret_dir(),
    ]
    for port, mode in h.node_serve if nodeport_only else (*h.serve, *h.node_serve):
        cmd += ["--serve", f"{port}:{mode}"]
    for cidr in allow:
        cmd += ["--allow", cidr]
    name = f"{h.name}-nodeport" if nodeport_only else h.name
    log = open(os.path.join(state_dir(), f"agent-{name}.log"), "ab")  # noqa: SIM115
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd="/", check=True)
    finally:
        log.close()


def _wait_agents(state: dict[str, Any], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = {h["name"]: h["mgmt_address"] for h in _with_lab_agent(state)}
    while waiting and time.monotonic() < deadline:
        waiting = {n: a for n, a in waiting.items() if not _agent_alive(a)}
        if waiting:
            time.sleep(0.2)
    if waiting:
        names = ", ".join(sorted(waiting))
        raise LabError(
            f"lab agents did not start within {timeout_s:.0f}s: {names} "
            f"(see {state_dir()}/agent-*.log)"
        )


def lab_down() -> list[str]:
    removed = net.teardown_everything()
    # the working containers of the image-backed pods (lab/image.py), after their processes
    removed += [f"container {n}" for n in image.release_all()]
    if os.path.isdir(state_dir()):
        shutil.rmtree(state_dir(), ignore_errors=True)
    return removed
