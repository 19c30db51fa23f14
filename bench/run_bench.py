"""netcheck benchmarks: `make bench` writes BENCHMARKS.md with the machine and the date.

(a) wall time of `netcheck run` on the default lab with 7001 dropped between the regions,
    next to the per-probe timeout (goal: about one timeout, not a sum of timeouts);
(b) TCP probes per second one agent sustains against open ports on loopback;
(c) resident memory of a lab agent;
(d) diagnosis time on larger meshes;
(e) `netcheck run --context --no-cassandra` through the real API servers' pod proxy, next to
    `netcheck run --inventory` (direct HTTP) on the same lab spec;
(f) time to diagnosis of every lab scenario (tests/test_lab_scenarios.py), and whether the
    top finding is the scenario's cause;
(g) raw probes per second one agent sends and matches (SYN, and latency packets);
(h) real Cassandra 5.0 in the lab: start-up time and memory per node, and the time of the
    Cassandra checks (nodetool and logs of every node, parsed, checked, cross-checked);
(i) verdicts and time to verdict on the healthy 8-node Cassandra lab;
(j) the lab's real Kubernetes: image rebuild, control planes up, deploy, preflight, and
    `run --context` with Cassandra in pods;
(m) `gossip analyze` on big pastes: a system.log of 83,000 lines beside GNU grep, and the
    nodetool outputs of a 1,000-node cluster;
(n) Mission Control install checks: `lint` on a 300-datacenter manifest beside PyYAML's load,
    the CNI's objects of a 5,000-node cluster, `cidr plan` and the overlap check at scale;
(o) scale: plan to every output on meshes of 128 to 2,048 pods (bench/meshes.py), CPU time
    and peak memory per stage, fitted growth, findings per size (bench/scale.py);
(p) TCP connect probes per second of one agent beside Debian's blackbox_exporter on the same
    loopback target (bench/blackbox.py).

`--only l|m|n|o|p|q|r` measures one section into the existing file.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from netcheck.agent.listeners import ServeMode, ServeSpec
from netcheck.agent.process import AgentConfig, run_agent
from netcheck.agent.server import AgentLimits
from netcheck.agent.transport import HttpAgentTransport, ProbeBatch
from netcheck.discovery.inventory import dump_inventory
from netcheck.lab import build, faults, net
from netcheck.lab.cassandra import CASSANDRA_VERSION
from netcheck.lab.cassandra import HEAP as CASSANDRA_HEAP
from netcheck.lab.inventory import lab_topology
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target
from netcheck.model.topology import Topology

TIMEOUT_S = 2.0
RUNS = 5


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.node()}: {os.cpu_count()} x {cpu}, {mem_gib:.0f} GiB, "
        f"Linux {platform.release()}, Python {platform.python_version()}"
    )


def _write_inventory(directory: str) -> str:
    inventory = os.path.join(directory, "lab.yaml")
    with open(inventory, "w", encoding="utf-8") as f:
        f.write(dump_inventory(lab_topology(build.require_state())))
    return inventory


def _timed_run(inventory: str, timeout_s: float) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Wall time of one `netcheck run -o json` as a user starts it, and its result."""
    t0 = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "netcheck",
            "run",
            "--inventory",
            inventory,
            "-o",
            "json",
            "--json-probes",
            "all",
            "--timeout",
            str(timeout_s),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return time.monotonic() - t0, proc


def bench_run_wall_time() -> dict[str, float | int]:
    build.lab_up()
    faults.clear_faults()
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    with tempfile.TemporaryDirectory() as tmp:
        inventory = _write_inventory(tmp)
        walls, timeouts, probes = [], 0, 0
        for _ in range(RUNS):
            wall, proc = _timed_run(inventory, TIMEOUT_S)
            walls.append(wall)
            if proc.returncode != 1:
                raise SystemExit(f"expected exit 1 with the fault, got {proc.returncode}")
            report = json.loads(proc.stdout)
            probes = len(report["probes"])
            timeouts = sum(1 for p in report["probes"] if p["outcome"] in ("timeout", "filtered"))
    rss = []
    for ns in net.lab_namespaces():
        for pid in net.run("ip", "netns", "pids", ns, check=False).stdout.split():
            try:
                with open(f"/proc/{pid}/status", encoding="utf-8") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss.append(int(line.split()[1]) / 1024)
            except OSError:
                continue
    faults.clear_faults()
    build.lab_down()
    return {
        "median_s": statistics.median(walls),
        "max_s": max(walls),
        "probes": probes,
        "timeouts": timeouts,
        "agent_rss_mib_max": max(rss) if rss else 0.0,
        "agent_rss_mib_median": statistics.median(rss) if rss else 0.0,
    }


async def bench_probe_rate(echo: bool) -> dict[str, float]:
    ports = []
    socks = []
    import socket

    for _ in range(5):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        ports.append(s.getsockname()[1])
        socks.append(s)
    for s in socks:
        s.close()
    api, served = ports[0], ports[1:]
    with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
        f.write("b" * 40)
        token_file = f.name
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        serve_bind="127.0.0.1",
        token_file=token_file,
        serve=tuple(ServeSpec(port=p, mode=ServeMode.TCP) for p in served),
        allow=("127.0.0.0/8",),
        limits=AgentLimits(max_batch=5000, rate=100000, concurrency=128),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await ready.wait()
    url = f"http://127.0.0.1:{api}"
    n = 4000
    rates = []
    try:
        async with HttpAgentTransport("b" * 40) as t:
            info = await t.info(url)
            targets = tuple(
                Target(
                    address="127.0.0.1", port=served[i % len(served)], kind=ProbeKind.TCP, echo=echo
                )
                for i in range(n)
            )
            for _ in range(3):
                t0 = time.monotonic()
                results = await t.probe(
                    url, ProbeBatch(targets=targets, timeout_s=2, payload_bytes=16384), info
                )
                rates.append(n / (time.monotonic() - t0))
                bad = [r for r in results if r.outcome is not Outcome.OPEN]
                if bad:
                    raise SystemExit(f"{len(bad)} probes were not open: {bad[0]}")
    finally:
        stop.set()
        await task
        os.unlink(token_file)
    return {"median": statistics.median(rates), "best": max(rates)}


def synthetic_mesh(clusters: int, racks: int, pods: int) -> tuple[Topology, tuple[Any, ...]]:
    """A mesh of agents (3 ports per pod) with 7001 dropped from C0 to C1 and one pod
    unreachable on every port: its topology and results."""
    from netcheck.collector.plan import plan_mesh
    from netcheck.model.probe import ProbeResult
    from netcheck.model.topology import Cluster, Endpoint, PortSpec, Topology

    ports = tuple(PortSpec.default(p) for p in (7000, 7001, 8080))
    eps = []
    for c in range(clusters):
        for r in range(racks):
            for p in range(pods):
                address = f"198.{18 + c // 8}.{(c % 8) * 32 + r + 1}.{10 + p}"
                eps.append(
                    Endpoint(
                        name=f"c{c}-r{r}-p{p}",
                        cluster=f"C{c}",
                        region=f"g{c}",
                        address=address,
                        datacenter=f"dc{c}",
                        rack=f"r{r}",
                        agent=f"http://{address}:9925",
                        ports=ports,
                        stand_in=True,
                    )
                )
    topo = Topology(
        clusters=tuple(Cluster(name=f"C{c}", region=f"g{c}") for c in range(clusters)),
        endpoints=tuple(eps),
    )
    by_name = {ep.name: ep for ep in eps}

    def outcome(src: str, dst: str, port: int) -> Outcome:
        s, d = by_name[src], by_name[dst]
        if s.cluster == "C0" and d.cluster == "C1" and port == 7001:
            return Outcome.TIMEOUT
        return Outcome.UNREACHABLE if dst == "c1-r0-p0" else Outcome.OPEN

    results = tuple(
        ProbeResult(
            src=p.src, dst=p.dst, port=p.port, kind=p.kind, outcome=outcome(p.src, p.dst, p.port)
        )
        for p in plan_mesh(topo)
    )
    return topo, results


