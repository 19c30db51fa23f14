"""The lab's real Kubernetes control planes (`netcheck lab up --kubernetes`): kube-apiserver,
etcd, kube-controller-manager and kube-scheduler v1.34.4, built from the Go module proxy.

Nothing here is a fake: the API servers are the real ones a user's clusters run. The lab's own
kubelet (lab/kubelet.py, lab/pods.py) registers the Nodes, keeps them Ready and runs the pods
bound to them as processes in the nodes' network namespaces; it stands in for a kubelet and a
container runtime, which this machine does not run. The agent pods run the agent image that
`make image` built, chrooted into a working container of it (lab/image.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from netcheck.deploy.apply import apply_all
from netcheck.kube.client import KubeClient
from netcheck.kube.config import connection
from netcheck.kube.resources import KINDS
from netcheck.lab import build, faults, image, net, operator
from tests.helpers import one_context_kubeconfig
from tests.lab_support import (
    lab_down_keeping_logs,
    netcheck,
    require_agent_image,
    require_root,
)

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def kube_lab(request):
    require_root()
    require_agent_image()
    failed = request.session.testsfailed
    state, _ = build.lab_up(kubernetes=True)
    yield state["kubernetes"]
    lab_down_keeping_logs(request, failed)


def get(
    plane: dict[str, Any], path: str, token: str, method: str = "GET", body: Any = None
) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=plane["ca_file"])
    req = urllib.request.Request(
        plane["server"] + path,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method=method,
        data=None if body is None else json.dumps(body).encode(),
    )
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_each_cluster_runs_a_real_api_server(kube_lab):
    """What a user checks first: /readyz?verbose and /version of each context's server."""
    assert [p["cluster"] for p in kube_lab["planes"]] == ["CP_EAST", "DP_WEST"]
    for plane in kube_lab["planes"]:
        status, body = get(plane, "/readyz?verbose", plane["admin_token"])
        assert status == 200 and "[+]etcd ok" in body and "readyz check passed" in body
        status, body = get(plane, "/version", plane["admin_token"])
        assert status == 200 and json.loads(body)["gitVersion"] == "v1.34.4"
        # the controller manager runs: it made the default ServiceAccount
        status, _ = get(
            plane, "/api/v1/namespaces/default/serviceaccounts/default", plane["admin_token"]
        )
        assert status == 200
        # no anonymous access, and a wrong token is refused
        assert get(plane, "/api/v1/namespaces", "not-a-token")[0] == 401


