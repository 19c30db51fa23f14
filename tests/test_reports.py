"""Report formats against their contracts: JSON Schema, JUnit, Prometheus (promtool)."""

import io
import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families

from netcheck.diagnosis.findings import diagnose
from netcheck.model.outcome import Outcome
from netcheck.model.report import RunReport
from netcheck.reports import json_report, junit, prometheus
from tests.helpers import results_for, two_region_topology

SCHEMA = json.loads(
    (Path(__file__).parent.parent / "reports" / "netcheck-run.schema.json").read_text()
)


def report(*rules):
    topo = two_region_topology()
    results = results_for(topo, *rules)
    return RunReport(
        topology=topo,
        probes=results,
        findings=diagnose(topo, results),
        started_at="2026-11-24T10:00:00+00:00",
        duration_s=1.25,
    )


def dropped_7001(s, d, p):
    return Outcome.TIMEOUT if s.cluster != d.cluster and p == 7001 else None


def unknown_8080(s, d, p):
    return Outcome.NOT_MEASURED if s.name == "cp-dc1-r1-p0" and p == 8080 else None


@pytest.mark.parametrize("rules", [(), (dropped_7001,), (unknown_8080,)])
def test_json_matches_schema(rules):
    doc = json.loads(json_report.to_json(report(*rules)))
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())


def test_the_network_policy_audit_matches_the_schema():
    """`run --context`'s audit rows, as discovery and the audit make them from a real-shaped
    policy (tests/test_isolation.py builds the same)."""
    from dataclasses import replace

    from netcheck.diagnosis.isolation import audit
    from tests.netpol_cases import db_only
    from tests.test_isolation import cluster

    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [db_only()])
    rows = audit([east, cluster("DP_WEST", ["198.18.33.10"], [])])
    doc = json.loads(json_report.to_json(replace(report(), isolation=rows)))
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    first = doc["network_policy"][0]
    assert first["pod"] == "demo/cp-east-0" and first["port"] == 7000
    assert first["admitted"] == ["pods cassandra.datastax.com/cluster=demo in namespace demo"]
    assert first["refused_database_pods"] == ["DP_WEST/demo/dp-west-0"]
    assert len(doc["network_policy"]) == 6  # 3 database pods, 2 ports


def test_schema_rejects_a_wrong_document():
    doc = json_report.to_dict(report(dropped_7001))
    doc["probes"][0]["outcome"] = "kinda-open"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_junit_one_testcase_per_cluster_pair_and_port():
    root = ET.fromstring(junit.to_junit(report(dropped_7001, unknown_8080)))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == 4 * 3  # 2x2 cluster pairs, 3 ports
    failed = sorted(c.get("name") for c in cases if c.find("failure") is not None)
    assert failed == ["CP_EAST -> DP_WEST tcp/7001", "DP_WEST -> CP_EAST tcp/7001"]
    skipped = sorted(c.get("name") for c in cases if c.find("skipped") is not None)
    assert skipped == ["CP_EAST -> CP_EAST tcp/8080", "CP_EAST -> DP_WEST tcp/8080"]
    assert suite.get("failures") == "2" and suite.get("skipped") == "2"


def test_junit_does_not_fail_7001_refused_by_design():
    """Cassandra 4.0+ without the legacy SSL port refuses 7001 by design: the verdict passes,
    and so must the JUnit a CI gates on (it used to count those refusals as failures)."""
    import dataclasses

    from netcheck.model.gossip import GossipAnalysis
    from netcheck.model.report import Verdict

    base = report(lambda s, d, p: Outcome.REFUSED if p == 7001 else None)
    closed = tuple((ep.name, 7001) for ep in base.topology.endpoints)
    rep = dataclasses.replace(
        base,
        findings=(),  # the Cassandra layer says the refusals once, as info
        cassandra=GossipAnalysis(nodes=(), findings=(), warnings=(), expected_closed=closed),
    )
    assert rep.verdict is Verdict.PASS
    suite = ET.fromstring(junit.to_junit(rep)).find("testsuite")
    assert suite.get("failures") == "0", junit.to_junit(rep)
    # a 7001 refused where it is not closed by design is still a failure
    partly = dataclasses.replace(
        rep,
        cassandra=GossipAnalysis(nodes=(), findings=(), warnings=(), expected_closed=closed[:4]),
    )
    assert ET.fromstring(junit.to_junit(partly)).find("testsuite").get("failures") != "0"


