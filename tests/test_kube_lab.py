"""preflight and run --context end to end: fake API servers in front of the real lab.

The collector reaches the lab agents only through each fake's pod proxy; every probe crosses
the lab's namespaces, routers and faults for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netcheck.lab import build, faults
from tests.kubefake import FakeClusters, rbac_from_manifest
from tests.kubeworld import mission_control_world
from tests.lab_support import netcheck, require_root

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[1]
RBAC = (ROOT / "probes" / "rbac" / "netcheck-user.yaml").read_text()
DP_API = "DP_WEST=198.18.48.20:6443"  # the lab's DP_WEST API server as the control plane sees it


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    require_root()
    state, _ = build.lab_up()
    with FakeClusters(["CP_EAST", "DP_WEST"]) as fakes:
        mission_control_world(fakes, state["hosts"], live=True)
        for api in fakes.apis.values():
            api.rules = rbac_from_manifest(RBAC, "netcheck-ci")
        path = tmp_path_factory.mktemp("kube") / "kubeconfig"
        path.write_text(fakes.kubeconfig())
        fakes.path = str(path)  # type: ignore[attr-defined]
        fakes.token_file = state["token_file"]  # type: ignore[attr-defined]
        yield fakes
    build.lab_down()


@pytest.fixture
def clean(world):
    faults.clear_faults()
    for api in world.apis.values():
        api.proxy_enabled = True
    yield world
    faults.clear_faults()


def preflight(world, *extra: str):
    proc = netcheck(
        "preflight",
        "--kubeconfig",
        world.path,
        "--context",
        "CP_EAST",
        "--context",
        "DP_WEST",
        "--control-plane",
        "CP_EAST",
        "--token-file",
        world.token_file,
        "--api-server",
        DP_API,
        "--timeout",
        "1",
        "-o",
        "json",
        *extra,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def run_both(world):
    """`netcheck run --context CP_EAST --context DP_WEST` with the agents deploy put there."""
    proc = netcheck(
        "run",
        "--kubeconfig",
        world.path,
        "--context",
        "CP_EAST",
        "--context",
        "DP_WEST",
        "-o",
        "json",
        "--timeout",
        "1",
        "--no-cassandra",  # this lab runs no Cassandra (test_lab_cassandra.py covers it)
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def failing(report):
    return {
        (p["src"], p["dst"], p["port"]): p["outcome"]
        for p in report["probes"]
        if p["outcome"] != "open"
    }


def test_preflight_passes_on_a_healthy_lab_and_cleans_up(clean, tmp_path):
    junit = tmp_path / "preflight.xml"
    code, report, err = preflight(clean, "--junit", str(junit))
    assert code == 0, (err, failing(report))
    eps = report["endpoints"]
    agents = [e for e in eps if e["role"] == "database"]
    nodes = [e for e in eps if e["role"] == "control-plane-node"]
    apis = [e for e in eps if e["role"] == "api-server"]
    assert len(agents) == 8 and all(e["namespace"] == "netcheck" and e["node"] for e in agents)
    assert len(nodes) == 4 and {e["address"] for e in nodes} == {
        "198.18.17.10",
        "198.18.17.11",
        "198.18.17.12",
        "198.18.17.13",
    }
    assert [(a["cluster"], a["address"]) for a in apis] == [("DP_WEST", "198.18.48.20")]
    by_port: dict[int, int] = {}
    for p in report["probes"]:
        by_port[p["port"]] = by_port.get(p["port"], 0) + 1
    # 8 agents x 7 peers on each database port; every agent to the 4 CP nodes' NodePort;
    # only the 4 control-plane agents to the data plane's API server
    assert by_port == {7000: 56, 7001: 56, 8080: 56, 30600: 32, 6443: 4}
    assert all(p["outcome"] == "open" for p in report["probes"])
    assert 'failures="0"' in junit.read_text()
    for api in clean.apis.values():  # undeployed, and deploy applied exactly the manifests
        assert not api.all("DaemonSet") and not api.all("Pod", "netcheck")
        expected = {"ConfigMap", "DaemonSet", "Namespace", "Secret", "ServiceAccount"}
        if api.context == "CP_EAST":
            expected.add("Service")  # the NodePort 30600 in front of the agents
        assert {o["kind"] for o in api.applied} == expected


def test_preflight_names_the_dropped_port_between_the_clusters(clean):
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    code, report, _ = preflight(clean)
    assert code == 1
    bad = failing(report)
    assert bad and set(bad.values()) == {"filtered"} and {k[2] for k in bad} == {7001}
    assert len(bad) == 2 * 4 * 4  # both directions between the two clusters' 4 agents
    top = report["findings"][0]
    assert (top["code"], top["ports"]) == ("FIREWALL_DROP", [7001])
    assert "198.19.126." in top["location"]  # the raw traceroute through the pod proxy
    assert {top["src_cluster"], top["dst_cluster"]} == {"CP_EAST", "DP_WEST"}


def test_preflight_finds_the_nodeport_and_api_server_blocked(clean):
    faults.add_fault(
        "reject", src="DP_WEST", dst="CP_EAST", port=30600, both=False, reject_with="tcp-reset"
    )
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=6443, both=False)
    code, report, _ = preflight(clean)
    assert code == 1
    bad = failing(report)
    nodeport = {k: v for k, v in bad.items() if k[2] == 30600}
    api = {k: v for k, v in bad.items() if k[2] == 6443}
    assert len(nodeport) == 16 and set(nodeport.values()) == {"refused"}
    assert len(api) == 4 and set(api.values()) == {"filtered"}
    assert len(bad) == 20
    codes = {(f["code"], tuple(f["ports"])) for f in report["findings"]}
    # 30600 is the node's only probed port: no SYN-ACK of its own to compare the RST with
    assert ("PORT_REFUSED", (30600,)) in codes and ("FIREWALL_DROP", (6443,)) in codes


def test_run_context_probes_the_database_pods_by_name(clean):
    deploy = netcheck(
        "deploy", "--kubeconfig", clean.path, "--all-contexts", "--token-file", clean.token_file
    )
    assert deploy.returncode == 0, deploy.stderr
    try:
        proc = run_both(clean)
        assert proc.returncode == 0, proc.stderr
        report = json.loads(proc.stdout)
        names = sorted(e["name"] for e in report["endpoints"])
        assert names[0] == "demo-dc1-r1-sts-0" and len(names) == 8
        ep = next(e for e in report["endpoints"] if e["name"] == "demo-dc2-r2-sts-1")
        assert (ep["cluster"], ep["namespace"], ep["node"]) == (
            "DP_WEST",
            "demo",
            "node-dp-dc2-r2-p1",
        )
        assert len(report["probes"]) == 8 * 7 * 3

        # a NetworkPolicy-like REJECT on 7000 into one DP_WEST rack
        faults.add_fault("reject", src="CP_EAST", dst="DP_WEST/r1", port=7000, both=False)
        proc = run_both(clean)
        assert proc.returncode == 1
        bad = failing(json.loads(proc.stdout))
        assert set(bad.values()) == {"prohibited"} and len(bad) == 4 * 2
        assert {d for _, d, _ in bad} == {"demo-dc2-r1-sts-0", "demo-dc2-r1-sts-1"}

        # the pod proxy of one cluster stops working: its agents are named, the rest measured
        faults.clear_faults()
        clean.apis["DP_WEST"].proxy_enabled = False
        proc = run_both(clean)
        assert proc.returncode == 3
        report = json.loads(proc.stdout)
        measured = [p for p in report["probes"] if p["outcome"] != "not_measured"]
        assert len(measured) == 4 * 7 * 3 and all(p["outcome"] == "open" for p in measured)
        assert "the pod proxy is disabled" in proc.stderr
        assert {f["code"] for f in report["findings"]} == {"AGENT_UNAVAILABLE"}
    finally:
        clean.apis["DP_WEST"].proxy_enabled = True
        netcheck("undeploy", "--kubeconfig", clean.path, "--all-contexts")


def test_run_context_without_agents_says_to_deploy(clean):
    proc = netcheck("run", "--kubeconfig", clean.path, "--context", "DP_WEST", "-o", "json")
    assert proc.returncode == 3
    assert "run `netcheck deploy --context DP_WEST` first" in json.loads(proc.stdout)["problems"][0]
