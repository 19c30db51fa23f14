"""Faults injected into the real lab; netcheck must mark exactly the affected pairs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from netcheck.collector.plan import plan_mesh
from netcheck.lab import build, faults
from netcheck.model.topology import Endpoint, Topology
from tests.lab_support import require_root, run_json, write_inventory

pytestmark = pytest.mark.lab

Expect = Callable[[Endpoint, Endpoint, int], str | None]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    require_root()
    build.lab_up()
    inventory = str(tmp_path_factory.mktemp("lab") / "inventory.yaml")
    topo = write_inventory(inventory)
    yield inventory, topo
    build.lab_down()


@pytest.fixture
def clean_lab(lab):
    faults.clear_faults()
    yield lab
    faults.clear_faults()


def expected(topo: Topology, rule: Expect) -> dict[tuple[str, str, int], str]:
    eps = {ep.name: ep for ep in topo.endpoints}
    out = {}
    for spec in plan_mesh(topo):
        outcome = rule(eps[spec.src], eps[spec.dst], spec.port)
        if outcome is not None:
            out[(spec.src, spec.dst, spec.port)] = outcome
    return out


def cross(s: Endpoint, d: Endpoint) -> bool:
    return s.cluster != d.cluster


def in_rack(ep: Endpoint, cluster: str, rack: str) -> bool:
    return ep.cluster == cluster and ep.rack == rack


@dataclass
class Scenario:
    name: str
    faults: list[dict[str, Any]]
    rule: Expect
    codes: set[str] = field(default_factory=set)


SCENARIOS = [
    Scenario(
        "drop 7001 between the regions",
        [dict(kind="drop", src="CP_EAST", dst="DP_WEST", port=7001)],
        lambda s, d, p: "timeout" if cross(s, d) and p == 7001 else None,
        {"PORT_TIMEOUT"},
    ),
    Scenario(
        "reject 7000 from one rack, one direction (icmp-admin-prohibited)",
        [dict(kind="reject", src="CP_EAST/r1", dst="DP_WEST", port=7000, both=False)],
        lambda s, d, p: (
            "unreachable"
            if in_rack(s, "CP_EAST", "r1") and d.cluster == "DP_WEST" and p == 7000
            else None
        ),
        {"HOST_UNREACHABLE"},
    ),
    Scenario(
        "reject 8080 with tcp-reset between the regions",
        [dict(kind="reject", src="CP_EAST", dst="DP_WEST", port=8080, reject_with="tcp-reset")],
        lambda s, d, p: "refused" if cross(s, d) and p == 8080 else None,
        {"PORT_REFUSED"},
    ),
    Scenario(
        "blackholed pod",
        [dict(kind="blackhole", src="dp-dc2-r2-p1")],
        lambda s, d, p: "timeout" if "dp-dc2-r2-p1" in (s.name, d.name) else None,
        {"PORT_TIMEOUT"},
    ),
    Scenario(
        "WAN MTU 1200 with ICMP fragmentation-needed blocked",
        [dict(kind="mtu", mtu=1200)],
        lambda s, d, p: "stalled" if cross(s, d) else None,
        {"PATH_MTU_STALL"},
    ),
    Scenario(
        "WAN MTU 1200 with PMTU discovery working",
        [dict(kind="mtu", mtu=1200, allow_frag_needed=True)],
        lambda s, d, p: None,
    ),
    Scenario(
        "masquerade of CP_EAST's egress",
        [dict(kind="masquerade", src="CP_EAST", both=False)],
        lambda s, d, p: "nat" if s.cluster == "CP_EAST" and cross(s, d) and d.stand_in else None,
        {"SOURCE_NAT"},
    ),
    Scenario(
        "route from CP_EAST to one DP_WEST rack missing",
        [dict(kind="route", src="CP_EAST", dst="DP_WEST/r2", both=False)],
        # the SYN-ACKs back to DP_WEST/r2 are lost too
        lambda s, d, p: (
            "timeout"
            if (s.cluster == "CP_EAST" and in_rack(d, "DP_WEST", "r2"))
            or (in_rack(s, "DP_WEST", "r2") and d.cluster == "CP_EAST")
            else None
        ),
        {"PORT_TIMEOUT"},
    ),
    Scenario(
        "route missing on one pod towards its own cluster's other rack",
        [dict(kind="route", src="cp-dc1-r1-p0", dst="CP_EAST/r2", both=False)],
        lambda s, d, p: (
            "unreachable"
            if s.name == "cp-dc1-r1-p0" and in_rack(d, "CP_EAST", "r2")
            else "timeout"
            if in_rack(s, "CP_EAST", "r2") and d.name == "cp-dc1-r1-p0"
            else None
        ),
        {"HOST_UNREACHABLE", "PORT_TIMEOUT"},
    ),
    Scenario(
        "drop 8080 inside a cluster, one direction",
        [dict(kind="drop", src="cp-dc1-r1-p0", dst="CP_EAST/r2", port=8080, both=False)],
        lambda s, d, p: (
            "timeout"
            if s.name == "cp-dc1-r1-p0" and in_rack(d, "CP_EAST", "r2") and p == 8080
            else None
        ),
        {"PORT_TIMEOUT"},
    ),
    Scenario(
        "two faults at once, each one direction",
        [
            dict(kind="drop", src="CP_EAST", dst="DP_WEST", port=7001, both=False),
            dict(kind="reject", src="DP_WEST/r1", dst="CP_EAST/r2", port=8080, both=False),
        ],
        lambda s, d, p: (
            "timeout"
            if s.cluster == "CP_EAST" and d.cluster == "DP_WEST" and p == 7001
            else "unreachable"
            if in_rack(s, "DP_WEST", "r1") and in_rack(d, "CP_EAST", "r2") and p == 8080
            else None
        ),
        {"PORT_TIMEOUT", "HOST_UNREACHABLE"},
    ),
]


def test_clean_lab_passes(clean_lab, tmp_path):
    inventory, topo = clean_lab
    junit, prom = tmp_path / "r.xml", tmp_path / "r.prom"
    run = run_json(inventory, "--junit", str(junit), "--prom-file", str(prom))
    assert run.code == 0, run.stderr
    assert run.report["verdict"] == "pass"
    assert run.failing() == {}
    assert len(run.report["probes"]) == len(plan_mesh(topo)) > 100
    assert not [f for f in run.report["findings"] if f["severity"] in ("error", "warning")]
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0" and int(suite.get("tests")) >= 8


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_fault_marks_exactly_the_affected_pairs(clean_lab, scenario):
    inventory, topo = clean_lab
    for fault in scenario.faults:
        faults.add_fault(**fault)
    run = run_json(inventory)
    want = expected(topo, scenario.rule)
    got = run.failing()
    assert got == want, (
        f"missing {sorted(set(want) - set(got))[:5]}, extra {sorted(set(got) - set(want))[:5]}, "
        f"wrong {[(k, got[k], want[k]) for k in want if k in got and got[k] != want[k]][:5]}"
    )
    if want:
        assert run.code == 1 and run.report["verdict"] == "fail"
    else:
        assert run.code == 0 and run.report["verdict"] == "pass"
    codes = {f["code"] for f in run.report["findings"] if f["severity"] == "error"}
    assert codes == scenario.codes
    # one finding per cause, never one per pair
    assert len(run.report["findings"]) == len(scenario.codes)
    assert sum(f["affected_pairs"] for f in run.report["findings"]) >= len(
        {(s, d) for s, d, _ in want}
    )


def test_drop_between_regions_reads_like_one_cause(clean_lab):
    inventory, _ = clean_lab
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    run = run_json(inventory)
    (finding,) = run.report["findings"]
    assert finding["code"] == "PORT_TIMEOUT" and finding["ports"] == [7001]
    assert finding["summary"] == (
        "7001 times out between every CP_EAST endpoint and every DP_WEST endpoint, "
        "both directions: 32 pairs"
    )
    assert "198.18.0.0/20" in finding["hint"] and "198.18.32.0/20" in finding["hint"]
    # all timeouts run concurrently: the run takes about one timeout, not a sum of them
    assert run.report["duration_s"] < 5


def test_unreachable_agent_and_wrong_token(clean_lab, tmp_path):
    inventory, _ = clean_lab
    text = Path(inventory).read_text(encoding="utf-8")
    broken = tmp_path / "one-agent-down.yaml"
    # the first agent's API port points where nothing listens
    broken.write_text(text.replace(":9925", ":9", 1))
    run = run_json(str(broken))
    assert run.code == 3 and run.report["verdict"] == "incomplete"
    dead = {p["src"] for p in run.report["probes"] if p["outcome"] == "not_measured"}
    assert dead == {"cp-dc1-r1-p0"}
    assert run.failing().keys() == {
        (p["src"], p["dst"], p["port"]) for p in run.report["probes"] if p["src"] in dead
    }
    assert [f["code"] for f in run.report["findings"]] == ["AGENT_UNAVAILABLE"]
    assert "cp-dc1-r1-p0" in run.report["findings"][0]["summary"]
    lines = [line for line in run.stderr.splitlines() if line]
    assert len(lines) == 1 and "unreachable" in lines[0]

    wrong = tmp_path / "wrong-token"
    wrong.write_text("0" * 64)
    run = run_json(inventory, "--token-file", str(wrong))
    assert run.code == 3 and run.report["verdict"] == "incomplete"
    assert {p["outcome"] for p in run.report["probes"]} == {"not_measured"}
    assert "rejected the token" in run.stderr and "Traceback" not in run.stderr
