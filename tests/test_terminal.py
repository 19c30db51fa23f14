"""The terminal view never hides a failure: whole matrix or the failing pairs listed."""

from rich.console import Console

from netcheck.diagnosis.findings import diagnose
from netcheck.model.outcome import Outcome
from netcheck.model.report import RunReport
from netcheck.reports import terminal
from tests.helpers import results_for, two_region_topology


def render(width: int) -> str:
    topo = two_region_topology()
    results = results_for(
        topo,
        lambda s, d, p: Outcome.TIMEOUT if s.cluster != d.cluster and p == 7001 else None,
        lambda s, d, p: Outcome.NAT if s.name == "cp-dc1-r1-p0" and d.rack == "r2" else None,
    )
    report = RunReport(
        topology=topo,
        probes=results,
        findings=diagnose(topo, results),
        started_at="2026-11-24T10:00:00+00:00",
        duration_s=2.0,
    )
    console = Console(width=width, record=True, color_system=None)
    terminal.render(report, console)
    return console.export_text()


def test_matrix_fits_80_columns_and_shows_every_failure():
    text = render(80)
    assert "…" not in text
    rows = [line for line in text.splitlines() if line.startswith((" cp-", " dp-"))]
    assert len(rows) == 8
    assert sum(row.count("T") for row in rows) == 32  # 7001 both ways between the regions
    # cp-dc1-r1-p0 to the four r2 pods on 3 ports, less the two 7001 timeouts
    assert sum(row.count("N") for row in rows) == 10
    assert "verdict: FAIL" in text and "PORT_TIMEOUT" in text and "SOURCE_NAT" in text
    assert "0/16 timeout:16" in text


def test_too_narrow_lists_the_failing_pairs_instead():
    text = render(46)
    assert "pod matrix omitted" in text
    assert "cp-dc1-r1-p0 → dp-dc2-r1-p0:7001 timeout" in text
    assert "and 12 more (see -o json)" in text  # 42 failing, 30 listed