def test_lab_kubeconfig_names_the_clusters_and_netcheck_reaches_them(kube_lab):
    run = netcheck("lab", "kubeconfig")
    assert run.returncode == 0 and run.stdout.strip() == kube_lab["kubeconfig"]
    with open(kube_lab["kubeconfig"], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    names = [c["name"] for c in doc["contexts"]]
    assert names == ["CP_EAST", "CP_EAST-ci", "DP_WEST", "DP_WEST-ci"]
    run = netcheck("contexts", "--kubeconfig", kube_lab["kubeconfig"])
    assert run.returncode == 0, run.stderr
    rows = [ln for ln in run.stdout.splitlines() if "https://198.19.128." in ln]
    assert len(rows) == 4 and all("ok v1.34.4" in ln for ln in rows)
    # the tokens are secrets: never printed
    for plane in kube_lab["planes"]:
        assert plane["admin_token"] not in run.stdout + run.stderr


def test_the_ci_user_holds_exactly_netcheck_user_yaml(kube_lab):
    """netcheck-ci is bound by probes/rbac/netcheck-user.yaml and nothing else: discover works
    (an empty metadata-only Secret list comes back as "items": null from a real server), and
    what the file does not grant is refused."""
    kc = kube_lab["kubeconfig"]
    run = netcheck("discover", "--kubeconfig", kc, "--context", "CP_EAST-ci", "-o", "json")
    assert run.returncode == 0, run.stderr
    assert "items" not in run.stdout + run.stderr  # no "answer has no 'items' list"
    plane = kube_lab["planes"][0]
    ci = plane["ci_token"]
    assert get(plane, "/api/v1/pods", ci)[0] == 200  # the reader role lists pods everywhere
    assert get(plane, "/api/v1/namespaces/kube-system/secrets", ci)[0] == 403
    assert get(plane, "/api/v1/namespaces/kube-system/secrets", plane["admin_token"])[0] == 200


def test_deploy_and_undeploy_as_the_ci_user_through_server_side_apply(kube_lab, token_file):
    """`--dry-run` prints exactly what deploy applies (the server holds every printed field);
    the DaemonSet controller makes an agent pod per Node, the scheduler binds it, the lab
    kubelet runs the built image as the manifest says (uid 10001, no capability, no privilege
    escalation, read-only root); undeploy removes it all, and again finds nothing."""
    kc = kube_lab["kubeconfig"]
    args = ("--kubeconfig", kc, "--context", "DP_WEST-ci", "--token-file", token_file)
    run = netcheck("deploy", *args, "--dry-run")
    assert run.returncode == 0, run.stderr
    printed = [d for d in yaml.safe_load_all(run.stdout) if d]
    assert [d["kind"] for d in printed] == [
        "Namespace",
        "ServiceAccount",
        "ConfigMap",
        "DaemonSet",
        "Secret",
    ]
    allow = next(d for d in printed if d["kind"] == "ConfigMap")["data"]["allow"].split()
    # only what discovery found: the nodes' addresses and pod CIDRs, the API server
    dp_nodes = [h for h in build.require_state()["hosts"] if h["cluster"] == "DP_WEST"]
    assert {f"{h['node_address']}/32" for h in dp_nodes if h["role"] == "database"} <= set(allow)
    assert all(int(a.rsplit("/", 1)[1]) >= 24 for a in allow), allow
    plane = kube_lab["planes"][1]
    applied = netcheck("deploy", *args)
    assert applied.returncode == 0, applied.stderr
    for obj in printed:
        status, body = get(plane, object_path(obj), plane["admin_token"])
        assert status == 200, (obj["kind"], body)
        assert holds(json.loads(body), obj), obj["kind"]
    plane = kube_lab["planes"][1]
    applied = netcheck("deploy", "--kubeconfig", kc, "--context", "DP_WEST-ci")
    assert applied.returncode == 0, applied.stderr
    status, body = get(plane, "/api/v1/namespaces/netcheck/pods", plane["admin_token"])
    pods = json.loads(body)["items"]
    assert sorted(p["spec"]["nodeName"] for p in pods) == [
        "node-dp-dc2-r1-p0",
        "node-dp-dc2-r1-p1",
        "node-dp-dc2-r2-p0",
        "node-dp-dc2-r2-p1",
    ]
    state = build.require_state()
    # pods on a lab node share its namespace, each with its own IP: the agent has the second
    # each agent the first address of its node's podCIDR
    pod_ip = {
        f"node-{h['name']}": h["node_pod_cidr"].split("/")[0]
        for h in state["hosts"]
        if h["node_pod_cidr"]
    }
    image_id = require_agent_image()
    for p in pods:
        assert p["metadata"]["ownerReferences"][0]["kind"] == "DaemonSet"
        assert p["status"]["phase"] == "Running"
        assert p["status"]["podIP"] == pod_ip[p["spec"]["nodeName"]]
        assert p["status"]["containerStatuses"][0]["imageID"] == image_id
    host = next(h for h in state["hosts"] if h["name"] == "dp-dc2-r1-p0")
    agents = agent_pids(host["namespace"])
    assert len(agents) == 1
    st = proc_status(agents[0])
    assert st["Uid"].split()[0] == "10001" and st["Gid"].split()[0] == "10001"
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
    assert st["NoNewPrivs"] == "1"
    assert in_image_read_only(agents[0])
    removed = netcheck("undeploy", "--kubeconfig", kc, "--context", "DP_WEST-ci")
    assert removed.returncode == 0 and "removed 4 object(s)" in removed.stdout, removed
    for obj in printed[1:]:  # the namespace stays: the RBAC binds the user in it
        assert get(plane, object_path(obj), plane["admin_token"])[0] == 404, obj["kind"]
    again = netcheck("undeploy", "--kubeconfig", kc, "--context", "DP_WEST-ci")
    assert again.returncode == 0 and "nothing was deployed" in again.stdout, again
    deadline = time.monotonic() + 30
    working = {f"{image.WORKING_PREFIX}{p['metadata']['uid']}-agent" for p in pods}
    while agent_pids(host["namespace"]) or working & working_containers():
        assert time.monotonic() < deadline, "the agent process or its container outlived its pod"
        time.sleep(0.5)


def object_path(obj: dict[str, Any]) -> str:
    plural = {"ServiceAccount": "serviceaccounts", "ConfigMap": "configmaps", "Secret": "secrets"}
    name, ns = obj["metadata"]["name"], obj["metadata"].get("namespace")
    if obj["kind"] == "Namespace":
        return f"/api/v1/namespaces/{name}"
    if obj["kind"] == "DaemonSet":
        return f"/apis/apps/v1/namespaces/{ns}/daemonsets/{name}"
    return f"/api/v1/namespaces/{ns}/{plural[obj['kind']]}/{name}"


def holds(server: Any, printed: Any) -> bool:
    """Every field printed is on the server with the same value (the server adds defaults)."""
    if isinstance(printed, dict):
        return isinstance(server, dict) and all(
            k in server and holds(server[k], v) for k, v in printed.items()
        )
    if isinstance(printed, list):
        return (
            isinstance(server, list)
            and len(server) == len(printed)
            and all(holds(a, b) for a, b in zip(server, printed, strict=True))
        )
    return bool(server == printed)


def working_containers() -> set[str]:
    out = subprocess.run(
        ["buildah", "containers", "--format", "{{.ContainerName}}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(out.stdout.split())


def test_the_raw_probes_agents_get_net_raw_from_the_image_only(kube_lab):
    """--raw-probes: NET_RAW in the bounding set, privilege escalation allowed, and the agent
    (python-netraw, uid 10001) holds NET_RAW and nothing else, from the image's file
    capability; a SYN probe through it tells a dropped port from an open one."""
    kc = kube_lab["kubeconfig"]
    applied = netcheck("deploy", "--kubeconfig", kc, "--context", "DP_WEST-ci", "--raw-probes")
    assert applied.returncode == 0, applied.stderr
    try:
        state = build.require_state()
        host = next(h for h in state["hosts"] if h["name"] == "dp-dc2-r2-p1")
        (pid,) = agent_pids(host["namespace"])
        st = proc_status(pid)
        net_raw = 1 << 13
        assert "python-netraw" in cmdline(pid) and st["Uid"].split()[0] == "10001"
        assert int(st["CapEff"], 16) == net_raw and int(st["CapBnd"], 16) == net_raw
        assert st["NoNewPrivs"] == "0" and in_image_read_only(pid)
    finally:
        removed = netcheck("undeploy", "--kubeconfig", kc, "--context", "DP_WEST-ci")
        assert removed.returncode == 0, removed.stderr


def test_an_image_no_node_has_is_named_with_the_node(kube_lab):
    """No registry is reachable: an image the local storage lacks fails to pull, and deploy
    names the node and the kubelet's reason."""
    kc = kube_lab["kubeconfig"]
    args = ("--kubeconfig", kc, "--context", "DP_WEST-ci")
    try:
        proc = netcheck(
            "deploy", *args, "--image", "registry.invalid/netcheck:missing", "--deploy-timeout", "8"
        )
        assert proc.returncode == 3, proc.stderr
        (err,) = proc.stderr.splitlines()
        assert "4 agent pod(s) not ready after 8s" in err
        for node in ("r1-p0", "r1-p1", "r2-p0", "r2-p1"):
            assert f" on node-dp-dc2-{node}" in err
        # the four pods fail alike: the kubelet's reason said once
        assert "ErrImagePull" in err
        assert err.count('Failed to pull image "registry.invalid/netcheck:missing"') == 1
    finally:
        removed = netcheck("undeploy", *args)
        assert removed.returncode == 0, removed.stderr


def test_preflight_passes_on_the_healthy_lab_and_names_a_dropped_port(kube_lab):
    """The user's gate, through the real API servers' pod proxy to agents the DaemonSet made;
    a second run over agents still deployed with another token replaces them first."""
    kc = kube_lab["kubeconfig"]
    args = ["preflight", "--kubeconfig", kc, "--context", "CP_EAST-ci", "--context", "DP_WEST-ci"]
    args += ["--control-plane", "CP_EAST-ci", "--no-progress", "-o", "json", "--json-probes", "all"]
    healthy = netcheck(*args, "--keep")
    assert healthy.returncode == 0, healthy.stderr
    report = json.loads(healthy.stdout)
    assert report["verdict"] == "pass" and len(report["probes"]) > 150
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    try:
        dropped = netcheck(*args, "--raw-probes")
    finally:
        faults.clear_faults()
    assert dropped.returncode == 1, dropped.stderr
    said = [
        (f["code"], f["location"])
        for f in json.loads(dropped.stdout)["findings"]
        if f["severity"] in ("error", "warning")
    ]
    assert len(said) == 1 and said[0][0] == "FIREWALL_DROP", said
    # hop 1 is the pod's node, 2 its cluster's router, 3 the WAN router
    assert "silent after hop 3 (198.19.126." in said[0][1]


def preflight(kc: str, *extra: str) -> tuple[int, dict[str, Any], str]:
    """preflight as the CI user; DP_WEST's API server probed at its address on the lab's
    cluster network (the kubeconfig names its management address, which no fault reaches)."""
    args = ["preflight", "--kubeconfig", kc, "--context", "CP_EAST-ci", "--context", "DP_WEST-ci"]
    args += ["--control-plane", "CP_EAST-ci", "--no-progress", "-o", "json", "--json-probes", "all"]
    args += ["--timeout", "1"]
    args += ["--api-server", "DP_WEST-ci=198.18.48.20:6443", *extra]
    proc = netcheck(*args)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def failing(report: dict[str, Any]) -> dict[tuple[str, str, int], str]:
    return {
        (p["src"], p["dst"], p["port"]): p["outcome"]
        for p in report["probes"]
        if p["outcome"] != "open"
    }


def test_preflight_covers_every_pair_and_cleans_up(kube_lab, tmp_path):
    """8 agents x 7 peers on each database port, every agent to the 4 control-plane nodes'
    NodePort, the control plane's agents to the data plane's API server; afterwards no agent
    is left on either cluster."""
    junit = tmp_path / "preflight.xml"
    code, report, err = preflight(kube_lab["kubeconfig"], "--junit", str(junit))
    assert code == 0, (err, failing(report))
    roles: dict[str, list[dict[str, Any]]] = {}
    for e in report["endpoints"]:
        roles.setdefault(e["role"], []).append(e)
    assert len(roles["database"]) == 8
    assert all(e["namespace"] == "netcheck" and e["node"] for e in roles["database"])
    assert sorted(e["address"] for e in roles["control-plane-node"]) == [
        "198.18.17.10",
        "198.18.17.11",
        "198.18.17.12",
        "198.18.17.13",
    ]
    assert [(a["cluster"], a["address"]) for a in roles["api-server"]] == [
        ("DP_WEST-ci", "198.18.48.20")
    ]
    by_port: dict[int, int] = {}
    for p in report["probes"]:
        by_port[p["port"]] = by_port.get(p["port"], 0) + 1
    assert by_port == {7000: 56, 7001: 56, 8080: 56, 30600: 32, 6443: 4}
    assert all(p["outcome"] == "open" for p in report["probes"])
    # nothing of Mission Control here yet: said once, not held against the clusters
    install = [(f["code"], f["severity"]) for f in report["findings"] if f["code"][:3] == "MC_"]
    assert install == [("MC_NOT_INSTALLED", "info")]
    assert 'failures="0"' in junit.read_text()
    for plane in kube_lab["planes"]:
        status, body = get(
            plane, "/apis/apps/v1/namespaces/netcheck/daemonsets", plane["admin_token"]
        )
        assert status == 200 and json.loads(body)["items"] == []


def test_preflight_leaves_a_taken_nodeport_alone(kube_lab):
    """Mission Control's Vector aggregator already holds NodePort 30600 on the control plane:
    preflight says so, leaves that Service as it was (no Service of its own in front of the
    agents) and still probes 30600 on every control-plane node (in the lab a stand-in answers
    there for kube-proxy)."""
    plane = kube_lab["planes"][0]
    path = "/api/v1/namespaces/mission-control/services"
    vector = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "vector-aggregator", "namespace": "mission-control"},
        "spec": {
            "type": "NodePort",
            "selector": {"app.kubernetes.io/name": "vector"},
            "ports": [{"port": 6000, "nodePort": 30600}],
        },
    }
    status, body = get(plane, path, plane["admin_token"], "POST", vector)
    assert status == 201, body
    before = json.loads(body)["metadata"]["resourceVersion"]
    try:
        code, report, err = preflight(kube_lab["kubeconfig"])
        status, body = get(plane, f"{path}/vector-aggregator", plane["admin_token"])
    finally:
        get(plane, f"{path}/vector-aggregator", plane["admin_token"], "DELETE")
    assert code == 0, (err, failing(report))
    (taken,) = [f for f in report["findings"] if f["code"] == "NODEPORT_TAKEN"]
    assert "service mission-control/vector-aggregator" in taken["summary"]
    assert json.loads(body)["metadata"]["resourceVersion"] == before
    assert len([p for p in report["probes"] if p["port"] == 30600]) == 8 * 4


async def _install(
    kc: str, planes: dict[str, list[dict[str, Any]]], crds: tuple[tuple[str, str, str, str], ...]
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        for ctx, objects in planes.items():
            client = await stack.enter_async_context(KubeClient(connection(kc, ctx)))
            await apply_all(client, objects)
            if any(o["kind"] == "CustomResourceDefinition" for o in objects):
                await operator.established(client, 30.0, crds)


async def _uninstall(kc: str, planes: dict[str, list[dict[str, Any]]]) -> None:
    for ctx, objects in planes.items():
        async with KubeClient(connection(kc, ctx)) as client:
            for o in objects:
                meta = o["metadata"]
                await client.delete(KINDS[o["kind"]], meta["name"], meta.get("namespace"))


def test_preflight_finds_the_nodeport_and_api_server_blocked_and_the_install_wrong(kube_lab):
    """Mid-install, the control plane with Mission Control's release and its ClientConfig API,
    DP_WEST installed under another release name and not registered yet: the release name is
    an error (only a reinstall mends it), the registration to come is said with its command.
    And the network: the aggregator's NodePort reset, the data plane's API server dropped."""
    kc = kube_lab["kubeconfig"]
    client_config = ("config.k8ssandra.io", "ClientConfig", "clientconfigs", "v1beta1")
    objects = {
        "CP_EAST": [
            operator.crd(*client_config),
            *operator.helm_release_objects("mission-control", True),
        ],
        "DP_WEST": operator.helm_release_objects("mc-west", False),
    }
    asyncio.run(_install(kc, objects, (client_config,)))
    faults.add_fault(
        "reject", src="DP_WEST", dst="CP_EAST", port=30600, both=False, reject_with="tcp-reset"
    )
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=6443, both=False)
    try:  # with the raw-probes agents: a silent port is told apart from a slow one
        code, report, _ = preflight(kc, "--raw-probes")
    finally:
        faults.clear_faults()
        asyncio.run(_uninstall(kc, objects))
    assert code == 1
    install = {f["code"]: f for f in report["findings"] if f["code"][:3] == "MC_"}
    assert sorted((c, f["severity"], f["src_cluster"]) for c, f in install.items()) == [
        ("MC_DATA_PLANE_NOT_REGISTERED", "info", "DP_WEST-ci"),
        ("MC_HELM_RELEASE_NAME_MISMATCH", "error", "DP_WEST-ci"),
    ]
    assert install["MC_HELM_RELEASE_NAME_MISMATCH"]["hint"].startswith(
        "helm uninstall mc-west -n mission-control --kube-context DP_WEST-ci; "
        "then helm install mission-control"
    )
    assert install["MC_DATA_PLANE_NOT_REGISTERED"]["hint"] == (
        "mcctl register --source-context DP_WEST-ci --dest-context CP_EAST-ci"
    )
    bad = failing(report)
    nodeport = {k: v for k, v in bad.items() if k[2] == 30600}
    api = {k: v for k, v in bad.items() if k[2] == 6443}
    assert len(nodeport) == 16 and set(nodeport.values()) == {"refused"}
    assert len(api) == 4 and set(api.values()) == {"filtered"}
    assert len(bad) == 20
    codes = {(f["code"], tuple(f["ports"])) for f in report["findings"]}
    # 30600 is the node's only probed port: no SYN-ACK of its own to compare the RST with
    assert ("PORT_REFUSED", (30600,)) in codes and ("FIREWALL_DROP", (6443,)) in codes
    (vector,) = [f for f in report["findings"] if f["ports"] == [30600]]
    assert "30600 is Mission Control's Vector aggregator (a NodePort on" in vector["summary"]


def test_run_context_on_a_cluster_without_database_pods_names_the_selector(kube_lab):
    proc = netcheck(
        "run", "--kubeconfig", kube_lab["kubeconfig"], "--context", "DP_WEST-ci", "-o", "json"
    )
    assert proc.returncode == 3, proc.stderr
    problems = json.loads(proc.stdout)["problems"]
    assert problems == [
        "context DP_WEST-ci: no database pods found with label selector "
        "'cassandra.datastax.com/cluster' in all namespaces; check --namespace and that "
        "cass-operator created the datacenter"
    ]


def net_pids(namespace: str) -> list[int]:
    out = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    return [int(p) for p in out.stdout.split()]


def pod_namespaces(node_namespace: str) -> list[str]:
    """The network namespaces of the pods of a node: each pod's veth ends in the node's
    namespace as vp<uid8>, its namespace is ncl-pod-<uid8> (lab/pods.py)."""
    out = subprocess.run(
        ["ip", "-n", node_namespace, "-o", "link", "show"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    links = [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]
    return [f"ncl-pod-{name[2:]}" for name in links if name.startswith("vp")]


def agent_pids(node_namespace: str) -> list[int]:
    """The agent pods' processes on a node (in their pods' network namespaces)."""
    return [
        p
        for ns in pod_namespaces(node_namespace)
        for p in net_pids(ns)
        if "--token-file=/etc/netcheck/token/token" in cmdline(p)
    ]


def in_image_read_only(pid: int) -> bool:
    """The process's root is a working container of the image, mounted read-only."""
    root = os.readlink(f"/proc/{pid}/root")
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8") as f:
        mounts = [line.split() for line in f]
    top = [m for m in mounts if m[4] == "/"]
    return (
        root.startswith("/var/lib/containers/storage/")
        and bool(top)
        and "ro" in top[-1][5].split(",")
    )


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_the_lab_kubelet_keeps_its_nodes_ready(kube_lab):
    """Every database host is a Node as a kubelet registers it, Ready, with its lease renewed
    (without renewals the node lifecycle controller marks a node NotReady after 40 s)."""
    state = build.require_state()
    for plane in kube_lab["planes"]:
        hosts = [
            h
            for h in state["hosts"]
            if h["cluster"] == plane["cluster"] and h["role"] == "database"
        ]
        status, body = get(plane, "/api/v1/nodes", plane["admin_token"])
        assert status == 200
        nodes = {n["metadata"]["name"]: n for n in json.loads(body)["items"]}
        assert sorted(nodes) == sorted(f"node-{h['name']}" for h in hosts)
        for h in hosts:
            n = nodes[f"node-{h['name']}"]
            ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"]
            assert ready[0]["status"] == "True"
            internal = [a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
            assert internal == [h["node_address"]]
            assert n["spec"]["podCIDR"] == h["node_pod_cidr"]
            labels = n["metadata"]["labels"]
            assert labels["topology.kubernetes.io/zone"] == h["zone"]
            assert labels["topology.kubernetes.io/region"] == h["region"]
    plane = kube_lab["planes"][0]
    lease = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-cp-dc1-r1-p0"

    def renewed() -> str:
        status, body = get(plane, lease, plane["admin_token"])
        assert status == 200
        return str(json.loads(body)["spec"]["renewTime"])

    first = renewed()
    time.sleep(11)
    assert renewed() > first


def test_an_exec_plugin_token_that_expires_during_a_run_is_fetched_again(kube_lab, tmp_path):
    """kubectl-style exec credentials: the plugin's first token is refused (expired); netcheck
    runs the plugin once more and carries on, without printing either token."""
    plane = kube_lab["planes"][0]
    calls = tmp_path / "calls"
    plugin = tmp_path / "credential-plugin"
    plugin.write_text(
        "#!/bin/sh\n"
        f"n=$(cat {calls} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {calls}\n"
        f'if [ "$n" -eq 1 ]; then t=expired-0123456789; else t={plane["ci_token"]}; fi\n'
        'printf \'{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
        '"status":{"token":"%s"}}\' "$t"\n'
    )
    plugin.chmod(0o755)
    kubeconfig = tmp_path / "kubeconfig"
    exec_user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": str(plugin),
            "interactiveMode": "Never",
        }
    }
    kubeconfig.write_text(
        one_context_kubeconfig("CP_EAST", plane["server"], exec_user, plane["ca_file"])
    )
    run = netcheck("discover", "--kubeconfig", str(kubeconfig), "-o", "json")
    assert run.returncode == 0, run.stderr
    assert calls.read_text().strip() == "2"  # once at the start, once after the 401
    assert "expired-0123456789" not in run.stdout + run.stderr
    assert plane["ci_token"] not in run.stdout + run.stderr


def test_pod_logs_come_through_the_api_server_from_the_lab_kubelet(kube_lab):
    """`pods/log` goes from the real API server to the kubelet port of the pod's node, which
    answers only a client holding the API server's kubelet client certificate."""
    kc = kube_lab["kubeconfig"]
    assert netcheck("deploy", "--kubeconfig", kc, "--context", "DP_WEST-ci").returncode == 0
    plane = kube_lab["planes"][1]
    admin = plane["admin_token"]
    try:
        _, body = get(plane, "/api/v1/namespaces/netcheck/pods", admin)
        pod = json.loads(body)["items"][0]
        name, node = pod["metadata"]["name"], pod["spec"]["nodeName"]
        base = f"/api/v1/namespaces/netcheck/pods/{name}/log"
        status, text = get(plane, base, admin)
        assert status == 200 and f"netcheck agent {node} listening on 0.0.0.0:9925" in text
        assert get(plane, base + "?tailLines=0", admin) == (200, "")
        assert get(plane, base + "?limitBytes=7", admin) == (200, text[-7:])
        # straight to the kubelet port without the API server's client certificate: refused
        state = build.require_state()
        node_ip = next(h["node_address"] for h in state["hosts"] if f"node-{h['name']}" == node)
        probe = (
            "import ssl, urllib.request, sys\n"
            f"ctx = ssl.create_default_context(cafile={plane['ca_file']!r})\n"
            "try:\n"
            f"    urllib.request.urlopen('https://{node_ip}:10250/containerLogs/netcheck/"
            f"{name}/agent', context=ctx, timeout=5)\n"
            "except Exception as exc:\n"
            "    print('refused', type(exc).__name__)\n"
        )
        out = subprocess.run(
            ["ip", "netns", "exec", plane["namespace"], sys.executable, "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert out.stdout.startswith("refused"), out.stdout + out.stderr
    finally:
        netcheck("undeploy", "--kubeconfig", kc, "--context", "DP_WEST-ci")


def test_exec_goes_through_the_api_server_to_the_lab_kubelet(kube_lab):
    """`pods/exec` as netcheck asks for it (a v4.channel.k8s.io websocket): the real API server
    passes it to the kubelet of the pod's node, which runs the command in the container; the
    exit code and the runtime's words for a missing command come back as a kubelet says them.
    The command sees the container's files: the image's, and the kubelet's /etc/hostname."""
    kc = kube_lab["kubeconfig"]
    assert netcheck("deploy", "--kubeconfig", kc, "--context", "DP_WEST-ci").returncode == 0
    plane = kube_lab["planes"][1]
    try:
        _, body = get(plane, "/api/v1/namespaces/netcheck/pods", plane["admin_token"])
        name = json.loads(body)["items"][0]["metadata"]["name"]

        async def run(*argv: str):
            async with KubeClient(connection(kc, "DP_WEST")) as client:
                return await client.exec("netcheck", name, "agent", list(argv), 60)

        ok = asyncio.run(run("netcheck", "--version"))
        assert ok.exit_code == 0 and "netcheck" in ok.stdout, ok
        usage = asyncio.run(run("netcheck", "no-such-command"))
        assert usage.exit_code == 2 and "No such command" in usage.stderr, usage
        files = asyncio.run(run("cat", "/etc/hostname", "/etc/passwd"))
        assert files.exit_code == 0 and files.stdout.startswith(name + "\n"), files
        assert "netcheck:x:10001:10001:" in files.stdout  # the image's user, not the host's
        missing = asyncio.run(run("nodetool", "status"))
        assert missing.exit_code is None and "executable file not found" in missing.message
        assert missing.stdout == ""
    finally:
        netcheck("undeploy", "--kubeconfig", kc, "--context", "DP_WEST-ci")


def ci_kubeconfig(kube_lab: dict[str, Any], tmp_path: Any, **tokens: str) -> str:
    """The lab's kubeconfig with only the CI user's contexts; tokens: cluster -> a token to
    put in place of that context's own (a revoked or expired one)."""
    with open(kube_lab["kubeconfig"], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    doc["contexts"] = [c for c in doc["contexts"] if c["name"].endswith("-ci")]
    users = {c["context"]["user"]: c["name"].removesuffix("-ci") for c in doc["contexts"]}
    doc["users"] = [u for u in doc["users"] if u["name"] in users]
    for u in doc["users"]:
        if users[u["name"]] in tokens:
            u["user"] = {"token": tokens[users[u["name"]]]}
    doc["current-context"] = "CP_EAST-ci"
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_unknown_context_and_broken_kubeconfig_are_one_line_errors(kube_lab, tmp_path):
    proc = netcheck("discover", "--kubeconfig", kube_lab["kubeconfig"], "--context", "DP_EAST")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "DP_EAST" in proc.stderr and "CP_EAST, CP_EAST-ci, DP_WEST, DP_WEST-ci" in proc.stderr

    broken = tmp_path / "broken"
    broken.write_text("apiVersion: v1\nclusters: [\n")
    proc = netcheck("discover", "--kubeconfig", str(broken), "--context", "CP_EAST")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1 and str(broken) in proc.stderr

    proc = netcheck("contexts", "--kubeconfig", str(tmp_path / "missing"))
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_contexts_says_which_api_server_is_down(kube_lab, tmp_path):
    kc = ci_kubeconfig(kube_lab, tmp_path)
    with open(kc, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    dp = next(c for c in doc["contexts"] if c["name"] == "DP_WEST-ci")["context"]["cluster"]
    for c in doc["clusters"]:
        if c["name"] == dp:
            c["cluster"]["server"] = "https://127.0.0.1:1"  # nothing listens there
    (tmp_path / "down").write_text(yaml.safe_dump(doc))
    proc = netcheck("contexts", "--kubeconfig", str(tmp_path / "down"))
    assert proc.returncode == 3, proc.stderr
    rows = {
        ln.split()[1] if ln.lstrip().startswith("*") else ln.split()[0]: ln
        for ln in proc.stdout.splitlines()
        if "-ci" in ln
    }
    assert "unreachable" in rows["DP_WEST-ci"] and "ok v1.34.4" in rows["CP_EAST-ci"]
    assert rows["CP_EAST-ci"].lstrip().startswith("*")  # the current context


def test_cidr_plan_is_clear_of_every_range_the_lab_clusters_use(kube_lab):
    """`cidr plan --all-contexts` reads each real API server's nodes (podCIDRs, addresses)
    and ServiceCIDRs, and plans a new cluster inside the lab's range clear of all of them."""
    kc = kube_lab["kubeconfig"]
    found = json.loads(
        netcheck("discover", "--kubeconfig", kc, "--all-contexts", "-o", "json").stdout
    )
    used = [
        ipaddress.ip_network(c)
        for ctx in found["contexts"]
        for c in [*ctx["pod_cidrs"], *ctx["service_cidrs"]]
    ] + [
        ipaddress.ip_network(n["internal_ip"])
        for ctx in found["contexts"]
        for n in ctx["nodes"]
        if n["internal_ip"]
    ]
    assert len({str(u) for u in used}) >= 4, used  # pods, services and nodes of both planes
    proc = netcheck(
        "cidr",
        "plan",
        "--kubeconfig",
        kc,
        "--all-contexts",
        "--nodes",
        "4",
        "--pods-per-node",
        "30",
        "--within",
        "198.18.0.0/15",
        "-o",
        "json",
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in ("pod_cidr", "service_cidr"):
        net = ipaddress.ip_network(doc[key])
        assert net.subnet_of(ipaddress.ip_network("198.18.0.0/15"))
        assert not [u for u in used if net.overlaps(u)], (key, net)
    assert {a["what"].split()[1] for a in doc["avoided"]} >= {"pods", "services"}


CALICO_POOLS = ("crd.projectcalico.org", "IPPool", "ippools", "v1", "Cluster")
CILIUM_NODES = ("cilium.io", "CiliumNode", "ciliumnodes", "v2", "Cluster")


def test_cidr_check_reads_the_pod_networks_calico_and_cilium_publish(kube_lab):
    """CP_EAST with Calico (its IPPool CRD and default pool), DP_WEST with Cilium in
    cluster-pool IPAM (cilium-config in kube-system, CiliumNodes with their blocks), served by
    the real API servers and read as the CI user: the pools are the pod networks, not the
    nodes' podCIDRs, and an overlap between them names both sources. Then without
    cilium-config (not readable, or another install): the CiliumNodes' blocks."""
    kc = kube_lab["kubeconfig"]
    pool = {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "IPPool",
        "metadata": {"name": "default-ipv4-ippool"},
        "spec": {"cidr": "10.100.0.0/16", "blockSize": 26, "ipipMode": "Always"},
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cilium-config", "namespace": "kube-system"},
        "data": {
            "ipam": "cluster-pool",
            "cluster-pool-ipv4-cidr": "10.100.128.0/17",
            "routing-mode": "tunnel",
            "tunnel-protocol": "vxlan",
        },
    }
    nodes = [
        {
            "apiVersion": "cilium.io/v2",
            "kind": "CiliumNode",
            "metadata": {"name": f"west-{i}"},
            "spec": {"ipam": {"podCIDRs": [f"10.100.{200 + i}.0/24"]}},
        }
        for i in range(2)
    ]
    planes = {"CP_EAST": (CALICO_POOLS, [pool]), "DP_WEST": (CILIUM_NODES, [*nodes, config])}
    objects = {ctx: [operator.crd(*crd), *objs] for ctx, (crd, objs) in planes.items()}

    def check() -> tuple[int, dict[str, Any]]:
        proc = netcheck(
            "cidr", "check", "--kubeconfig", kc, "--context", "CP_EAST-ci",
            "--context", "DP_WEST-ci", "-o", "json",
        )  # fmt: skip
        assert "Traceback" not in proc.stderr and not proc.stderr.strip(), proc.stderr
        return proc.returncode, json.loads(proc.stdout)

    async def install() -> None:
        for ctx, (crd, objs) in planes.items():
            async with KubeClient(connection(kc, ctx)) as client:
                await apply_all(client, [operator.crd(*crd)])
                await operator.established(client, 30.0, (crd[:4],))
                await apply_all(client, objs)

    asyncio.run(install())
    try:
        code, doc = check()

        async def drop_config() -> None:
            async with KubeClient(connection(kc, "DP_WEST")) as client:
                await client.delete(KINDS["ConfigMap"], "cilium-config", "kube-system")

        asyncio.run(drop_config())
        code_nodes, doc_nodes = check()
    finally:
        asyncio.run(_uninstall(kc, {c: list(reversed(o)) for c, o in objects.items()}))
    assert code == 1, doc
    clusters = {c["context"]: c for c in doc["clusters"]}
    assert clusters["CP_EAST-ci"]["cni"] == "calico"
    assert clusters["CP_EAST-ci"]["pod_networks"] == [
        {"cidr": "10.100.0.0/16", "source": "Calico IPPool default-ipv4-ippool"}
    ]
    assert clusters["DP_WEST-ci"]["cni"] == "cilium"
    assert clusters["DP_WEST-ci"]["pod_networks"] == [
        {"cidr": "10.100.128.0/17", "source": "cilium-config cluster-pool-ipv4-cidr"}
    ]
    by_code = {f["code"]: f for f in doc["findings"]}
    assert by_code["POD_CIDR_OVERLAP"]["summary"] == (
        "pod CIDRs overlap: CP_EAST-ci 10.100.0.0/16 (Calico IPPool default-ipv4-ippool) and "
        "DP_WEST-ci 10.100.128.0/17 (cilium-config cluster-pool-ipv4-cidr)"
    )
    # the lab's nodes publish podCIDRs of their own, which these CNIs would not use: said
    assert {f["src_cluster"] for f in doc["findings"] if f["code"] == "POD_CIDR_FROM_CNI"} == {
        "CP_EAST-ci",
        "DP_WEST-ci",
    }
    assert code_nodes == 1, doc_nodes
    west = next(c for c in doc_nodes["clusters"] if c["context"] == "DP_WEST-ci")
    assert west["pod_networks"] == [
        {"cidr": f"10.100.{200 + i}.0/24", "source": f"CiliumNode west-{i}"} for i in range(2)
    ]
    # and with the CNIs gone, the nodes' podCIDRs again, which do not overlap
    code, doc = check()
    assert code == 0 and not [f for f in doc["findings"] if f["severity"] != "info"], doc


SUBMARINERS = ("submariner.io", "Submariner", "submariners", "v1alpha1")
GATEWAYS = ("submariner.io", "Gateway", "gateways", "v1")


def first_node(kc: str, ctx: str) -> str:
    async def go() -> str:
        async with KubeClient(connection(kc, ctx)) as client:
            return str(sorted(n["metadata"]["name"] for n in await client.list(KINDS["Node"]))[0])

    return asyncio.run(go())


@contextlib.contextmanager
def submariner_installed(
    kc: str, planes: dict[str, tuple[str, str, list[dict[str, Any]], str]]
) -> Iterator[None]:
    """Submariner as its operator leaves it on each plane: ctx -> (cable driver, Globalnet
    CIDR or "", Gateway objects, the node labelled as its gateway or ""). The objects go again
    afterwards, the label too (it goes with the only field the test applied). The Gateways'
    status is written with them: the CRDs here serve no status subresource."""
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "submariner-operator"}}

    def objects(ctx: str) -> list[dict[str, Any]]:
        driver, global_cidr, gateways, _ = planes[ctx]
        spec = {"cableDriver": driver, "globalCIDR": global_cidr, "natEnabled": False}
        return [
            ns,
            {
                "apiVersion": "submariner.io/v1alpha1",
                "kind": "Submariner",
                "metadata": {"name": "submariner", "namespace": "submariner-operator"},
                "spec": spec,
            },
            *gateways,
        ]

    def node(name: str, labels: dict[str, str] | None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name, **({"labels": labels} if labels else {})}
        return {"apiVersion": "v1", "kind": "Node", "metadata": meta}

    async def install() -> None:
        for ctx, (_, _, _, gateway_node) in planes.items():
            async with KubeClient(connection(kc, ctx)) as client:
                crds = [operator.crd(*c, status=False) for c in (SUBMARINERS, GATEWAYS)]
                await apply_all(client, crds)
                await operator.established(client, 30.0, (SUBMARINERS, GATEWAYS))
                await apply_all(client, objects(ctx))
                if gateway_node:
                    await apply_all(client, [node(gateway_node, {GATEWAY: "true"})])

    async def uninstall() -> None:
        # the objects go; the namespace and the CRDs stay for the next test (one being deleted
        # cannot be made again until the API server has finished with it)
        for ctx, (_, _, _, gateway_node) in planes.items():
            async with KubeClient(connection(kc, ctx)) as client:
                for o in reversed(objects(ctx)[1:]):
                    meta = o["metadata"]
                    await client.delete(KINDS[o["kind"]], meta["name"], meta.get("namespace"))
                if gateway_node:
                    await apply_all(client, [node(gateway_node, None)])

    asyncio.run(install())
    try:
        yield
    finally:
        asyncio.run(uninstall())


GATEWAY = "submariner.io/gateway"


def test_cidr_check_reads_submariners_tunnel_gateways_and_connections(kube_lab):
    """Submariner on both clusters, as its operator leaves it (the Submariner object, a
    Gateway whose connection to the other cluster failed, the gateway node's label), served by
    the real API servers and read as the CI user: the overlay is said, the failed connection
    is an error in Submariner's own words, and the data plane without a labelled gateway node
    is told it has none."""
    kc = kube_lab["kubeconfig"]
    cp_node = first_node(kc, "CP_EAST")
    failed = {
        "apiVersion": "submariner.io/v1",
        "kind": "Gateway",
        "metadata": {"name": cp_node, "namespace": "submariner-operator"},
        "status": {
            "haStatus": "active",
            "localEndpoint": {"hostname": cp_node, "backend": "libreswan"},
            "connections": [
                {
                    "status": "error",
                    "statusMessage": "Failed to establish IPsec connection: no response",
                    "endpoint": {"cluster_id": "dp-west", "hostname": "dp-gw-1"},
                }
            ],
        },
    }
    planes = {
        "CP_EAST": ("libreswan", "", [failed], cp_node),
        "DP_WEST": ("wireguard", "", [], ""),
    }
    with submariner_installed(kc, planes):
        proc = netcheck(
            "cidr", "check", "--kubeconfig", kc, "--context", "CP_EAST-ci",
            "--context", "DP_WEST-ci", "-o", "json",
        )  # fmt: skip
    assert "Traceback" not in proc.stderr and not proc.stderr.strip(), proc.stderr
    assert proc.returncode == 1, proc.stdout
    doc = json.loads(proc.stdout)
    overlay = {c["context"]: c["overlay"] for c in doc["clusters"]}
    assert overlay["CP_EAST-ci"]["kind"] == "submariner"
    assert overlay["CP_EAST-ci"]["tunnels"] == ["IPsec"]
    assert overlay["CP_EAST-ci"]["gateways"] == [cp_node]
    assert overlay["DP_WEST-ci"]["tunnels"] == ["WireGuard"]
    found = sorted(
        (f["code"], f["src_cluster"]) for f in doc["findings"] if f["code"] != "POD_CIDR_FROM_CNI"
    )
    assert found == [
        ("OVERLAY", "CP_EAST-ci"),
        ("OVERLAY", "DP_WEST-ci"),
        ("SUBMARINER_CONNECTION_DOWN", "CP_EAST-ci"),
        ("SUBMARINER_NO_GATEWAY", "DP_WEST-ci"),
    ], doc["findings"]
    (down,) = [f for f in doc["findings"] if f["code"] == "SUBMARINER_CONNECTION_DOWN"]
    assert down["summary"] == (
        f"CP_EAST-ci: Submariner gateway {cp_node} to cluster dp-west (gateway dp-gw-1) is "
        "error: Failed to establish IPsec connection: no response"
    )

    # and gone again: the label too
    async def labels() -> dict[str, str]:
        async with KubeClient(connection(kc, "CP_EAST")) as client:
            node = await client.get(KINDS["Node"], cp_node)
            return dict(node["metadata"].get("labels") or {})

    assert "submariner.io/gateway" not in asyncio.run(labels())


def test_preflight_between_globalnet_clusters_takes_their_nat_as_designed(kube_lab, tmp_path):
    """Submariner with Globalnet on both clusters (a gateway node each, no failed connection)
    and CP_EAST's egress to DP_WEST masqueraded, as Globalnet's translation looks to the
    agents' echo: the translated pairs are said (SOURCE_NAT, info, naming Globalnet), and the
    verdict and the JUnit a CI gates on pass. The same NAT without Globalnet fails (the
    masquerade scenario of test_lab_scenarios)."""
    kc = kube_lab["kubeconfig"]
    planes = {
        "CP_EAST": ("libreswan", "242.0.0.0/16", [], first_node(kc, "CP_EAST")),
        "DP_WEST": ("libreswan", "242.1.0.0/16", [], first_node(kc, "DP_WEST")),
    }
    junit = tmp_path / "preflight.xml"
    with submariner_installed(kc, planes):
        faults.add_fault("masquerade", src="CP_EAST", dst="DP_WEST", both=False)
        try:
            code, report, err = preflight(kc, "--junit", str(junit))
        finally:
            faults.clear_faults()
    translated = [p for p in report["probes"] if p["outcome"] == "nat"]
    assert translated and {p["src"] for p in translated} <= {
        e["name"] for e in report["endpoints"] if e["cluster"] == "CP_EAST-ci"
    }
    assert code == 0, (err, [f for f in report["findings"] if f["severity"] != "info"])
    assert report["verdict"] == "pass"
    (nat,) = [f for f in report["findings"] if f["code"] == "SOURCE_NAT"]
    assert nat["severity"] == "info" and "Submariner Globalnet translates" in nat["summary"]
    assert 'failures="0"' in junit.read_text()
    overlays = {f["src_cluster"] for f in report["findings"] if f["code"] == "OVERLAY"}
    assert overlays == {"CP_EAST-ci", "DP_WEST-ci"}


def test_a_refused_token_keeps_the_other_context(kube_lab, tmp_path):
    """A token the real API server does not know (revoked, or expired) on DP_WEST: 401 there,
    one line that says so, and CP_EAST is still discovered."""
    kc = ci_kubeconfig(kube_lab, tmp_path, DP_WEST="expired-0123456789abcdef")
    proc = netcheck("discover", "--kubeconfig", kc, "--all-contexts", "-o", "json")
    assert proc.returncode == 3, proc.stderr
    doc = json.loads(proc.stdout)
    assert [c["context"] for c in doc["contexts"]] == ["CP_EAST-ci"]
    assert len(doc["contexts"][0]["nodes"]) == 4
    (err,) = [ln for ln in proc.stderr.splitlines() if ln]
    assert "context DP_WEST-ci" in err and "401" in err and "expired" in err
    assert "expired-0123456789abcdef" not in proc.stdout + proc.stderr


def test_rbac_denied_names_verb_resource_and_namespace(kube_lab, tmp_path):
    """The CI user loses `list pods` on the real CP_EAST server (the reader ClusterRole
    without pods): the one-line error names the verb, the resource and where, with the file
    that grants it; DP_WEST is still discovered."""
    import asyncio

    from netcheck.deploy.apply import apply_all
    from netcheck.kube.client import KubeClient
    from netcheck.kube.config import connection

    docs = [d for d in yaml.safe_load_all(control_plane_rbac()) if d]
    reader = next(d for d in docs if d["metadata"]["name"] == "netcheck-reader")
    fewer = {
        **reader,
        "rules": [
            {**r, "resources": ["nodes"]} if "pods" in r.get("resources", []) else r
            for r in reader["rules"]
        ],
    }

    async def put(obj: dict[str, Any]) -> None:
        async with KubeClient(connection(kube_lab["kubeconfig"], "CP_EAST")) as client:
            await apply_all(client, [obj])

    asyncio.run(put(fewer))
    try:
        kc = ci_kubeconfig(kube_lab, tmp_path)
        proc = netcheck("discover", "--kubeconfig", kc, "--all-contexts", "-o", "json")
    finally:
        asyncio.run(put(reader))
    assert proc.returncode == 3, proc.stderr
    (err,) = [ln for ln in proc.stderr.splitlines() if ln]
    assert "context CP_EAST-ci" in err
    assert "'list' on 'pods' cluster-wide" in err and "netcheck-user.yaml" in err
    assert [c["context"] for c in json.loads(proc.stdout)["contexts"]] == ["DP_WEST-ci"]


def control_plane_rbac() -> str:
    from netcheck.lab.control_plane import user_rbac

    return user_rbac().read_text()


Atom = tuple[str, str, str]


def audit_events(planes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The CI user's requests, answered, from every API server's audit log."""
    from netcheck.lab.control_plane import audit_log

    events = []
    for plane in planes:
        with open(audit_log(plane["directory"]), encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                if e["user"]["username"] == "netcheck-ci" and e["stage"] == "ResponseComplete":
                    events.append({**e, "cluster": plane["cluster"]})
    return events


def granted() -> set[tuple[str, str, str]]:
    """(verb, resource, namespace) that netcheck-user.yaml grants; namespace "*" where its
    binding is cluster-wide."""
    docs = [d for d in yaml.safe_load_all(control_plane_rbac()) if d]
    roles = {d["metadata"]["name"]: d["rules"] for d in docs if d["kind"] == "ClusterRole"}
    out = set()
    for b in docs:
        if b["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        where = b["metadata"].get("namespace", "*") if b["kind"] == "RoleBinding" else "*"
        for rule in roles[b["roleRef"]["name"]]:
            for r in rule["resources"]:
                out |= {(v, r, where) for v in rule["verbs"]}
    return out


def audited(planes: list[dict[str, Any]]) -> tuple[set[Atom], set[Atom]]:
    """What the CI user asked for, from the audit logs: (granted, refused) as (verb, resource,
    namespace); every list of Secrets checked to have been answered with metadata only
    (PartialObjectMetadataList, no data)."""
    used, refused = set(), set()
    for e in audit_events(planes):
        ref = e.get("objectRef")
        if not ref:
            continue  # /version and API discovery, which every authenticated user may read
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        atom = (e["verb"], resource, ref.get("namespace", ""))
        (refused if e["responseStatus"]["code"] == 403 else used).add(atom)
        if e["verb"] == "patch" and e["responseStatus"]["code"] == 201:
            used.add(("create", resource, atom[2]))  # an apply that made the object
        if ref["resource"] == "secrets" and e["verb"] == "list" and atom not in refused:
            answer = e["responseObject"]
            assert answer["kind"] == "PartialObjectMetadataList", (e["requestURI"], answer)
            assert all("data" not in item for item in answer.get("items") or [])
    grants = granted()
    for verb, resource, namespace in used:
        assert {(verb, resource, namespace), (verb, resource, "*")} & grants, (verb, resource)
    return used, refused


def unused_grants(used: set[Atom]) -> set[Atom]:
    return {
        (v, r, ns)
        for v, r, ns in granted()
        if not any(u[:2] == (v, r) and (ns == "*" or u[2] == ns) for u in used)
    }


# The grants of netcheck-user.yaml that only one of the two Kubernetes modules uses: each
# module checks that all the others were used, so together every grant is needed, but
# `create` on pods/exec, which API servers from 1.35 on check on exec's websocket GET (the
# lab runs 1.34.4).
FOR_NEWER_SERVERS: set[Atom] = {("create", "pods/exec", "demo")}
ONLY_WITH_CASSANDRA: set[Atom] = {
    ("get", "pods/exec", "demo"),
    ("patch", "pods/ephemeralcontainers", "demo"),
    ("get", "pods/log", "demo"),
    ("get", "secrets", "netcheck"),
    ("get", "secrets", "demo"),  # run --ca-secret
    ("list", "endpointslices", "*"),
    ("list", "networkpolicies", "*"),
}
ONLY_WITHOUT_CASSANDRA: set[Atom] = {  # preflight's Service for NodePort 30600; a failed deploy
    ("create", "services", "netcheck"),
    ("patch", "services", "netcheck"),
    ("list", "events", "netcheck"),
}


def test_the_ci_user_asks_for_what_netcheck_user_yaml_grants_and_no_more(kube_lab):
    """Read off the API servers' audit logs after the tests above ran netcheck as the CI user
    (contexts, discover, deploy, preflight, run, undeploy): every request was granted by
    netcheck-user.yaml, nothing was refused but what the tests provoked, Secrets were listed
    as metadata only, and every grant was used but those only the Cassandra reads need
    (test_kube_cassandra checks those). It reads what the module's tests did: run it with
    them, not alone."""
    used, refused = audited(kube_lab["planes"])
    # the RBAC test took `list pods` away; the first test asks for kube-system's Secrets
    assert refused == {("list", "pods", ""), ("list", "secrets", "kube-system")}
    assert unused_grants(used) == ONLY_WITH_CASSANDRA | FOR_NEWER_SERVERS
    assert not ONLY_WITH_CASSANDRA & ONLY_WITHOUT_CASSANDRA


@dataclasses.dataclass(frozen=True)
class Without:
    """What the user gets when one grant is taken away: the command that needs it, its exit
    code, how its one line on stderr starts, and what the line says is forbidden where that
    is not simply the grant (a cluster-wide grant asked for in one namespace)."""

    command: str
    code: int
    lead: str
    said: str = ""
    lines: int = 1  # on stderr: one per read the grant stops


def error(command: str, said: str = "") -> Without:
    return Without(command, 3, "netcheck: error: context CP_EAST-ci: ", said)


def warning(command: str, said: str = "") -> Without:
    return Without(command, 0, "netcheck: warning: context CP_EAST-ci: ", said)


def cni_unread() -> Without:
    """`cidr check` says which read was refused, then that the check is incomplete (exit 3)."""
    return Without("cidr check", 3, "netcheck: warning: context CP_EAST-ci: ", lines=2)


# Each grant of netcheck-user.yaml that the lab without Cassandra exercises, and what the
# user gets without it (the Cassandra reads: test_kube_cassandra).
NEEDED_BY: dict[Atom, Without] = {
    ("list", "nodes", "*"): error("discover"),
    ("list", "pods", "*"): error("discover"),
    # who holds NodePort 30600; and the API server's service address (a warning of its own)
    ("list", "services", "*"): dataclasses.replace(error("preflight"), lines=2),
    ("list", "servicecidrs", "*"): warning("preflight"),
    ("list", "namespaces", "*"): warning("preflight", "'list' on 'namespaces' cluster-wide"),
    ("list", "clientconfigs", "*"): warning(
        "preflight", "'list' on 'clientconfigs' in namespace mission-control"
    ),
    ("patch", "namespaces", "*"): error("deploy"),
    **{
        (verb, kind, "netcheck"): error("deploy")
        for kind in ("serviceaccounts", "configmaps", "secrets", "daemonsets")
        for verb in ("create", "patch")
    },
    **{
        ("delete", kind, "netcheck"): error("undeploy")
        for kind in ("serviceaccounts", "configmaps", "services", "secrets", "daemonsets")
    },
    ("create", "services", "netcheck"): error("preflight"),  # the NodePort 30600 Service
    ("patch", "services", "netcheck"): error("preflight"),
    ("get", "daemonsets", "netcheck"): error("deploy"),  # the rollout
    ("list", "events", "netcheck"): error("deploy a missing image"),
    # every agent of the context fails alike: one line for them all
    ("get", "pods/proxy", "netcheck"): Without("preflight", 3, "netcheck: 4 agents ("),
    ("create", "pods/proxy", "netcheck"): Without("preflight", 3, "netcheck: 4 agents ("),
    ("list", "secrets", "mission-control"): warning("preflight"),
    ("list", "storageclasses", "*"): warning("cidr check"),  # lint --context reads them
    # the CNI's pod networks (served or not, the API server authorizes the read first)
    # the CNI's pools: without them the pod networks are not known, the check is incomplete
    ("list", "ippools", "*"): cni_unread(),
    ("list", "ciliumnodes", "*"): cni_unread(),
    ("list", "ciliumpodippools", "*"): cni_unread(),
    ("list", "eniconfigs", "*"): cni_unread(),
    ("get", "configmaps", "kube-system"): cni_unread(),
    ("list", "submariners", "*"): warning("cidr check"),
    ("list", "gateways", "*"): warning("cidr check"),
}


def without_grant(role: dict[str, Any], verb: str, resource: str) -> dict[str, Any]:
    """The ClusterRole with one verb on one resource taken out, every other grant kept."""
    rules = []
    for r in role["rules"]:
        if resource not in r["resources"] or verb not in r["verbs"]:
            rules.append(r)
            continue
        if others := [x for x in r["resources"] if x != resource]:
            rules.append({**r, "resources": others})
        if verbs := [v for v in r["verbs"] if v != verb]:
            rules.append({**r, "resources": [resource], "verbs": verbs})
    return {**role, "rules": rules}


def ci_user_may(kubeconfig: str, verb: str, resource: str, namespace: str, group: str) -> bool:
    """What CP_EAST's authorizer answers for netcheck-ci now: a SubjectAccessReview (kubectl
    auth can-i would not ask about a resource the server does not serve, like ClientConfig
    here)."""
    kind, _, sub = resource.partition("/")
    attributes = {"verb": verb, "group": group, "resource": kind, "subresource": sub}
    if namespace != "*":
        attributes["namespace"] = namespace
    if kind == "namespaces":
        attributes["name"] = "netcheck"  # granted for that one name only
    if (kind, namespace) == ("configmaps", "kube-system"):
        attributes["name"] = "cilium-config"  # likewise
    if (kind, namespace) == ("secrets", "demo"):
        attributes["name"] = "netcheck-lab-internode-tls"  # likewise (run --ca-secret)
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": "netcheck-ci", "resourceAttributes": attributes},
    }
    proc = subprocess.run(
        ["kubectl", "--kubeconfig", kubeconfig, "--context", "CP_EAST", "create", "-f", "-",
         "-o", "jsonpath={.status.allowed}"],
        input=json.dumps(review), capture_output=True, text=True, check=True,
    )  # fmt: skip
    return proc.stdout.strip() == "true"


def grant_failures(
    kubeconfig: str,
    rows: dict[Atom, Without],
    commands: dict[str, tuple[str, ...]],
    after_each: Callable[[], None] = lambda: None,
) -> list[str]:
    """Take each grant of rows out of a copy of its ClusterRole on CP_EAST, run the command
    that needs it as the CI user, put the grant back; what did not go as rows say."""
    import asyncio

    from netcheck.deploy.apply import apply_all
    from netcheck.kube.client import KubeClient
    from netcheck.kube.config import connection

    docs = [d for d in yaml.safe_load_all(control_plane_rbac()) if d]
    roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
    role_of: dict[Atom, dict[str, Any]] = {}
    group_of: dict[str, str] = {}
    for b in docs:
        if b["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            where = b["metadata"].get("namespace", "*") if b["kind"] == "RoleBinding" else "*"
            role = roles[b["roleRef"]["name"]]
            for rule in role["rules"]:
                role_of |= {(v, r, where): role for r in rule["resources"] for v in rule["verbs"]}
                group_of |= {r: rule["apiGroups"][0] for r in rule["resources"]}

    async def put(obj: dict[str, Any]) -> None:
        async with KubeClient(connection(kubeconfig, "CP_EAST")) as client:
            await apply_all(client, [obj])

    def until(verb: str, resource: str, namespace: str, allowed: bool) -> None:
        deadline = time.monotonic() + 10
        while ci_user_may(kubeconfig, verb, resource, namespace, group_of[resource]) != allowed:
            assert time.monotonic() < deadline, (verb, resource, namespace, allowed)
            time.sleep(0.05)

    failures = []
    for (verb, resource, namespace), want in sorted(rows.items()):
        role = role_of[(verb, resource, namespace)]
        asyncio.run(put(without_grant(role, verb, resource)))
        try:
            until(verb, resource, namespace, allowed=False)
            proc = netcheck(*commands[want.command])
        finally:
            asyncio.run(put(role))
            until(verb, resource, namespace, allowed=True)
            after_each()
        where = "cluster-wide" if namespace == "*" else f"in namespace {namespace}"
        said = "RBAC forbids " + (want.said or f"'{verb}' on '{resource}' {where}")
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        if not (
            proc.returncode == want.code
            and len(lines) == want.lines
            and any(
                ln.startswith(want.lead)
                and "context CP_EAST-ci" in ln
                and said in ln
                and "probes/rbac/netcheck-user.yaml" in ln
                for ln in lines
            )
        ):
            failures.append(
                f"{verb} {resource} {namespace} via {want.command}: {proc.returncode} {lines}"
            )
    return failures


def test_each_grant_taken_away_gives_its_one_line(kube_lab):
    """The RBAC file is the documented minimum: each grant, taken out of a copy of its
    ClusterRole on the real CP_EAST, makes the command that needs it say so in one line that
    names the verb, the resource, where, and the file (an error and exit 3, or a warning
    where the read is optional), with no traceback. Every grant is in a table (a new one
    must say who needs it). After the audit-log test: its refusals are provoked here."""
    kc = kube_lab["kubeconfig"]
    assert set(NEEDED_BY) == granted() - ONLY_WITH_CASSANDRA - FOR_NEWER_SERVERS
    ctx = ("--kubeconfig", kc, "--context", "CP_EAST-ci")
    commands = {
        "discover": ("discover", *ctx, "-o", "json"),
        "cidr check": ("cidr", "check", *ctx, "-o", "json"),
        "deploy": ("deploy", *ctx),
        "undeploy": ("undeploy", *ctx),
        "preflight": ("preflight", *ctx, "--control-plane", "CP_EAST-ci", "-o", "json"),
        "deploy a missing image": (
            "deploy", *ctx, "--image", "registry.invalid/netcheck:missing", "--deploy-timeout", "6"
        ),
    }  # fmt: skip

    def undeploy_as_admin() -> None:  # the next grant starts from nothing deployed
        assert netcheck("undeploy", "--kubeconfig", kc, "--context", "CP_EAST").returncode == 0

    failures = grant_failures(kc, NEEDED_BY, commands, undeploy_as_admin)
    assert not failures, "\n".join(failures)


def test_lab_down_after_a_crash_leaves_no_container_behind(kube_lab):
    """Last in this module: with agent pods running from the image, every lab process is
    killed hard (control planes, kubelets, pods); `lab down` still removes the namespaces and
    the pods' working containers, and no mount of them stays."""
    kc = kube_lab["kubeconfig"]
    assert netcheck("deploy", "--kubeconfig", kc, "--context", "CP_EAST-ci").returncode == 0
    assert any(n.startswith(image.WORKING_PREFIX) for n in working_containers())
    for ns in net.lab_namespaces():
        for pid in net_pids(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    pods_of_nodes = [ns for ns in net.lab_namespaces() if ns.startswith("ncl-pod-")]
    assert pods_of_nodes  # the agents' pods have network namespaces of their own
    proc = netcheck("lab", "down")
    assert proc.returncode == 0, proc.stderr
    assert net.lab_namespaces() == []
    # no pod's process outlives its namespace's name (a namespace the kubelet mounted where
    # `lab down` could not see it once kept agents running after the lab was gone)
    left = [p for p in os.listdir("/proc") if p.isdigit() and "netcheck/token" in cmdline(int(p))]
    assert not left, [cmdline(int(p)) for p in left]
    assert not any(n.startswith(image.WORKING_PREFIX) for n in working_containers())
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        assert "/var/lib/containers/storage/overlay" not in f.read()
