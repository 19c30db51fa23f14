"""One self-contained HTML page of a run (`run --html-file`, serve's /report.html): the verdict,
the findings with their hints, a source rack × destination rack heatmap per port (inline SVG),
the paths between clusters and Cassandra's views. No script, no font, no fetch: it opens from a
file, on a phone (the heatmaps scroll sideways) and on paper (@media print).

The page is rendered by Jinja2 with autoescaping from reports/templates/report.html.j2 (the
checkout's, or the copy a wheel carries): every string from the run (names, summaries, hints,
details from agents) is escaped.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from netcheck.bundled import top_level
from netcheck.model.findings import Severity
from netcheck.model.outcome import Outcome
from netcheck.model.paths import cluster_paths
from netcheck.model.report import RunReport

CELL = 34  # pixels of a heatmap cell
LABEL = 170  # pixels for the row labels (left)
TOP = 130  # pixels for the column labels, written aslant (top)
SLANT = 110  # room to the right for the last column's slanted label
TEMPLATE = "report.html.j2"


def template_dir() -> Path:
    """reports/templates: $NETCHECK_TEMPLATES, else the checkout's, else the wheel's copy."""
    return top_level("NETCHECK_TEMPLATES", "reports", "templates")


@functools.cache
def _environment(directory: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, kw_only=True)
class HeatCell:
    row: int
    col: int
    src: str
    dst: str
    state: str  # pass, fail, closed (refused by design), unmeasured
    share: float  # failing pairs / measured pairs
    text: str  # the cell's title: counts by outcome


@dataclass(frozen=True, kw_only=True)
class Heatmap:
    port: int
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    cells: tuple[HeatCell, ...]
    width: int
    height: int
    failing: int  # cells with a failing pair


def _group(scope: tuple[str, ...]) -> str:
    return "/".join(part for part in scope if part)


def heatmaps(report: RunReport) -> tuple[Heatmap, ...]:
    """Per port, each (source rack, destination rack) cell: failing when a measured pair
    failed (refusals of a port closed by design are not failures), closed when every pair was
    refused by design, unmeasured when none was measured."""
    by_design = set(report.cassandra.expected_closed) if report.cassandra else set()
    per_port: dict[int, list[Any]] = {}
    for cell in report.cells("rack"):
        per_port.setdefault(cell.port, []).append(cell)
    eps = {ep.name: ep for ep in report.topology.endpoints}
    closed_racks: dict[tuple[tuple[str, ...], int], int] = {}
    for name, port in by_design:
        if name in eps:
            key = (eps[name].scope("rack"), port)
            closed_racks[key] = closed_racks.get(key, 0) + 1
    # failed and not normal: 7001 refused by design, Globalnet's NAT (RunReport.by_design)
    table = report.table
    rack = [eps[name].scope("rack") if name in eps else () for name in table.names]
    bad = Counter((rack[table.src[i]], rack[table.dst[i]], table.port[i]) for i in report.abnormal)
    out = []
    for port, cells in sorted(per_port.items()):
        rows = tuple(sorted({_group(c.src) for c in cells}))
        cols = tuple(sorted({_group(c.dst) for c in cells}))
        drawn = []
        for c in cells:
            counts = dict(c.outcomes)
            measured = sum(n for o, n in counts.items() if o is not Outcome.NOT_MEASURED)
            refused_by_design = (c.dst, port) in closed_racks
            failing = bad[(c.src, c.dst, port)]
            if not measured:
                state = "unmeasured"
            elif failing:
                state = "fail"
            elif refused_by_design and counts.get(Outcome.REFUSED):
                state = "closed"
            else:
                state = "pass"
            text = ", ".join(f"{n} {o.value}" for o, n in c.outcomes)
            drawn.append(
                HeatCell(
                    row=rows.index(_group(c.src)),
                    col=cols.index(_group(c.dst)),
                    src=_group(c.src),
                    dst=_group(c.dst),
                    state=state,
                    share=failing / measured if measured else 0.0,
                    text=text,
                )
            )
        out.append(
            Heatmap(
                port=port,
                rows=rows,
                cols=cols,
                cells=tuple(drawn),
                width=LABEL + CELL * len(cols) + SLANT,
                height=TOP + CELL * len(rows) + 10,
                failing=sum(c.state == "fail" for c in drawn),
            )
        )
    return tuple(out)


SEVERITY_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def to_html(report: RunReport) -> str:
    findings = sorted(report.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 3))
    counts = {s.value: sum(f.severity is s for f in report.findings) for s in Severity}
    return (
        _environment(str(template_dir()))
        .get_template(TEMPLATE)
        .render(
            report=report,
            verdict=report.verdict.value,
            findings=findings,
            counts=counts,
            heatmaps=heatmaps(report),
            paths=cluster_paths(report.topology, report.evidence),
            cassandra=report.cassandra,
            cell=CELL,
            label=LABEL,
            top=TOP,
            probes=len(report.table),
            failed=sum(n for o, n in report.table.counts().items() if o.failed),
            unmeasured=report.table.counts().get(Outcome.NOT_MEASURED, 0),
        )
    )