def bench_diagnosis(clusters: int, racks: int, pods: int) -> dict[str, float | int]:
    """Diagnosis time on a synthetic mesh with a cluster-pair fault and a sick pod."""
    from netcheck.diagnosis.findings import diagnose

    topo, results = synthetic_mesh(clusters, racks, pods)
    t0 = time.perf_counter()
    findings = diagnose(topo, results)
    return {
        "pods": len(topo.endpoints),
        "probes": len(results),
        "seconds": time.perf_counter() - t0,
        "findings": len(findings),
    }


def bench_serve(runs: int = 300) -> dict[str, Any]:
    """serve's loop over `runs` runs of a 90-pod synthetic mesh (each run's report and probe
    results made anew, as a run makes them), in this process: resident memory after 10 and
    100 runs and after all of them, and the cost of one scrape over HTTP next to writing
    --prom-file of the same report."""
    import aiohttp

    from netcheck.diagnosis.findings import diagnose
    from netcheck.model.report import RunReport
    from netcheck.reports.prometheus import to_exposition
    from netcheck.serve.http import serve
    from netcheck.serve.watch import Watch, WatchOptions
    from netcheck.workflows.run import RunDone

    topo, results = synthetic_mesh(3, 3, 10)
    findings = diagnose(topo, results)

    async def job() -> RunDone:
        await asyncio.sleep(0)
        report = RunReport(
            topology=topo, probes=tuple(dataclasses.replace(r) for r in results),
            findings=findings,
            started_at="2026-12-01T00:00:00+00:00", duration_s=1.0,
        )  # fmt: skip
        return RunDone(report=report)

    rss: dict[int, float] = {}
    port = 19927
    scrapes: list[float] = []
    size = 0

    async def go() -> None:
        nonlocal size
        gate = asyncio.Event()

        async def held() -> RunDone:
            if watch.runs == runs:
                await gate.wait()  # the last run waits while the scrapes are timed
            return await job()

        watch = Watch(held, WatchOptions(interval_s=0, jitter=0, keep=10, max_runs=runs + 1))
        task = asyncio.ensure_future(serve(watch, "127.0.0.1", port))
        while watch.runs < runs:
            for mark in (10, 100):
                if watch.runs >= mark and mark not in rss:
                    rss[mark] = _rss_mib(os.getpid())
            await asyncio.sleep(0.001)
        rss[runs] = _rss_mib(os.getpid())
        async with aiohttp.ClientSession() as http:
            for _ in range(50):
                t0 = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                    size = len(await r.read())
                scrapes.append(time.perf_counter() - t0)
        gate.set()
        await task

    asyncio.run(go())
    report = RunReport(
        topology=topo, probes=results, findings=findings,
        started_at="2026-12-01T00:00:00+00:00", duration_s=1.0,
    )  # fmt: skip
    t0 = time.perf_counter()
    for _ in range(5):
        to_exposition(report)
    prom_file = (time.perf_counter() - t0) / 5
    scrape = statistics.median(scrapes)
    return {
        "pods": len(topo.endpoints),
        "probes": len(results),
        "runs": runs,
        "rss_10": rss[10],
        "rss_100": rss[100],
        "rss_end": rss[runs],
        "scrape_ms": scrape * 1000,
        "scrape_bytes": size,
        "prom_file_ms": prom_file * 1000,
    }


def bench_isolation_audit(pods: int) -> dict[str, float | int]:
    """The NetworkPolicy audit of 7000/7001 (diagnosis/isolation.py) and the verdicts of the
    negative probes (diagnosis/exposure.py), on two clusters of `pods` database pods each
    under the guide's policy (the other cluster admitted by its pod CIDR), every agent's
    probes blocked; CPU time of the audit and of the findings."""
    from netcheck.diagnosis.exposure import exposure_findings, judged
    from netcheck.diagnosis.isolation import audit, isolation_findings
    from netcheck.discovery.kube import AgentPod, ContextDiscovery, DatabasePod, NodeInfo
    from netcheck.discovery.netpol import parse_policies
    from netcheck.model.report import OutsiderProbe

    selector = {"matchLabels": {"cassandra.datastax.com/cluster": "demo"}}
    labels = (("cassandra.datastax.com/cluster", "demo"),)

    def context(c: int) -> ContextDiscovery:
        other = f"198.{18 + (1 - c)}.0.0/16"
        policy = {
            "metadata": {"name": "cassandra-internode", "namespace": "demo"},
            "spec": {
                "podSelector": selector,
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [{"podSelector": selector}, {"ipBlock": {"cidr": other}}],
                        "ports": [{"port": 7000}, {"port": 7001}],
                    },
                    {"ports": [{"port": 8080}, {"port": 9042}]},
                ],
            },
        }
        db = tuple(
            DatabasePod(
                name=f"c{c}-db-{i}", namespace="demo", cluster="demo", datacenter=f"dc{c}",
                rack=f"r{i % 3}", seed=i < 3, node_state="Started",
                pod_ip=f"198.{18 + c}.{i // 250}.{i % 250 + 1}", node=f"c{c}-n{i}", ready=True,
                ports=(7000, 7001, 8080), labels=labels,
            )
            for i in range(pods)
        )  # fmt: skip
        agents = tuple(
            AgentPod(
                name=f"agent-{i}", node=f"c{c}-n{i}", pod_ip=f"198.{18 + c}.200.{i % 250 + 1}",
                ready=True, phase="Running", reason="",
            )
            for i in range(min(pods, 16))
        )  # fmt: skip
        return ContextDiscovery(
            context=f"C{c}", server="", api_host="", api_port=443, version="v1.34.4",
            nodes=(NodeInfo(name=f"c{c}-n0", internal_ip="", zone="z", region="r",
                            pod_cidrs=(f"198.{18 + c}.0.0/16",), taints=()),),
            database_pods=db, services=(), network_policies=(), client_configs=(),
            secrets=(), agents=agents, service_cidrs=(), warnings=(),
            policies=parse_policies([policy]), namespace_labels=(("demo", ()),),
        )  # fmt: skip

    found = [context(0), context(1)]
    t0 = time.process_time()
    rows = audit(found)
    audit_s = time.process_time() - t0
    probes = tuple(
        OutsiderProbe(
            context=src.context, outsider=f"netcheck/{a.name}", dst=p.name,
            dst_context=dst.context, port=port, outcome=Outcome.TIMEOUT, detail="",
        )
        for src in found for a in src.agents for dst in found for p in dst.database_pods
        for port in (7000, 7001)
    )  # fmt: skip
    t1 = time.process_time()
    findings = exposure_findings(found, judged(probes, ()), rows, isolation_findings(found, rows))
    return {
        "pods": 2 * pods,
        "rows": len(rows),
        "audit_s": audit_s,
        "negative_probes": len(probes),
        "findings_s": time.process_time() - t1,
        "findings": len(findings),
    }


def _timed(args: list[str], expect: int) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "netcheck", *args], capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - t0
    if proc.returncode != expect:
        raise SystemExit(f"netcheck {args[0]}: exit {proc.returncode}: {proc.stderr[-400:]}")
    return wall


def bench_inventory() -> dict[str, float]:
    """`run --inventory` on the healthy default lab, agents reached directly: the peer of
    `run --context --no-cassandra` through the real pod proxy (bench_kubernetes)."""
    build.lab_up()
    faults.clear_faults()
    with tempfile.TemporaryDirectory() as tmp:
        inventory = _write_inventory(tmp)
        walls = [_timed(["run", "--inventory", inventory, "-o", "json"], 0) for _ in range(RUNS)]
        probes = _probe_count(["run", "--inventory", inventory, "-o", "json"])
    build.lab_down()
    return {"run_inventory": statistics.median(walls), "probes": probes}


