"""JUnit XML: one testcase per (source cluster, destination cluster, port)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections import defaultdict

from netcheck.model.outcome import Outcome
from netcheck.model.report import RunReport

# pairs named per testcase: a CI page cannot show half a million lines of one dropped port
# between two 500-pod clusters; the JSON report lists every one
LISTED = 100


def _listed(lines: list[str], total: int) -> str:
    more = f"\n... and {total - len(lines)} more pairs (the JSON report lists them all)"
    return "\n".join(lines) + (more if total > len(lines) else "")


def to_junit(report: RunReport) -> str:
    eps = {ep.name: ep for ep in report.topology.endpoints}
    # one case per cluster pair and port: how many probes from the aggregation, which did
    # not pass from the few that did not
    totals = {
        (c.src[0], c.dst[0], c.port): sum(n for _, n in c.outcomes) for c in report.cells("cluster")
    }
    # the rows that failed (not by design) and those not measured, by case, from the columns
    table = report.table
    cluster = [eps[name].cluster if name in eps else "" for name in table.names]
    bad_rows: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    unknown_rows: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for rows, into in (
        (report.abnormal, bad_rows),
        (table.rows_where(Outcome.NOT_MEASURED), unknown_rows),
    ):
        for i in rows:
            into[(cluster[table.src[i]], cluster[table.dst[i]], table.port[i])].append(i)
    groups = {
        key: (total, bad_rows.get(key, []), unknown_rows.get(key, []))
        for key, total in totals.items()
    }
    suite = ET.Element(
        "testsuite",
        name="netcheck",
        tests=str(len(groups)),
        timestamp=report.started_at,
        time=f"{report.duration_s:.3f}",
    )
    failures = skipped = 0
    # failed excludes what is normal (RunReport.abnormal): 7001 refused on Cassandra 4.0+,
    # Globalnet's NAT
    for (sc, dc, port), (total, bad_at, unknown_at) in sorted(groups.items()):
        case = ET.SubElement(
            suite, "testcase", classname=f"netcheck.{sc}.{dc}", name=f"{sc} -> {dc} tcp/{port}"
        )
        bad = [table.row(i) for i in bad_at[:LISTED]]
        unknown = [table.row(i) for i in unknown_at[:LISTED]]
        if bad:
            failures += 1
            el = ET.SubElement(
                case,
                "failure",
                type="connectivity",
                message=f"{len(bad_at)} of {total} pairs failed",
            )
            el.text = _listed(
                [f"{p.src} -> {p.dst}:{p.port} {p.outcome.value}: {p.detail}" for p in bad],
                len(bad_at),
            )
        elif unknown:
            skipped += 1
            el = ET.SubElement(
                case, "skipped", message=f"{len(unknown_at)} of {total} pairs not measured"
            )
            el.text = _listed(
                [f"{p.src} -> {p.dst}:{p.port}: {p.detail}" for p in unknown],
                len(unknown_at),
            )
    # findings that are not about probe pairs (address plan) fail a case of their own
    for f in report.findings:
        if f.severity.value == "error" and not f.ports:
            failures += 1
            case = ET.SubElement(
                suite, "testcase", classname="netcheck.plan", name=f"{f.code} {f.src_scope}"
            )
            ET.SubElement(case, "failure", type=f.code, message=f.summary).text = f.hint
    for problem in report.problems:
        case = ET.SubElement(suite, "testcase", classname="netcheck.setup", name=problem[:80])
        ET.SubElement(case, "error", type="not-checked", message=problem)
    suite.set("tests", str(len(suite)))
    suite.set("failures", str(failures))
    suite.set("skipped", str(skipped))
    suite.set("errors", str(len(report.problems)))
    suites = ET.Element("testsuites")
    suites.append(suite)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