def test_prometheus_exposition_is_valid_and_bounded():
    rep = report(dropped_7001)
    text = prometheus.to_exposition(rep)
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make install` (Debian package prometheus)"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    families = {f.name: f for f in text_string_to_metric_families(text)}
    pairs = families["netcheck_pairs"].samples
    assert sum(s.value for s in pairs) == len(rep.probes)
    timeouts = [s for s in pairs if s.labels["outcome"] == "timeout"]
    assert {(s.labels["src_cluster"], s.labels["dst_cluster"]) for s in timeouts} == {
        ("CP_EAST", "DP_WEST"),
        ("DP_WEST", "CP_EAST"),
    }
    assert all("src" not in s.labels for s in pairs)  # rack level, not pod level
    assert len(pairs) <= 4 * 4 * 3 * 2  # rack pairs x ports x outcomes present
    verdict = {s.labels["verdict"]: s.value for s in families["netcheck_run_verdict"].samples}
    assert verdict == {"pass": 0, "fail": 1, "incomplete": 0}
    assert "netcheck_pod_pair_up" not in families
    # the diagnosed failures, as the alert rules read them: one cause, both directions
    (cause,) = [s for s in families["netcheck_finding_pairs"].samples if s.value]
    assert cause.labels["code"] == rep.findings[0].code and cause.labels["port"] == "7001"
    assert cause.labels["severity"] == "error" and cause.value == rep.findings[0].affected_pairs
    with_pods = {
        f.name for f in text_string_to_metric_families(prometheus.to_exposition(rep, True))
    }
    assert "netcheck_pod_pair_up" in with_pods


class _Writes(io.StringIO):
    """A file that counts its writes and remembers the largest."""

    largest = 0
    writes = 0

    def write(self, s: str) -> int:
        self.largest = max(self.largest, len(s))
        self.writes += 1
        return super().write(s)


@pytest.mark.parametrize("probes", ["failing", "all"])
@pytest.mark.parametrize("indent", [None, 2])
def test_streamed_json_validates_lists_what_it_says_and_counts_everything(probes, indent):
    """The 64-pod mesh of the scale benchmark (12 k probes, five faults): written as it goes,
    valid against the schema in both forms;
    `failing` lists exactly the probes that are not open, and the rack-pair counts add up to
    every probe and every outcome either way."""
    from collections import Counter

    full = _mesh_report(64)
    results = full.probes
    out = _Writes()
    json_report.write_json(full, out, indent=indent, probes=probes)
    text = out.getvalue()
    doc = json.loads(text)
    jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
    assert doc["probes_listed"] == probes
    listed = Counter((p["src"], p["dst"], p["port"], p["outcome"]) for p in doc["probes"])
    wanted = results if probes == "all" else [r for r in results if not r.outcome.passed]
    assert listed == Counter((r.src, r.dst, r.port, r.outcome.value) for r in wanted)
    counted: Counter[str] = Counter()
    for row in doc["probe_counts"]:
        counted.update(row["outcomes"])
    assert counted == Counter(r.outcome.value for r in results)
    # streamed: each probe written on its own; the largest write is a section that grows with
    # the endpoints or the rack pairs (here the 68 endpoints), never with the probes
    assert out.writes > len(doc["probes"]) and out.largest < 64 * 1024
    if indent is None:
        assert "\n" not in text.rstrip("\n")
    else:
        assert text == json.dumps(doc, indent=indent) + "\n"


def test_run_prints_compact_json_of_the_failing_probes_by_default(capsys):
    """`run -o json` without options: one compact line, the failing probes only."""
    from netcheck.cli.common import JsonForm, write_outputs

    failing = report(dropped_7001)
    write_outputs(failing, "json", None, None, None, False)
    text = capsys.readouterr().out
    doc = json.loads(text)
    assert text.count("\n") == 1 and doc["probes_listed"] == "failing"
    assert doc["probes"] and {p["outcome"] for p in doc["probes"]} == {"timeout"}
    write_outputs(failing, "json", None, None, None, False, None, JsonForm(indent=2, probes="all"))
    doc = json.loads(capsys.readouterr().out)
    assert len(doc["probes"]) == len(failing.probes)


def _mesh_report(pods: int) -> RunReport:
    from bench import meshes

    topo = meshes.topology(pods)
    results = meshes.results(topo)
    return RunReport(
        topology=topo,
        probes=results,
        findings=diagnose(topo, results),
        started_at="2026-12-01T00:00:00Z",
        duration_s=1.0,
    )


def test_junit_names_at_most_a_hundred_pairs_per_case_and_counts_the_rest():
    """7001 dropped between two 32-pod clusters: the case says 1024 of them failed and names
    a hundred, then how many more (a CI page does not show half a million lines)."""
    root = ET.fromstring(junit.to_junit(_mesh_report(64)))
    (case,) = [c for c in root.iter("testcase") if c.get("name") == "C0 -> C1 tcp/7001"]
    failure = case.find("failure")
    assert failure.get("message") == "1024 of 1024 pairs failed"
    lines = failure.text.splitlines()
    assert len(lines) == 101 and lines[-1].startswith("... and 924 more pairs")


def test_every_level_of_the_matrix_is_the_sum_of_its_racks():
    """RunReport.cells: one pass over the probes at rack level; the cluster and whole-mesh
    cells summed from it equal counting the probes at that level directly."""
    from collections import Counter

    from netcheck.model.matrix import aggregate

    rep = _mesh_report(32)
    for level in ("all", "cluster", "datacenter", "rack"):
        assert rep.cells(level) == aggregate(rep.topology, rep.probes, level)
    total: Counter[str] = Counter()
    for cell in rep.cells("all"):
        total.update({o.value: n for o, n in cell.outcomes})
    assert total == Counter(p.outcome.value for p in rep.probes)