def _probe_count(args: list[str]) -> int:
    proc = subprocess.run(
        [sys.executable, "-m", "netcheck", *args, "--json-probes", "all"],
        capture_output=True,
        text=True,
        check=False,
    )
    return len(json.loads(proc.stdout)["probes"])


def _rss_by_name(namespaces: list[str]) -> dict[str, float]:
    """Resident MiB per program name over the processes of these namespaces."""
    out: dict[str, float] = {}
    for ns in namespaces:
        for pid in net.run("ip", "netns", "pids", ns, check=False).stdout.split():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            name = os.path.basename(argv[0].decode())
            if name.startswith("python"):
                name = "lab kubelet (python)"
            out[name] = out.get(name, 0.0) + _rss_mib(int(pid))
    return out


def bench_kubernetes() -> dict[str, Any]:
    """Control planes from a cold start (binaries cached) to Nodes Ready, then agents."""
    from netcheck.lab import kubebuild

    kubebuild.build()  # not timed: make install builds it once
    # the agent image built again from the same sources under another tag: what a source
    # change costs once the Debian base and the dependencies' wheels are cached
    from netcheck.lab import image

    image.build()  # not timed: make image builds it
    t0 = time.monotonic()
    bench_tag = "localhost/netcheck/agent:bench"
    image.build(name=bench_tag)
    rebuild = time.monotonic() - t0
    size = subprocess.run(
        ["buildah", "images", "--format", "{{.Size}}", image.agent_image()],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    subprocess.run(["buildah", "rmi", bench_tag], capture_output=True, check=False)
    build.lab_down()
    t0 = time.monotonic()
    state, _ = build.lab_up(kubernetes=True)
    up = time.monotonic() - t0
    kc = state["kubernetes"]["kubeconfig"]
    ctx = ["--kubeconfig", kc, "--context", "CP_EAST-ci", "--context", "DP_WEST-ci"]
    deploy = _timed(["deploy", *ctx], 0)
    rss = _rss_by_name([p["namespace"] for p in state["kubernetes"]["planes"]])
    pre = [
        _timed(["preflight", *ctx, "--control-plane", "CP_EAST-ci", "-o", "json"], 0)
        for _ in range(RUNS)
    ]
    build.lab_down()
    # Cassandra in pods (StatefulSets), then `run --context` reading nodetool, logs and CQL
    t0 = time.monotonic()
    state, _ = build.lab_up(kubernetes=True, cassandra=True)
    up_cassandra = time.monotonic() - t0
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from netcheck.lab.cassandra import ca_file
    from tests.test_kube_cassandra import _apply, cql_secret, isolate

    for plane in state["kubernetes"]["planes"]:  # the CQL login, as the README tells users
        asyncio.run(_apply(state, plane["cluster"], [cql_secret()]))
    isolate(state)  # the guide's NetworkPolicy: a healthy install is an isolated one
    kc = state["kubernetes"]["kubeconfig"]
    ctx = ["--kubeconfig", kc, "--context", "CP_EAST-ci", "--context", "DP_WEST-ci"]
    _timed(["deploy", *ctx], 0)
    with_ca = ["--ca-file", ca_file(build.state_dir())]
    runs = [_timed(["run", *ctx, *with_ca, "-o", "json"], 0) for _ in range(RUNS)]
    # the network part alone, through the real pod proxy: the peer of (e)'s direct run
    # (exit 1: without Cassandra's reads, 7001 refused by design on 4.0+ stays a failure)
    network = [_timed(["run", *ctx, "--no-cassandra", "-o", "json"], 1) for _ in range(RUNS)]
    network_probes = _probe_count(["run", *ctx, "--no-cassandra", "-o", "json"])
    build.lab_down()
    return {
        "image_rebuild": rebuild,
        "image_size": size,
        "up": up,
        "deploy": deploy,
        "rss": rss,
        "preflight": statistics.median(pre),
        "up_cassandra": up_cassandra,
        "run_cassandra": statistics.median(runs),
        "run_network": statistics.median(network),
        "network_probes": network_probes,
    }


def bench_scenarios() -> list[dict[str, str | float]]:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from tests.test_lab_scenarios import SCENARIOS

    build.lab_up()
    rows: list[dict[str, str | float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = _write_inventory(tmp)
        for sc in SCENARIOS:
            faults.clear_faults()
            for fault in sc.faults:
                faults.add_fault(**fault)
            walls, top = [], ""
            for _ in range(3):
                wall, proc = _timed_run(inventory, 1.0)
                walls.append(wall)
                findings = json.loads(proc.stdout)["findings"]
                top = findings[0]["code"] if findings else "(none)"
            want = (sc.diagnoses or sc.info)[0].code if (sc.diagnoses or sc.info) else "(none)"
            rows.append(
                {"name": sc.name, "wall": statistics.median(walls), "top": top, "want": want}
            )
    faults.clear_faults()
    build.lab_down()
    return rows


async def bench_raw_rate() -> dict[str, float]:
    import socket

    socks = [socket.socket() for _ in range(2)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    api, served = (int(s.getsockname()[1]) for s in socks)
    for s in socks:
        s.close()
    with tempfile.NamedTemporaryFile("w", suffix=".token", delete=False) as f:
        f.write("c" * 40)
        token_file = f.name
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        serve_bind="127.0.0.1",
        token_file=token_file,
        serve=(ServeSpec(port=served, mode=ServeMode.TCP),),
        allow=("127.0.0.0/8",),
        limits=AgentLimits(max_batch=5000, rate=100000, concurrency=128),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await ready.wait()
    url = f"http://127.0.0.1:{api}"
    out: dict[str, float] = {}
    try:
        async with HttpAgentTransport("c" * 40) as t:
            info = await t.info(url)
            if not info.raw_probes:
                raise SystemExit("the benchmark needs CAP_NET_RAW: run `make bench` as root")
            for kind, n, count in ((ProbeKind.SYN, 2000, 0), (ProbeKind.LATENCY, 200, 10)):
                targets = tuple(
                    Target(address="127.0.0.1", port=served, kind=kind, count=count)
                    for _ in range(n)
                )
                rates = []
                for _ in range(3):
                    t0 = time.monotonic()
                    results = await t.probe(
                        url, ProbeBatch(targets=targets, timeout_s=2, payload_bytes=0), info
                    )
                    packets = n * (count or 1)
                    rates.append(packets / (time.monotonic() - t0))
                    bad = [r for r in results if r.outcome is not Outcome.OPEN]
                    if bad:
                        raise SystemExit(f"{len(bad)} raw probes were not open: {bad[0]}")
                out[kind.value] = statistics.median(rates)
    finally:
        stop.set()
        await task
        os.unlink(token_file)
    return out


CASSANDRA_SPEC = """
clusters:
  - {name: CP_EAST, short: cp, region: east, control_plane: true,
     datacenters: [{name: dc1, racks: [{name: r1, zone: east-a, pods: 1},
                                       {name: r2, zone: east-b, pods: 1}]}]}
  - {name: DP_WEST, short: dp, region: west,
     datacenters: [{name: dc2, racks: [{name: r1, zone: west-a, pods: 1},
                                       {name: r2, zone: west-b, pods: 1}]}]}
"""


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="utf-8") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _node_reads(state: dict[str, Any], topology: Topology, kind: str) -> float:
    """Every node's agent reads its node (cql: login, system.local and system.peers_v2; mgmt:
    the Management API's readiness and endpoints); median of 3."""
    from netcheck.agent.process import read_token
    from netcheck.collector.node_reads import READ_TIMEOUT_S, plan_cql, plan_mgmt
    from netcheck.collector.run import collect

    plan = plan_cql(topology) if kind == "cql" else plan_mgmt(topology)
    assert plan, kind

    async def once() -> float:
        async with HttpAgentTransport(read_token(state["token_file"])) as transport:
            t0 = time.monotonic()
            done = await collect(
                topology, plan, transport, timeout_s=READ_TIMEOUT_S, payload_bytes=0
            )
            took = time.monotonic() - t0
        assert all(r.outcome is Outcome.OPEN for r in done.results), done.results
        assert all(r.evidence.mgmt.ready for r in done.results if r.evidence.mgmt), done.results
        return took

    return statistics.median(asyncio.run(once()) for _ in range(3))


def bench_cassandra() -> dict[str, float | int]:
    """Lab Cassandra start-up (fresh cluster, jars cached), memory, and the Cassandra checks."""
    from netcheck.cassandra.collect import CollectOptions, collect_nodes
    from netcheck.cassandra.exec import ExecTarget
    from netcheck.diagnosis.gossip import analyze
    from netcheck.lab import cassandra, mgmt_standin
    from netcheck.lab.exec import LabExec
    from netcheck.lab.spec import spec_from_yaml
    from netcheck.model.topology import Role

    cassandra.ensure_runtime()  # a first download is not start-up time
    starts = []
    result: dict[str, float | int] = {}
    for _ in range(2):
        build.lab_down()
        t0 = time.monotonic()
        state, _ = build.lab_up(spec_from_yaml(CASSANDRA_SPEC, "bench"), raw=False, cassandra=True)
        starts.append(time.monotonic() - t0)
        result["cassandra_s"] = state["cassandra"]["start_s"]
    result["lab_up_s"] = statistics.median(starts)
    result["nodes"] = len(state["cassandra"]["nodes"])
    rss = [
        _rss_mib(p)
        for h in cassandra.database_hosts(state)
        if (p := cassandra.jvm_pid(h["namespace"]))
    ]
    result["rss_median"] = statistics.median(rss)
    result["rss_max"] = max(rss)
    topology = lab_topology(state)
    targets = [
        ExecTarget(endpoint=ep.name, address=ep.address)
        for ep in topology.endpoints
        if ep.role is Role.DATABASE
    ]
    times, analyze_times = [], []
    for _ in range(3):
        t0 = time.monotonic()
        collected = asyncio.run(collect_nodes(LabExec(state), targets, CollectOptions()))
        t1 = time.monotonic()
        analysis = analyze(collected.observations, topology)
        analyze_times.append(time.monotonic() - t1)
        times.append(time.monotonic() - t0)
        assert not collected.problems, collected.problems
        assert {n.state for n in analysis.nodes} == {"UN"}
    result["checks_s"] = statistics.median(times)
    result["analyze_ms"] = statistics.median(analyze_times) * 1000
    result["cql_s"] = _node_reads(state, topology, "cql")
    result["mgmt_s"] = _node_reads(state, topology, "mgmt")
    standins = [
        _rss_mib(p)
        for h in cassandra.database_hosts(state)
        if (p := mgmt_standin.pid(h["namespace"]))
    ]
    result["standin_rss"] = statistics.median(standins)
    build.lab_down()
    return result


CASSANDRA_RUNS = 20
CASSANDRA_STARTS = 3


def bench_cassandra_verdict() -> dict[str, Any]:
    """The default 8-node Cassandra lab (two regions, 2 racks x 2 pods each): fresh starts
    in a row, then healthy runs in a row, each one's verdict and wall time next to the probe
    timeout. The 8 JVMs on 2 cores are the load."""
    from netcheck.lab import cassandra

    cassandra.ensure_runtime()
    starts, failed_starts = [], []
    for _ in range(CASSANDRA_STARTS):
        build.lab_down()
        t0 = time.monotonic()
        try:
            build.lab_up(cassandra=True)
            starts.append(time.monotonic() - t0)
        except net.LabError as exc:
            failed_starts.append(str(exc)[:200])
    if not starts:
        build.lab_up(cassandra=True)
    walls, clean, noisy = [], 0, []
    with tempfile.TemporaryDirectory() as tmp:
        inventory = _write_inventory(tmp)
        for _ in range(CASSANDRA_RUNS):
            wall, proc = _timed_run(inventory, TIMEOUT_S)
            walls.append(wall)
            report = json.loads(proc.stdout)
            loud = [f["code"] for f in report["findings"] if f["severity"] in ("error", "warning")]
            if proc.returncode == 0 and not loud:
                clean += 1
            else:
                noisy.append(f"exit {proc.returncode}: {', '.join(loud) or report['verdict']}")
    build.lab_down()
    return {
        "starts_ok": len(starts),
        "start_median": statistics.median(starts) if starts else 0.0,
        "failed_starts": failed_starts,
        "clean": clean,
        "noisy": noisy,
        "wall_median": statistics.median(walls),
        "wall_max": max(walls),
    }


def _big_log(records: int) -> str:
    """A system.log of `records` records: a real 5.0.8 handshake failure with its whole
    exception chain (tests/data/nodetool) every 20th, healthy lines between them."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(
        os.path.join(here, "tests/data/nodetool/c50-lab-cp-dc1-r1-p0-system-peer-cert-expired.log"),
        encoding="utf-8",
    ) as f:
        failure = f.read().split("\nERROR ")[1]
    healthy = (
        "INFO  [CompactionExecutor:1] 2026-12-01 14:27:{s:02d},000 CompactionTask.java:253 - "
        "Compacted (abc) 4 sstables to [/var/lib/cassandra/data/ks/t-1/nb-{i}-big,] to level=0."
    )
    out = []
    for i in range(records):
        out.append("ERROR " + failure if i % 20 == 0 else healthy.format(s=i % 60, i=i))
    return "\n".join(out) + "\n"


def _big_cluster(nodes: int) -> dict[str, str]:
    """status, gossipinfo and describecluster of one observer of a `nodes`-node cluster."""
    ids = [f"{i:08x}-0f3d-4c6e-9a57-1d2e3f4a5b61" for i in range(nodes)]
    addr = [f"10.{i // 250}.{i % 250}.1" for i in range(nodes)]
    status = (
        "Datacenter: dc1\n=======\nStatus=Up/Down\n|/ State=Normal/Leaving/Joining/Moving\n"
        "--  Address  Load  Tokens  Owns (effective)  Host ID  Rack\n"
        + "".join(
            f"{'DN' if i == 7 else 'UN'}  {a}  1.2 GiB  16  1.0%  {h}  r{i % 3}\n"
            for i, (a, h) in enumerate(zip(addr, ids, strict=True))
        )
    )
    gossip = "".join(
        f"/{a}:7000\n  generation:1700000000\n  heartbeat:{i}\n  STATUS:18:NORMAL,{i}\n"
        f"  DC:8:dc1\n  RACK:10:r{i % 3}\n  HOST_ID:2:{h}\n  RELEASE_VERSION:4:5.0.8\n"
        f"  STATUS_WITH_PORT:19:NORMAL,{i}\n"
        for i, (a, h) in enumerate(zip(addr, ids, strict=True))
    )
    live = ", ".join(f"{a}:7000" for i, a in enumerate(addr) if i != 7)
    described = (
        "Cluster Information:\n\tName: big\n\tSchema versions:\n"
        f"\t\t86afa796-d883-3932-aa73-6b017cef0d19: [{live}]\n\n"
        f"\t\tUNREACHABLE: [{addr[7]}:7000]\n\n"
    )
    return {"status": status, "gossipinfo": gossip, "describecluster": described}


def bench_paste_reading() -> dict[str, Any]:
    """`gossip analyze`'s reader and checks on big inputs, time and peak memory; for the log,
    GNU grep counting the same failure lines beside it (what a person would run first)."""
    import tracemalloc

    from netcheck.diagnosis.gossip import analyze
    from netcheck.nodetool.paste import observations

    def measured(text: str, name: str) -> tuple[float, float, int]:
        """Time untraced, then the peak in a second, traced pass (tracing slows it)."""
        t0 = time.perf_counter()
        analysis = analyze(observations(text, name))
        seconds = time.perf_counter() - t0
        tracemalloc.start()
        analyze(observations(text, name))
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        return seconds, peak, len(analysis.findings)

    out: dict[str, Any] = {}
    log = _big_log(20_000)
    out["log_lines"] = log.count("\n")
    out["log_mib"] = len(log.encode()) / 2**20
    out["log_s"], out["log_peak_mib"], out["log_findings"] = measured(log, "system.log")
    with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
        f.write(log)
    try:
        pattern = "Failed to (properly )?handshake with peer|failed to connect|is now DOWN"
        t0 = time.perf_counter()
        grep = subprocess.run(["grep", "-cE", pattern, f.name], capture_output=True, text=True)
        out["grep_s"] = time.perf_counter() - t0
        out["grep_count"] = int(grep.stdout.strip() or 0)
    finally:
        os.unlink(f.name)
    cluster = _big_cluster(1000)
    for kind, text in cluster.items():
        header = f"$ nodetool {kind}\n"
        out[f"{kind}_s"], out[f"{kind}_peak_mib"], out[f"{kind}_findings"] = measured(
            header + text, f"{kind}.txt"
        )
    return out


def serve_section(served: dict[str, Any], when: str = "") -> str:
    """Section (l); `when` for a section measured alone (--only l)."""
    alone = f" Measured alone on {when} (`bench/run_bench.py --only l`)." if when else ""
    return f"""## (l) `netcheck serve`: memory over {served["runs"]} runs, the cost of a scrape

serve's loop in one process over {served["runs"]} runs of a {served["pods"]}-pod synthetic
mesh ({served["probes"]} probes, 7001 dropped between two clusters, one pod unreachable), 10
reports kept; a scrape of /metrics over HTTP on loopback (median of 50) next to building the
same exposition once, as `--prom-file` does (serve builds it once per run, not per scrape).
The first runs fill the 10 reports kept and warm the allocator; growth is counted from the
100th run on.{alone}

| memory after 10 runs | after 100 | after {served["runs"]} | growth from run 100 | scrape | \
size | built per run |
| --- | --- | --- | --- | --- | --- | --- |
| {served["rss_10"]:.0f} MiB | {served["rss_100"]:.0f} MiB | {served["rss_end"]:.0f} MiB | \
{served["rss_end"] - served["rss_100"]:+.0f} MiB | {served["scrape_ms"]:.2f} ms | \
{served["scrape_bytes"] / 1024:.0f} KiB | {served["prom_file_ms"]:.1f} ms \
({served["prom_file_ms"] / served["scrape_ms"]:.0f} x a scrape) |
"""


def paste_section(p: dict[str, Any], when: str = "") -> str:
    """Section (m); `when` for a section measured alone (--only m)."""
    alone = f" Measured alone on {when} (`bench/run_bench.py --only m`)." if when else ""
    return f"""## (m) Reading what users paste: `gossip analyze` on big inputs

The reader and the checks of `netcheck gossip analyze` (observations, then analyze), one
process: the time of one untraced pass, the peak of a second pass under tracemalloc.{alone}
The log: {p["log_lines"]} lines ({p["log_mib"]:.1f} MiB),
every 20th record a real 5.0.8 handshake failure with its whole exception chain (the JDK's
reason 50 lines down, tests/data/nodetool), healthy lines between; beside it GNU grep counting
the failure lines ({p["grep_count"]}), which finds them but says nothing of why or who. The
cluster: one observer's outputs of a 1,000-node cluster (one node down).

| input | time | peak memory | findings | beside it |
| --- | --- | --- | --- | --- |
| system.log, {p["log_lines"]} lines | {p["log_s"]:.2f} s | {p["log_peak_mib"]:.0f} MiB | \
{p["log_findings"]} | grep -cE {p["grep_s"]:.3f} s: the reader takes \
{p["log_s"] / p["grep_s"]:.0f} x grep's time |
| status, 1,000 nodes | {p["status_s"]:.2f} s | {p["status_peak_mib"]:.1f} MiB | \
{p["status_findings"]} | |
| gossipinfo, 1,000 endpoints | {p["gossipinfo_s"]:.2f} s | {p["gossipinfo_peak_mib"]:.1f} MiB | \
{p["gossipinfo_findings"]} | |
| describecluster, 1,000 addresses on one line | {p["describecluster_s"]:.2f} s | \
{p["describecluster_peak_mib"]:.1f} MiB | {p["describecluster_findings"]} | |
"""


def _big_mcc(datacenters: int) -> str:
    """A MissionControlCluster of many datacenters, three zoned racks each (the guide's shape)."""
    import yaml

    dcs = [
        {
            "metadata": {"name": f"dc{i}"},
            "k8sContext": f"DP_{i}",
            "size": 3,
            "racks": [
                {
                    "name": f"r{j}",
                    "nodeAffinityLabels": {"topology.kubernetes.io/zone": f"z{i}-{j}"},
                }
                for j in range(3)
            ],
        }
        for i in range(datacenters)
    ]
    doc = {
        "apiVersion": "missioncontrol.datastax.com/v1beta2",
        "kind": "MissionControlCluster",
        "metadata": {"name": "big", "namespace": "demo"},
        "spec": {
            "encryption": {"internodeEncryption": {"enabled": True}},
            "k8ssandra": {"cassandra": {"serverVersion": "4.1.8", "datacenters": dcs}},
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def bench_install_checks() -> dict[str, Any]:
    """lint on a large manifest beside PyYAML's own load of it (the floor: lint composes the
    same YAML, keeping every field's line); the CNI's objects of a large cluster read into pod
    networks; cidr plan against many taken ranges; the overlap check across many clusters."""
    import ipaddress
    import tracemalloc

    import yaml

    from netcheck.diagnosis.cidr_plan import plan
    from netcheck.diagnosis.cidrs import cidr_findings
    from netcheck.diagnosis.mission_control import lint
    from netcheck.discovery.cni import cni_facts
    from netcheck.discovery.kube import ContextDiscovery

    def best(fn: Any, runs: int = 3) -> float:
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    out: dict[str, Any] = {}
    text = _big_mcc(300)
    out["mcc_kib"] = len(text.encode()) / 1024
    out["lint_s"] = best(lambda: lint(text, "big.yaml"))
    out["load_s"] = best(lambda: yaml.safe_load(text))
    out["lint_findings"] = len(lint(text, "big.yaml")[0].findings)
    nodes = [
        {
            "metadata": {"name": f"n{i}"},
            "spec": {"ipam": {"podCIDRs": [f"10.{i // 256}.{i % 256}.0/24"]}},
        }
        for i in range(5000)
    ]
    tracemalloc.start()
    t0 = time.perf_counter()
    facts = cni_facts(
        ippools=[], cilium_nodes=nodes, cilium_pools=[], cilium_config=None, eniconfigs=[]
    )
    out["cni_s"] = time.perf_counter() - t0
    out["cni_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    out["cni_networks"] = len(facts.pod_networks)
    taken = [ipaddress.IPv4Network(f"10.{i // 256}.{i % 256}.0/24") for i in range(10_000)]
    out["plan_taken"] = len(taken)
    out["plan_s"] = best(lambda: plan(taken, 500, 110))

    def cluster(c: int) -> ContextDiscovery:
        pools = [
            {"metadata": {"name": f"p{k}"}, "spec": {"cidr": f"10.{c}.{k}.0/24"}}
            for k in range(200)
        ]
        return ContextDiscovery(
            context=f"C{c}",
            server="https://127.0.0.1:6443",
            api_host="127.0.0.1",
            api_port=6443,
            version="v1.34.4",
            nodes=(),
            database_pods=(),
            services=(),
            network_policies=(),
            client_configs=(),
            secrets=(),
            agents=(),
            service_cidrs=(f"172.{16 + c}.0.0/16",),
            warnings=(),
            cni=cni_facts(
                ippools=pools, cilium_nodes=[], cilium_pools=[], cilium_config=None, eniconfigs=[]
            ),
        )

    clusters = [cluster(c) for c in range(20)]
    out["overlap_clusters"] = len(clusters)
    out["overlap_s"] = best(lambda: cidr_findings(clusters))
    return out


def install_section(r: dict[str, Any], when: str = "") -> str:
    """Section (n); `when` for a section measured alone (--only n)."""
    alone = f" Measured alone on {when} (`bench/run_bench.py --only n`)." if when else ""
    rows = [
        (
            "`lint`",
            f"a MissionControlCluster of 300 datacenters, 900 racks ({r['mcc_kib']:.0f} KiB), "
            f"{r['lint_findings']} finding(s)",
            f"{r['lint_s']:.3f} s",
            f"PyYAML's `safe_load` of it {r['load_s']:.3f} s: lint takes "
            f"{r['lint_s'] / r['load_s']:.1f} x the bare load",
        ),
        (
            "CNI objects read",
            f"5,000 CiliumNodes, {r['cni_networks']} pod networks",
            f"{r['cni_s']:.3f} s, {r['cni_peak_mib']:.1f} MiB peak",
            "",
        ),
        (
            "`cidr plan`",
            f"{r['plan_taken']} taken ranges, 500 nodes x 110 pods",
            f"{r['plan_s']:.3f} s",
            "",
        ),
        (
            "overlap check",
            f"{r['overlap_clusters']} clusters x 200 Calico IPPools",
            f"{r['overlap_s']:.3f} s",
            "",
        ),
    ]
    table = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows)
    return f"""## (n) Mission Control install checks: lint, the CNI's pod networks, CIDR plans

One process, best of 3 (the CNI read: one pass, with its peak under tracemalloc).{alone}

| what | input | time | beside it |
| --- | --- | --- | --- |
{table}
"""


SCALE_PODS = (128, 256, 512, 1024, 2048)
SCALE_LIMIT_S = 900  # per size, CPU and wall
SCALE_LIMIT_GIB = 12  # address space per size: the machine has more, a user's laptop less


def bench_scale() -> list[dict[str, Any]]:
    """Each size of bench/meshes.py's compound mesh in a process of its own (bench/scale.py):
    CPU time and peak memory per stage, or why it did not complete."""
    import resource

    def limits() -> None:
        cap = SCALE_LIMIT_GIB << 30
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        resource.setrlimit(resource.RLIMIT_CPU, (SCALE_LIMIT_S, SCALE_LIMIT_S))

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out: list[dict[str, Any]] = []
    for pods in SCALE_PODS:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.scale", str(pods)],
                capture_output=True, text=True, check=False, cwd=root,
                timeout=SCALE_LIMIT_S, preexec_fn=limits,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            out.append({"pods": pods, "failed": f"over {SCALE_LIMIT_S} s"})
            continue
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["killed"])[-1]
            why = "out of memory" if "MemoryError" in proc.stderr else last[:80]
            out.append({"pods": pods, "failed": f"{why} (limit {SCALE_LIMIT_GIB} GiB)"})
            continue
        out.append(json.loads(proc.stdout))
    return out


COLLECTOR_PODS = (256, 1024)
COLLECTOR_LIMIT_S = 1800


def bench_collector() -> list[dict[str, Any]]:
    """The collector asking every agent of the mesh at once (bench/collector.py), each size in
    a process of its own."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out: list[dict[str, Any]] = []
    for pods in COLLECTOR_PODS:
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "bench.collector", str(pods)],
                capture_output=True, text=True, check=False, cwd=root,
                timeout=COLLECTOR_LIMIT_S,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            out.append({"pods": pods, "failed": f"over {COLLECTOR_LIMIT_S} s"})
            continue
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["killed"])[-1]
            out.append({"pods": pods, "failed": last[:100]})
            continue
        out.append({"pods": pods, **json.loads(proc.stdout)})
    return out


def collector_section(rows: list[dict[str, Any]], when: str = "") -> str:
    """Section (q); `when` for a section measured alone (--only q)."""
    lines = [
        "| agents | probes | collector CPU | wall | memory before | peak | per probe |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        if "failed" in r:
            lines.append(f"| {r['pods']} pods | | did not complete: {r['failed']} |")
            continue
        grown = r["peak_mib"] - r["before_mib"]
        lines.append(
            f"| {r['agents']} | {r['probes']:,} | {r['cpu_s']:.1f} s | {r['wall_s']:.0f} s | "
            f"{r['before_mib']:.0f} MiB | {r['peak_mib']:.0f} MiB | "
            f"{grown * 2**20 / r['probes']:.0f} bytes |"
        )
    measured = f" (measured alone, {when})" if when else ""
    table = "\n".join(lines)
    return f"""## (q) The collector asking every agent at once{measured}

bench/collector.py: bench/meshes.py's mesh, one real agent API per database pod (all in one
process on loopback ports, each checking its token, parsing its batches and answering every
target; their allow list leaves out the mesh's lab addresses, so each answer is a real
`not_measured` and no packet is sent). The collector (collector/run.py: collect) asks all of
them at once through HttpAgentTransport: at most 256 connections, batches of at most
256 targets, every answer bounded (1 MiB and 64 KiB a target) and written straight into the
run's table. Peak resident memory of the collector's process before collect and at its end;
per probe: what it grew by, over the probes. Goal (issue 19): bounded for 1,000 agents.

{table}
"""


def growth_exponent(points: list[tuple[float, float]]) -> float:
    """The slope of log(cost) over log(size), least squares: 1 is linear, 2 quadratic."""
    import math

    xs = [math.log(x) for x, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def scale_section(rows: list[dict[str, Any]], when: str = "") -> str:
    """Section (o); `when` for a section measured alone (--only o)."""
    done = [r for r in rows if "stages" in r]
    names = [s["stage"] for s in done[0]["stages"]] if done else []
    head = "| pods | probes | " + " | ".join(names) + " | total CPU | peak memory | findings |"
    lines = [head, "|" + " --- |" * (len(names) + 5)]
    for r in rows:
        if "stages" not in r:
            lines.append(f"| {r['pods']} | | did not complete: {r['failed']} |")
            continue
        cpu = [s["cpu_s"] for s in r["stages"]]
        lines.append(
            f"| {r['pods']} | {r['probes']:,} | "
            + " | ".join(f"{c:.2f} s" for c in cpu)
            + f" | {sum(cpu):.1f} s | {r['stages'][-1]['peak_mib']:.0f} MiB | {r['findings']} |"
        )
    fit = ""
    if len(done) >= 2:
        total = [(r["probes"], sum(s["cpu_s"] for s in r["stages"])) for r in done]
        memory = [(r["probes"], r["stages"][-1]["peak_mib"]) for r in done]
        fit = (
            f"Fitted growth over the probes: CPU time ~ probes^{growth_exponent(total):.2f}, "
            f"peak memory ~ probes^{growth_exponent(memory):.2f}."
        )
    measured = f" (measured alone, {when})" if when else ""
    table = "\n".join(lines)
    return f"""## (o) Scale: plan to every output on growing meshes{measured}

bench/meshes.py's compound mesh (two clusters of four racks, every database pod probing every
other on 7000, 7001 and 8080, the control plane's two nodes on 30600 and both API servers;
five faults: 7001 dropped between the clusters, an isolated pod, 30600 refused to the data
plane, a rack pair stalling, an API server unreachable). CPU time of each stage in a process of
its own (bench/scale.py), peak resident memory at the end; the right diagnosis is five findings
at every size. The plan is kept in columns (collector/plan.py: MeshPlan); the agents' answers
(one outcome code a probe) are made before the clock starts (the probing is sections b, g and
p), and results is the ProbeTable the collector fills from them row by row. Limits per size:
{SCALE_LIMIT_S} s, {SCALE_LIMIT_GIB} GiB. Goal (issue 19): at 1,024 pods at most 20
CPU-seconds and 2 GiB, and 2,048 pods completes.

{table}

{fit}
"""


def blackbox_section(r: dict[str, Any], when: str = "") -> str:
    """Section (p); `when` for a section measured alone (--only p)."""
    from bench import blackbox

    measured = f" (measured alone, {when})" if when else ""
    return f"""## (p) TCP connect probes per second: one agent beside blackbox_exporter{measured}

bench/blackbox.py: the same loopback target (a process that accepts, closes and counts: only
the connects that reached it count, and more than 1 % lost fails the figure),
{blackbox.ROUNDS} rounds of {blackbox.PROBES} probes each,
{blackbox.CONCURRENCY} in flight. The agent in a process of its own, asked through its API in
batches as the collector asks it (rate limit lifted); Debian's {r["version"]}, module
`tcp_connect`, driven by `ab -k` (one HTTP request per probe, its API). Goal (issue 19): the
agent at least 3 x the exporter.

| prober | median | best |
| --- | --- | --- |
| netcheck agent | {r["agent"]:.0f}/s | {r["agent_best"]:.0f}/s |
| blackbox_exporter tcp_connect | {r["exporter"]:.0f}/s | {r["exporter_best"]:.0f}/s |
| ratio, medians | {r["ratio"]:.2f} x | |
"""


def _only_section(path: str, letter: str) -> None:
    """Measure one section alone and put it in the existing file, the rest untouched."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if letter == "m":
        section = paste_section(bench_paste_reading(), when)
    elif letter == "n":
        section = install_section(bench_install_checks(), when)
    elif letter == "o":
        section = scale_section(bench_scale(), when)
    elif letter == "l":
        section = serve_section(bench_serve(), when)
    elif letter == "q":
        section = collector_section(bench_collector(), when)
    elif letter == "r":
        from bench import podshell

        section = podshell.section(podshell.measure(), when)
    else:
        from bench import blackbox

        section = blackbox_section(blackbox.measure(), when)
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, sep, rest = text.partition(f"## ({letter}) ")
    tail = ""
    if sep and "\n## (" in rest:
        tail = "\n## (" + rest.split("\n## (", 1)[1]
    with open(path, "w", encoding="utf-8") as f:
        f.write((head if sep else text.rstrip("\n") + "\n\n") + section + tail)


def main() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)  # `from bench import blackbox` when run as a script
    parser = argparse.ArgumentParser()
    parser.add_argument("--write", default="BENCHMARKS.md")
    parser.add_argument(
        "--only",
        choices=["l", "m", "n", "o", "p", "q", "r"],
        help="measure one section into the file",
    )
    args = parser.parse_args()
    if args.only:
        _only_section(args.write, args.only)
        return
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    wall = bench_run_wall_time()
    inventory = bench_inventory()
    scenarios = bench_scenarios()
    raw_rate = asyncio.run(bench_raw_rate())
    cass = bench_cassandra()
    verdicts = bench_cassandra_verdict()
    k8s = bench_kubernetes()
    up_c, run_c = f"{k8s['up_cassandra']:.1f}", f"{k8s['run_cassandra']:.1f}"
    k8s_rss = "\n".join(
        f"| {name}, both clusters | {mib:.0f} MiB |" for name, mib in sorted(k8s["rss"].items())
    )
    failed_starts = "; ".join(verdicts["failed_starts"])
    noisy = "; ".join(verdicts["noisy"])
    verdict_wall = f"{verdicts['wall_median']:.1f} s / {verdicts['wall_max']:.1f} s"
    rss = f"{cass['rss_median']:.0f} / {cass['rss_max']:.0f} MiB"
    scenario_rows = "\n".join(
        f"| {r['name']} | {r['wall']:.2f} s | {r['top']} | "
        f"{'yes' if r['top'] == r['want'] else 'NO: ' + str(r['want'])} |"
        for r in scenarios
    )
    plain = asyncio.run(bench_probe_rate(echo=False))
    echo = asyncio.run(bench_probe_rate(echo=True))
    diag = [bench_diagnosis(*size) for size in ((2, 2, 2), (3, 3, 10), (3, 3, 20))]
    audits = [bench_isolation_audit(n) for n in (25, 100, 250)]
    served = bench_serve()
    pasted = bench_paste_reading()
    installed = bench_install_checks()
    scaled = bench_scale()
    from bench import blackbox, podshell
    from bench.podshell import section as shell_section

    beside = blackbox.measure()
    asking = bench_collector()
    shelled = podshell.measure()
    audit_rows = "\n".join(
        f"| {a['pods']} | {a['rows']} | {a['audit_s']:.2f} s | {a['negative_probes']} | "
        f"{a['findings_s']:.2f} s | {a['findings']} |"
        for a in audits
    )
    diag_rows = "\n".join(
        f"| {d['pods']} | {d['probes']} | {d['seconds']:.3f} s | {d['findings']} |" for d in diag
    )
    goal = (
        f"1.3 x the timeout ({1.3 * TIMEOUT_S:.1f} s): the raw SYN and trace ride beside the "
        f"probes that time out; not {wall['timeouts']} x {TIMEOUT_S:g} s"
    )
    text = f"""# Benchmarks

Written by `make bench` ({os.path.relpath(__file__)}). Numbers from one machine; compare runs
on the same machine only.

- machine: {machine()}
- date: {when}

## (a) `netcheck run` on the default lab, 7001 dropped between the regions

{wall["probes"]} probes, {wall["timeouts"]} of them time out; per-probe timeout {TIMEOUT_S:g} s;
{RUNS} runs of the CLI, process start included.

| wall time, median | wall time, worst | per-probe timeout | median / timeout | goal |
| --- | --- | --- | --- | --- |
| {wall["median_s"]:.2f} s | {wall["max_s"]:.2f} s | {TIMEOUT_S:g} s | \
{wall["median_s"] / TIMEOUT_S:.2f} x | {goal} |

## (b) TCP probes per second, one agent, open ports on loopback

One agent, concurrency 128, rate limit lifted to 100000/s for the measurement (the default
limit is 200/s), batches of 4000 targets, 3 batches each.

| probe | median | best |
| --- | --- | --- |
| TCP connect | {plain["median"]:.0f}/s | {plain["best"]:.0f}/s |
| TCP connect + 16 KiB echo | {echo["median"]:.0f}/s | {echo["best"]:.0f}/s |

## (c) Memory of a lab agent

Resident set of the lab's agent processes after the runs of (a): median
{wall["agent_rss_mib_median"]:.0f} MiB, largest {wall["agent_rss_mib_max"]:.0f} MiB.

## (d) Diagnosis time on larger meshes

Synthetic meshes (3 ports per pod, every pod an agent) with 7001 dropped from one cluster to
another and one pod unreachable on every port; time of `diagnose()` alone.

| pods | probes | diagnosis | findings |
| --- | --- | --- | --- |
{diag_rows}

## (e) `run --context` through the real API servers, beside the agents reached directly

The same default lab (8 database pods, 2 clusters): `run --context --no-cassandra` on `lab up
--kubernetes --cassandra` (discovery through the real API servers, the agents' token from their
Secret), and `run --inventory` on the plain lab (direct HTTP to the lab's agents). Median of
{RUNS} CLI runs each, process start included; the preflight through the pod proxy is in (j).
The first exits 1: without Cassandra's reads netcheck cannot tell 7001 refused by design (4.0+
without the legacy SSL port) from a fault, and says so. The two runs do not do the same work:
`run --context` probes from each database pod itself (netcheck's ephemeral container, a
`netcheck probe-once` started through exec for each pod's batch), adds the agents'
negative probes of 7000/7001 through the pod proxy, the NetworkPolicy audit and a TLS look at
each node; the inventory run asks 8 agents over HTTP and also probes the lab's API server
hosts, hence more probes. The ratio is the cost of probing as the database pods, not of the
pod proxy alone.

| command | probes | wall time, median |
| --- | --- | --- |
| `netcheck run --context --no-cassandra` x2, from the database pods | {k8s["network_probes"]} | \
{k8s["run_network"]:.2f} s |
| `netcheck run --inventory` (direct HTTP) | {inventory["probes"]} | \
{inventory["run_inventory"]:.2f} s |
| ratio, contexts / inventory | | {k8s["run_network"] / inventory["run_inventory"]:.2f} x |

## (f) Time to diagnosis per lab scenario

Each scenario of tests/test_lab_scenarios.py applied to the default lab; median wall time of 3
`netcheck run --inventory -o json --timeout 1` runs (process start, the mesh, the raw evidence
pass and the diagnosis), the first finding, and whether it is the scenario's expected cause.

| scenario | time to diagnosis | top finding | expected |
| --- | --- | --- | --- |
{scenario_rows}

## (g) Raw probes per second, one agent, loopback

One agent with CAP_NET_RAW, concurrency 128, rate limit lifted to 100000 packets/s (the
default limit, 200/s, counts every raw packet). Each SYN is built with scapy, sent through a
raw socket, and its answer matched from the raw TCP/ICMP sockets; median of 3 batches.

| raw probe | packets per second, median |
| --- | --- |
| SYN (2000 per batch) | {raw_rate["syn"]:.0f}/s |
| latency (200 pairs x 10 SYNs per batch) | {raw_rate["latency"]:.0f}/s |

## (h) Real Cassandra 5.0 in the lab

Apache Cassandra {CASSANDRA_VERSION} (Maven Central jars, already cached), Java 17, one JVM per
database pod, heap {CASSANDRA_HEAP}, internode TLS; {cass["nodes"]} nodes in two regions, all
started at once. Start-up: until every node logged "Startup complete" and saw every other UP;
median of 2 fresh labs. The checks: `nodetool status`, `describecluster`, `gossipinfo` and the
log of every node through the lab's exec seam (2 at a time), parsed and checked; median of 3.
The Management API on 8080 is the lab's stand-in (a JVM per pod that reads the node's JMX), so
its read time is the agents' side plus JMX, not the real API's.

| measure | value |
| --- | --- |
| `netcheck lab up --cassandra`, to a CQL login on every node | {cass["lab_up_s"]:.1f} s |
| Cassandra start-up to every node UP in every view (last lab) | {cass["cassandra_s"]:.1f} s |
| resident memory per Cassandra JVM, median / largest | {rss} |
| Cassandra checks, all {cass["nodes"]} nodes (nodetool x3 + log each) | {cass["checks_s"]:.2f} s |
| of which checks and cross-check (parsing is in collection) | {cass["analyze_ms"]:.1f} ms |
| CQL reads, all {cass["nodes"]} nodes (login, system.local, peers_v2) | {cass["cql_s"]:.2f} s |
| Management API reads, all {cass["nodes"]} nodes (readiness, endpoints) | {cass["mgmt_s"]:.2f} s |
| resident memory per Management API stand-in JVM, median | {cass["standin_rss"]:.0f} MiB |

## (i) Verdicts and time to verdict on the healthy 8-node Cassandra lab

The default lab with `--cassandra`: 8 Cassandra JVMs and 8 Management API stand-ins on this
machine are the load. {CASSANDRA_STARTS} fresh `lab up --cassandra` in a row, then
{CASSANDRA_RUNS} `netcheck run --inventory -o json --timeout {TIMEOUT_S:g}` in a row (the mesh, the
raw evidence pass, the agents' CQL and Management API reads, and nodetool x3 plus the log of
every node, read while the mesh is probed). A clean run is exit 0 with no error or warning
finding.

| measure | value |
| --- | --- |
| lab starts that succeeded | {verdicts["starts_ok"]} of {CASSANDRA_STARTS} {failed_starts} |
| `lab up --cassandra` (to a CQL login on every node), median | {verdicts["start_median"]:.1f} s |
| clean runs | {verdicts["clean"]} of {CASSANDRA_RUNS} {noisy} |
| time to verdict, median / largest | {verdict_wall} |
| time to verdict / probe timeout, median | {verdicts["wall_median"] / TIMEOUT_S:.1f} x |
| target (issue 13) | 2 x the probe timeout + 5 s = {2 * TIMEOUT_S + 5:g} s |

## (j) The lab's real Kubernetes (`lab up --kubernetes`)

Binaries already built (`make install`). `lab up --kubernetes` from nothing: the network, etcd,
kube-apiserver, kube-controller-manager and kube-scheduler per cluster, the RBAC of the user
netcheck-ci, and the lab kubelet until every Node is Ready. Then `deploy` of both contexts (the
DaemonSet controller makes the agent pods, the lab kubelet runs them from the agent image) and
{RUNS} `preflight` runs through the real pod proxy (each deploys, probes and undeploys). The
agent image (`make image`, buildah) rebuilt from cached parts: the Debian base (debootstrap,
once: about 35 s) and the dependencies' wheels.

| measure | value |
| --- | --- |
| `make image` after a source change (base and wheels cached) | {k8s["image_rebuild"]:.1f} s |
| agent image size | {k8s["image_size"]} |
| `lab up --kubernetes` to every Node Ready | {k8s["up"]:.1f} s |
| `deploy`, both contexts, to every agent Ready | {k8s["deploy"]:.1f} s |
| `preflight`, median | {k8s["preflight"]:.1f} s |
| `lab up --kubernetes --cassandra` to 8 Cassandra pods serving, CQL login on each | {up_c} s |
| `run --context`, both contexts, with nodetool, logs and CQL, median of {RUNS} | {run_c} s |
| target (issue 14) | control planes to agents running under 30 s |
{k8s_rss}

The `run --context` above probes the mesh from each database pod (an ephemeral container,
added by the first run, `netcheck probe-once` through exec per batch), under the guide's
NetworkPolicy in both clusters, with the agents' negative probes of 7000/7001 and each node's
internode TLS looked at against the lab's CA (`--ca-file`).

## (k) The NetworkPolicy audit on larger clusters

Two clusters of N/2 database pods each under the guide's policy (the other cluster admitted by
its pod CIDR), 16 agents per cluster whose negative probes were all blocked; CPU time of the
audit (every database pod's 7000 and 7001 against every other database pod and the outsiders)
and of the findings from the audit and the negative probes. The audit grows with the square of
the pods (each pair is evaluated): fine for the tens of pods of a real deployment, and to be
grouped (pods that the same policies select, sources the same peers match) at issue 19's scale.

| database pods | audit rows | audit | negative probes | findings from both | findings |
| --- | --- | --- | --- | --- | --- |
{audit_rows}

{serve_section(served)}
{paste_section(pasted)}
{install_section(installed)}
{scale_section(scaled)}
{blackbox_section(beside)}
{collector_section(asking)}
{shell_section(shelled)}"""
    with open(args.write, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
