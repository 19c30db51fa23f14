from netcheck.diagnosis.findings import diagnose
from netcheck.model.findings import Severity
from netcheck.model.outcome import Outcome
from tests.helpers import results_for, two_region_topology


def cross(s, d):
    return s.cluster != d.cluster


def test_clean_mesh_has_no_findings():
    topo = two_region_topology()
    assert diagnose(topo, results_for(topo)) == ()


def test_one_port_dropped_between_regions_is_one_finding():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and p == 7001 else None
    )
    (f,) = diagnose(topo, results)
    assert f.code == "PORT_TIMEOUT" and f.severity is Severity.ERROR
    assert f.ports == (7001,)
    assert {f.src_cluster, f.dst_cluster} == {"CP_EAST", "DP_WEST"}
    assert f.affected_pairs == 32  # 16 pod pairs each way
    assert "both directions" in f.summary
    assert "198.18.0.0/20" in f.hint and "198.18.32.0/20" in f.hint


def test_one_direction_only_is_called_asymmetric():
    topo = two_region_topology()
    results = results_for(
        topo,
        lambda s, d, p: Outcome.TIMEOUT if s.cluster == "CP_EAST" and cross(s, d) else None,
    )
    (f,) = diagnose(topo, results)
    assert f.src_cluster == "CP_EAST" and f.dst_cluster == "DP_WEST"
    assert f.ports == (7000, 7001, 8080)
    assert f.affected_pairs == 16
    assert "one direction only" in f.summary


def test_rack_scope_and_second_independent_fault():
    topo = two_region_topology()
    results = results_for(
        topo,
        lambda s, d, p: (
            Outcome.UNREACHABLE
            if (s.cluster, s.rack) == ("CP_EAST", "r1") and d.cluster == "DP_WEST" and p == 7000
            else None
        ),
        lambda s, d, p: Outcome.STALLED if cross(s, d) and p == 8080 else None,
    )
    findings = {f.code: f for f in diagnose(topo, results)}
    assert set(findings) == {"HOST_UNREACHABLE", "PATH_MTU_STALL"}
    rack = findings["HOST_UNREACHABLE"]
    assert rack.src_scope == "rack CP_EAST/dc1/r1" and rack.affected_pairs == 8
    assert findings["PATH_MTU_STALL"].affected_pairs == 32


def test_blackholed_pod_is_one_finding():
    topo = two_region_topology()
    victim = "dp-dc2-r2-p1"
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if victim in (s.name, d.name) else None
    )
    (f,) = diagnose(topo, results)
    assert victim in f.summary and "both directions" in f.summary
    assert f.affected_pairs == 14  # 7 peers, each way


def test_not_measured_is_a_warning_not_a_pass():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.NOT_MEASURED if d.name == "cp-dc1-r1-p0" else None
    )
    (f,) = diagnose(topo, results)
    assert f.code == "NOT_MEASURED" and f.severity is Severity.WARNING


def test_unusable_agent_is_named():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.NOT_MEASURED if s.name == "cp-dc1-r1-p0" else None
    )
    (f,) = diagnose(topo, results, (("cp-dc1-r1-p0", "agent http://x is unreachable"),))
    assert f.code == "AGENT_UNAVAILABLE" and "cp-dc1-r1-p0" in f.summary
    assert f.hint == "agent http://x is unreachable"
