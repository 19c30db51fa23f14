"""Faults injected into the real lab; netcheck must mark exactly the affected pairs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from netcheck.collector.plan import plan_mesh
from netcheck.lab import build, faults
from netcheck.model.topology import Endpoint, Topology
from tests.lab_support import lab_down_keeping_logs, require_root, run_json, write_inventory

pytestmark = pytest.mark.lab

Expect = Callable[[Endpoint, Endpoint, int], str | None]


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    require_root()
    failed = request.session.testsfailed
    build.lab_up()
    inventory = str(tmp_path_factory.mktemp("lab") / "inventory.yaml")
    topo = write_inventory(inventory)
    yield inventory, topo
    lab_down_keeping_logs(request, failed)


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


@dataclass(frozen=True)
class Diagnosis:
    """A finding the scenario must produce: its cause code and where it puts the cause."""

    code: str
    src_scope: str
    dst_scope: str
    location: str = ""  # a substring of the finding's location
    asymmetric: bool = False


CP, DP = "every CP_EAST endpoint", "every DP_WEST endpoint"


@dataclass
class Scenario:
    name: str
    faults: list[dict[str, Any]]
    rule: Expect  # the matrix outcome of every affected probe (raw-refined)
    diagnoses: list[Diagnosis] = field(default_factory=list)  # errors and warnings, exactly
    info: list[Diagnosis] = field(default_factory=list)
    fast: bool = False  # no probe waits for a timeout: repeated 20 times


def between(d: Diagnosis) -> set[tuple[str, str]]:
    return {(d.src_scope, d.dst_scope), (d.dst_scope, d.src_scope)}


SCENARIOS = [
    Scenario(
        "DROP 7001 between the regions",
        [dict(kind="drop", src="CP_EAST", dst="DP_WEST", port=7001)],
        lambda s, d, p: "filtered" if cross(s, d) and p == 7001 else None,
        [Diagnosis("FIREWALL_DROP", CP, DP, "silent after hop 2 (198.19.126.")],
    ),
    Scenario(
        "REJECT 7001 between the regions (icmp-admin-prohibited)",
        [dict(kind="reject", src="CP_EAST", dst="DP_WEST", port=7001)],
        lambda s, d, p: "prohibited" if cross(s, d) and p == 7001 else None,
        [Diagnosis("FIREWALL_REJECT", CP, DP, "rejected by 198.19.126.")],
        fast=True,
    ),
    Scenario(
        "REJECT 7000 from one rack, one direction",
        [dict(kind="reject", src="CP_EAST/r1", dst="DP_WEST", port=7000, both=False)],
        lambda s, d, p: (
            "prohibited"
            if in_rack(s, "CP_EAST", "r1") and d.cluster == "DP_WEST" and p == 7000
            else None
        ),
        [Diagnosis("FIREWALL_REJECT", "rack CP_EAST/dc1/r1", DP, "198.19.126.2", True)],
        fast=True,
    ),
    Scenario(
        "tcp-reset on 8080 by the WAN firewall",
        [dict(kind="reject", src="CP_EAST", dst="DP_WEST", port=8080, reject_with="tcp-reset")],
        lambda s, d, p: "refused" if cross(s, d) and p == 8080 else None,
        [Diagnosis("FIREWALL_RESET", CP, DP, "RST from hop 2 (198.19.126.")],
        fast=True,
    ),
    Scenario(
        "port 7001 closed on one rack's pods (RST from the pods themselves)",
        [
            dict(
                kind="reject",
                src="DP_WEST/r1",
                dst="DP_WEST/r2",
                port=7001,
                both=False,
                reject_with="tcp-reset",
            )
        ],
        lambda s, d, p: (
            "refused"
            if in_rack(s, "DP_WEST", "r1") and in_rack(d, "DP_WEST", "r2") and p == 7001
            else None
        ),
        [Diagnosis("PORT_CLOSED", "rack DP_WEST/dc2/r1", "rack DP_WEST/dc2/r2", "", True)],
        fast=True,
    ),
    Scenario(
        "NetworkPolicy-like REJECT of 7000 at the destination pods, one direction",
        [dict(kind="reject", src="CP_EAST/r1", dst="CP_EAST/r2", port=7000, both=False)],
        lambda s, d, p: (
            "prohibited"
            if in_rack(s, "CP_EAST", "r1") and in_rack(d, "CP_EAST", "r2") and p == 7000
            else None
        ),
        [
            Diagnosis(
                "NETWORK_POLICY_REJECT",
                "rack CP_EAST/dc1/r1",
                "rack CP_EAST/dc1/r2",
                "answered by the destination",
                True,
            )
        ],
        fast=True,
    ),
    Scenario(
        "DROP 8080 at the destination pods, one direction",
        [dict(kind="drop", src="cp-dc1-r1-p0", dst="CP_EAST/r2", port=8080, both=False)],
        lambda s, d, p: (
            "filtered"
            if s.name == "cp-dc1-r1-p0" and in_rack(d, "CP_EAST", "r2") and p == 8080
            else None
        ),
        [
            Diagnosis(
                "FIREWALL_DROP",
                "cp-dc1-r1-p0",
                "rack CP_EAST/dc1/r2",
                "dropped at the destination",
                True,
            )
        ],
    ),
    Scenario(
        "one pod blackholed",
        [dict(kind="blackhole", src="dp-dc2-r2-p1")],
        lambda s, d, p: "filtered" if "dp-dc2-r2-p1" in (s.name, d.name) else None,
        [Diagnosis("POD_ISOLATED", "every endpoint", "dp-dc2-r2-p1", "pod dp-dc2-r2-p1")],
    ),
    Scenario(
        "WAN MTU 1200 with ICMP fragmentation-needed blocked (black hole)",
        [dict(kind="mtu", mtu=1200)],
        lambda s, d, p: "stalled" if cross(s, d) else None,
        [Diagnosis("PATH_MTU_BLACK_HOLE", CP, DP, "path MTU 1200")],
    ),
    Scenario(
        "WAN MTU 1200 with path MTU discovery working",
        [dict(kind="mtu", mtu=1200, allow_frag_needed=True)],
        lambda s, d, p: None,
        [],
        [Diagnosis("PATH_MTU_REDUCED", CP, DP, "frag-needed from 198.18.")],
        fast=True,
    ),
    Scenario(
        "masquerade of CP_EAST's egress",
        [dict(kind="masquerade", src="CP_EAST", both=False)],
        lambda s, d, p: "nat" if s.cluster == "CP_EAST" and cross(s, d) and d.stand_in else None,
        [Diagnosis("SOURCE_NAT", CP, DP, "", True)],
        fast=True,
    ),
    Scenario(
        "route from CP_EAST to one DP_WEST rack missing",
        [dict(kind="route", src="CP_EAST", dst="DP_WEST/r2", both=False)],
        # the SYN-ACKs back to DP_WEST/r2 take the missing route too
        lambda s, d, p: (
            "filtered"
            if (s.cluster == "CP_EAST" and in_rack(d, "DP_WEST", "r2"))
            or (in_rack(s, "DP_WEST", "r2") and d.cluster == "CP_EAST")
            else None
        ),
        [Diagnosis("ROUTE_MISSING", CP, "rack DP_WEST/dc2/r2", "first router")],
    ),
    Scenario(
        "route missing on one pod towards its own cluster's other rack",
        [dict(kind="route", src="cp-dc1-r1-p0", dst="CP_EAST/r2", both=False)],
        lambda s, d, p: (
            "unreachable"
            if s.name == "cp-dc1-r1-p0" and in_rack(d, "CP_EAST", "r2")
            else "filtered"
            if in_rack(s, "CP_EAST", "r2") and d.name == "cp-dc1-r1-p0"
            else None
        ),
        [Diagnosis("ROUTE_MISSING", "cp-dc1-r1-p0", "rack CP_EAST/dc1/r2", "has no route")],
    ),
    Scenario(
        "two faults at once, each one direction",
        [
            dict(kind="drop", src="CP_EAST", dst="DP_WEST", port=7001, both=False),
            dict(kind="reject", src="DP_WEST/r1", dst="CP_EAST/r2", port=8080, both=False),
        ],
        lambda s, d, p: (
            "filtered"
            if s.cluster == "CP_EAST" and d.cluster == "DP_WEST" and p == 7001
            else "prohibited"
            if in_rack(s, "DP_WEST", "r1") and in_rack(d, "CP_EAST", "r2") and p == 8080
            else None
        ),
        [
            Diagnosis("FIREWALL_DROP", CP, DP, "198.19.126.2", True),
            Diagnosis(
                "FIREWALL_REJECT",
                "rack DP_WEST/dc2/r1",
                "rack CP_EAST/dc1/r2",
                "198.19.126.6",
                True,
            ),
        ],
    ),
]


SCENARIOS.append(
    Scenario(
        "DROP and REJECT of the same port on different pairs",
        [
            dict(kind="drop", src="CP_EAST", dst="DP_WEST", port=7000, both=False),
            dict(kind="reject", src="DP_WEST/r1", dst="CP_EAST/r2", port=7000, both=False),
        ],
        lambda s, d, p: (
            "filtered"
            if s.cluster == "CP_EAST" and d.cluster == "DP_WEST" and p == 7000
            else "prohibited"
            if in_rack(s, "DP_WEST", "r1") and in_rack(d, "CP_EAST", "r2") and p == 7000
            else None
        ),
        # one direction each, but neither reverse is open (the other fault sits there): not
        # "asymmetric"
        [
            Diagnosis("FIREWALL_DROP", CP, DP, "198.19.126.2"),
            Diagnosis(
                "FIREWALL_REJECT", "rack DP_WEST/dc2/r1", "rack CP_EAST/dc1/r2", "198.19.126.6"
            ),
        ],
    )
)


SCENARIOS.append(
    Scenario(
        "WAN MTU black hole and a masquerade of CP_EAST's egress on the same path",
        [dict(kind="mtu", mtu=1200), dict(kind="masquerade", src="CP_EAST", both=False)],
        lambda s, d, p: "stalled" if cross(s, d) else None,
        # the NAT shows on 7000 (plain TCP echo); on 7001 the TLS handshake itself stalls
        [
            Diagnosis("PATH_MTU_BLACK_HOLE", CP, DP, "path MTU 1200"),
            Diagnosis("SOURCE_NAT", CP, DP, ""),
        ],
    )
)


def check_diagnosis(findings: list[dict[str, Any]], want: list[Diagnosis], severities) -> None:
    got = [f for f in findings if f["severity"] in severities]
    # one finding per cause, never one per pair
    assert len(got) == len(want), [(f["code"], f["summary"]) for f in got]
    for d in want:
        match = [
            f
            for f in got
            if f["code"] == d.code
            and (f["src_scope"], f["dst_scope"]) in between(d)
            and d.location in f["location"]
        ]
        assert match, (d, [(f["code"], f["summary"], f["location"]) for f in got])
        assert match[0]["asymmetric"] is d.asymmetric, match[0]["summary"]
        if d.asymmetric:
            assert (match[0]["src_scope"], match[0]["dst_scope"]) == (d.src_scope, d.dst_scope)


def diagnosis_of(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    return sorted(
        (f["severity"], f["code"], f["summary"], f["location"]) for f in report["findings"]
    )


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


def test_clean_lab_passes_20_runs_in_a_row(clean_lab):
    """A false FAIL on a healthy cluster is as bad as a missed fault: many runs, all clean."""
    inventory, _ = clean_lab
    for i in range(20):
        run = run_json(inventory)
        noisy = [
            (f["code"], f["summary"])
            for f in run.report["findings"]
            if f["severity"] in ("error", "warning")
        ]
        assert run.code == 0 and not noisy, f"run {i + 1}: {run.report['verdict']} {noisy}"


def test_random_loss_is_loss_not_an_mtu_limit(clean_lab):
    """10 % of TCP packets dropped at random between the regions (iptables statistic): the
    DF probes lose packets of every size, which must read as loss, never as an MTU limit; the
    probes that timed out or stalled now and then are that loss's doing, not a firewall and
    not a finding each."""
    inventory, _ = clean_lab
    faults.add_fault("loss", src="CP_EAST", dst="DP_WEST", percent=10)
    for _ in range(3):
        run = run_json(inventory)
        said = [
            (f["code"], f["src_cluster"], f["dst_cluster"])
            for f in run.report["findings"]
            if f["severity"] in ("error", "warning")
        ]
        assert len(said) == 1, run.report["findings"]
        code, *clusters = said[0]
        assert code == "PACKET_LOSS" and set(clusters) == {"CP_EAST", "DP_WEST"}
        for path in run.report["paths"]:
            assert path["black_hole"] is False
            assert path["path_mtu"] in (1500, None), path


def test_a_drop_on_a_lossy_path_is_the_drop_and_the_loss(clean_lab):
    """Silence on a path that loses packets is asked again until the loss could not explain it:
    the dropped port is a FIREWALL_DROP, every other failure is the loss."""
    inventory, topo = clean_lab
    faults.add_fault("loss", src="CP_EAST", dst="DP_WEST", percent=10)
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    dropped = expected(topo, lambda s, d, p: "filtered" if cross(s, d) and p == 7001 else None)
    for _ in range(3):
        run = run_json(inventory)
        assert {k: v for k, v in run.failing().items() if k[2] == 7001} == dropped
        said = sorted(
            (f["code"], f["location"])
            for f in run.report["findings"]
            if f["severity"] in ("error", "warning")
        )
        assert [code for code, _ in said] == ["FIREWALL_DROP", "PACKET_LOSS"], said
        assert "silent after hop 2 (198.19.126." in said[0][1]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario_marks_the_pairs_and_names_the_cause(clean_lab, scenario):
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
    if scenario.diagnoses:
        assert run.code == 1 and run.report["verdict"] == "fail"
    else:
        assert run.code == 0 and run.report["verdict"] == "pass", run.report["findings"]
    check_diagnosis(run.report["findings"], scenario.diagnoses, ("error", "warning"))
    check_diagnosis(run.report["findings"], scenario.info, ("info",))
    failing_pairs = len({(s, d) for s, d, _ in want})
    assert sum(f["affected_pairs"] for f in run.report["findings"]) >= failing_pairs


FAST = [s for s in SCENARIOS if s.fast]


@pytest.mark.parametrize("scenario", FAST[:3], ids=[s.name for s in FAST[:3]])
def test_fast_scenarios_give_the_same_diagnosis_20_times(clean_lab, scenario):
    inventory, _ = clean_lab
    for fault in scenario.faults:
        faults.add_fault(**fault)
    first = run_json(inventory)
    assert first.report["findings"]
    for _ in range(19):
        again = run_json(inventory)
        assert again.failing() == first.failing()
        assert diagnosis_of(again.report) == diagnosis_of(first.report)


def test_drop_between_regions_reads_like_one_cause(clean_lab, tmp_path):
    inventory, topo = clean_lab
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    page = tmp_path / "report.html"
    run = run_json(inventory, "--html-file", str(page))
    (finding,) = run.report["findings"]
    assert finding["code"] == "FIREWALL_DROP" and finding["ports"] == [7001]
    assert finding["summary"] == (
        "7001 is dropped silently between every CP_EAST endpoint and every DP_WEST endpoint, "
        "both directions: 32 pairs; silent after hop 2 (198.19.126.2); "
        "silent after hop 2 (198.19.126.6)"
    )
    assert "198.18.0.0/20" in finding["hint"] and "198.18.32.0/20" in finding["hint"]
    # all timeouts run concurrently: the run takes about one timeout, not a sum of them
    assert run.report["duration_s"] < 5
    # the HTML page of the same run marks the rack pairs across the regions on 7001
    from tests.test_html_report import cells_of

    failing = {(p, s, d) for p, s, d, state in cells_of(page.read_text()) if state == "fail"}
    racks = {
        c: {"/".join(ep.scope("rack")) for ep in topo.endpoints if ep.cluster == c and ep.rack}
        for c in ("CP_EAST", "DP_WEST")
    }
    across = {(s, d) for s in racks["CP_EAST"] for d in racks["DP_WEST"]}
    assert failing == {("7001", s, d) for s, d in across | {(d, s) for s, d in across}}


def test_unreachable_agent_and_wrong_token(clean_lab, tmp_path):
    inventory, _ = clean_lab
    text = Path(inventory).read_text(encoding="utf-8")
    broken = tmp_path / "one-agent-down.yaml"
    # the first agent's API port points where nothing listens
    broken.write_text(text.replace(":9925", ":9", 1))
    run = run_json(str(broken))
    # (what failed is said: CI once saw exit 1 here, which no rerun showed)
    assert run.code == 3 and run.report["verdict"] == "incomplete", (
        run.failing(),
        [(f["code"], f["summary"]) for f in run.report["findings"]],
    )
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


def test_the_run_workflow_called_from_python_gives_the_clis_diagnosis(clean_lab):
    """The library a second caller (`serve`, a user's script) uses: run_inventory with the
    same inventory gives the CLI's findings for the same fault, tells its lines to the
    Feedback it is given instead of printing them, and neither prints nor exits."""
    import asyncio

    from netcheck.agent.process import read_token
    from netcheck.discovery.inventory import load_inventory
    from netcheck.reports.json_report import to_dict
    from netcheck.workflows.feedback import Feedback
    from netcheck.workflows.run import RunOptions, run_inventory

    inventory, _ = clean_lab
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    cli = run_json(inventory)
    topology = load_inventory(inventory)
    token = read_token(topology.token_file or "")
    heard: list[str] = []
    options = RunOptions(timeout=1, cassandra=None)
    report = asyncio.run(
        run_inventory(topology, token, options, feedback=Feedback(say=heard.append))
    )
    mine = to_dict(report)
    assert (report.verdict.exit_code, cli.code) == (1, 1)
    assert [(f["code"], f["summary"]) for f in mine["findings"]] == [
        (f["code"], f["summary"]) for f in cli.report["findings"]
    ]
    assert heard == []
    # an agent that does not answer is told to the feedback, once
    broken = topology.endpoints[0]
    # the first agent's API port points where nothing listens
    dead = replace(broken, agent=(broken.agent or "").replace(":9925", ":9"))
    topo = replace(topology, endpoints=(dead, *topology.endpoints[1:]))
    asyncio.run(run_inventory(topo, token, options, feedback=Feedback(say=heard.append)))
    assert len(heard) == 1 and dead.agent in heard[0] and "unreachable" in heard[0], heard
