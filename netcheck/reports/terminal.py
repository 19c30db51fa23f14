"""The terminal view: cluster-pair summary, pod matrix, findings and verdict."""

from __future__ import annotations

import itertools

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import DOWN_STATES, CqlRead, GossipAnalysis, MgmtRead
from netcheck.model.outcome import Outcome
from netcheck.model.paths import cluster_paths
from netcheck.model.probe_table import OUTCOME_CODE
from netcheck.model.report import RunReport, Verdict

POD_MATRIX_MAX = 40
STYLE = {Outcome.OPEN: "green", Outcome.NOT_MEASURED: "yellow"}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
VERDICT_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold red",
    Verdict.INCOMPLETE: "bold yellow",
}


def _cell(counts: dict[Outcome, int]) -> Text:
    total = sum(counts.values())
    ok = counts.get(Outcome.OPEN, 0)
    text = Text(f"{ok}/{total}", style="green" if ok == total else "red")
    bad = [f"{o.value}:{n}" for o, n in counts.items() if o is not Outcome.OPEN]
    if bad:
        text.append(
            " " + ", ".join(bad), style="red" if any(o.failed for o in counts) else "yellow"
        )
    return text


def cluster_table(report: RunReport) -> Table:
    cells = report.cells("cluster")
    ports = sorted({c.port for c in cells})
    table = Table(
        title="Connectivity by cluster pair and port (open/probed)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("source → destination", no_wrap=True)
    for p in ports:
        table.add_column(str(p), justify="left", no_wrap=True)
    rows: dict[tuple[str, str], dict[int, Text]] = {}
    for c in cells:
        rows.setdefault((c.src[0], c.dst[0]), {})[c.port] = _cell(dict(c.outcomes))
    for (s, d), by_port in sorted(rows.items()):
        table.add_row(f"{s} → {d}", *(by_port.get(p, Text("—", style="dim")) for p in ports))
    return table


LEGEND = (
    "one mark per port, in port order: · open, T timeout, F filtered, P prohibited, "
    "R refused, U unreachable, S stalled, X tls failed, N nat, E error, ? not measured"
)


def pod_matrix(report: RunReport, width: int) -> Table | None:
    """Rows probe columns; None when it cannot be shown whole in `width` columns."""
    topo = report.topology
    srcs = [ep for ep in topo.endpoints if ep.has_agent]
    dsts = list(topo.endpoints)
    if len(dsts) > POD_MATRIX_MAX:
        return None  # before reading the probes: a big mesh has millions
    by_pair: dict[tuple[str, str], list[tuple[int, Outcome]]] = {}
    for p in report.probes:
        by_pair.setdefault((p.src, p.dst), []).append((p.port, p.outcome))
    cell_width = max([len(str(len(dsts)))] + [len(v) for v in by_pair.values()])
    name_width = max((len(s.name) for s in srcs), default=6)
    if name_width + 4 + len(dsts) * (cell_width + 1) > width:
        return None
    table = Table(
        title=f"Pod matrix (rows probe columns; {LEGEND})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 0),
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("source", no_wrap=True)
    for i in range(len(dsts)):
        table.add_column(str(i + 1), justify="center", no_wrap=True, min_width=cell_width + 1)
    for s in srcs:
        row: list[Text] = []
        for d in dsts:
            text = Text()
            for _, o in sorted(by_pair.get((s.name, d.name), [])):
                text.append(o.letter, style=STYLE.get(o, "bold red"))
            row.append(text)
        table.add_row(s.name, *row)
    return table


def paths_table(report: RunReport) -> Table | None:
    """Latency, loss and path MTU by cluster pair (raw evidence); None without any."""
    paths = cluster_paths(report.topology, report.evidence)
    if not paths:
        return None
    table = Table(
        title="Paths by cluster pair (raw probes: SYN round trip, loss, path MTU)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for column in ("source → destination", "pairs", "p50 ms", "p99 ms", "loss", "path MTU"):
        table.add_column(column, no_wrap=True)
    for p in paths:
        mtu = Text("—", style="dim")
        if p.path_mtu is not None:
            style = "bold red" if p.black_hole else "yellow" if p.path_mtu != p.local_mtu else ""
            mtu = Text(f"{p.path_mtu}{' black hole' if p.black_hole else ''}", style=style)
        table.add_row(
            f"{p.src_cluster} → {p.dst_cluster}",
            str(p.pairs),
            "—" if p.p50_ms is None else f"{p.p50_ms:.2f}",
            "—" if p.p99_ms is None else f"{p.p99_ms:.2f}",
            Text(f"{p.loss_pct:g}%", style="red" if p.loss_pct else ""),
            mtu,
        )
    return table


def failing_pairs(report: RunReport, limit: int = 30) -> list[str]:
    table = report.table
    lines = [
        f"{p.src} → {p.dst}:{p.port} {p.outcome.value}"
        for p in itertools.islice(table.not_open(), limit + 1)
    ]
    if len(lines) > limit:
        total = len(table) - table.counts().get(Outcome.OPEN, 0)
        lines = [*lines[:limit], f"... and {total - limit} more (see -o json)"]
    return lines


def render_findings(
    findings: tuple[Finding, ...], console: Console, *, with_location: bool = False
) -> None:
    """with_location: each finding's location on a line of its own (lint: the field)."""
    if not findings:
        console.print(Text("No findings.", style="green"))
        return
    console.print(Text("Findings", style="bold"))
    for f in findings:
        line = Text(f"  {f.severity.value.upper():7} ", style=SEVERITY_STYLE[f.severity])
        line.append(f"{f.code}: ", style="bold")
        line.append(f.summary)
        if f.asymmetric:
            line.append(" [asymmetric]", style="magenta")
        console.print(line)
        if with_location and f.location:
            console.print(Text(f"           at: {f.location}"))
        console.print(Text(f"           hint: {f.hint}", style="dim"))


def render_cassandra(analysis: GossipAnalysis, console: Console) -> None:
    """Each node as the views saw it: the state most printed, and who saw it down."""
    sources = {s for _, s in analysis.view_sources}
    how = "nodetool status" if sources <= {"nodetool"} else "nodetool status or Management API"
    table = Table(title=f"Cassandra nodes ({how} of every view)", box=box.SIMPLE)
    cql = {r.node: r for r in analysis.cql}
    mgmt = {r.node: r for r in analysis.mgmt}
    columns = ["node", "address", "dc/rack", "state", "views", "down in"]
    columns += ["CQL tables"] if cql else []
    columns += ["Management API"] if mgmt else []
    for col in columns:
        table.add_column(col)
    for n in analysis.nodes:
        down = [o for o, s in n.states if s in DOWN_STATES]
        row: list[str | Text] = [
            n.name or "-",
            n.address,
            f"{n.datacenter}/{n.rack}",
            Text(n.state, style="red" if n.state in DOWN_STATES else "green"),
            str(len(n.views)),
            Text(", ".join(down) if down else "-", style="red" if down else ""),
        ]
        if cql:
            row.append(_cql_cell(cql.get(n.name)))
        if mgmt:
            row.append(_mgmt_cell(mgmt.get(n.name)))
        table.add_row(*row)
    console.print(table)
    if analysis.warnings:
        console.print(
            Text(
                f"{len(analysis.warnings)} warnings on lines of the outputs (see -o json)",
                style="yellow",
            )
        )


def _cql_cell(r: CqlRead | None) -> Text:
    if r is None:
        return Text("-")
    if r.failure is not None:
        return Text(r.failure.detail[:48], style="yellow")
    if r.view is None:
        return Text("-")
    return Text(f"{r.view.local.release_version}, {len(r.view.peers)} peers")


def _mgmt_cell(r: MgmtRead | None) -> Text:
    if r is None or (r.view is None and r.failure is None):
        return Text("-")
    if r.view is None:
        assert r.failure is not None
        return Text(r.failure.detail[:48], style="yellow")
    if not r.view.ready:
        return Text(f"not ready: {r.view.readiness[:36]}", style="red")
    return Text(f"ready, {len(r.view.endpoints)} endpoints")


def render(report: RunReport, console: Console) -> None:
    console.print(cluster_table(report))
    matrix = pod_matrix(report, console.width)
    if matrix is not None:
        console.print(matrix)
        legend = ", ".join(f"{i + 1}={ep.name}" for i, ep in enumerate(report.topology.endpoints))
        console.print(Text(f"columns: {legend}", style="dim"))
    else:
        console.print(
            Text(
                f"(pod matrix omitted: wider than {console.width} columns; "
                "set COLUMNS or use -o json)",
                style="dim",
            )
        )
        for pair in failing_pairs(report):
            console.print(Text(f"  {pair}", style="red"))
    paths = paths_table(report)
    if paths is not None:
        console.print(paths)
    if report.cassandra is not None:
        render_cassandra(report.cassandra, console)
    console.print()
    render_findings(report.findings, console)
    if report.problems:
        console.print(Text("\nNot checked", style="bold yellow"))
        for problem in report.problems:
            console.print(Text(f"  {problem}", style="yellow"))
    table = report.table
    counts = table.counts()
    measured = len(table) - counts.get(Outcome.NOT_MEASURED, 0)
    failed = len(report.abnormal)  # failed, and not normal here
    by_design = sum(n for o, n in counts.items() if o.failed) - failed
    nat_code = OUTCOME_CODE[Outcome.NAT]
    translated = counts.get(Outcome.NAT, 0) - sum(
        1 for i in report.abnormal if table.outcome[i] == nat_code
    )
    normal = "".join(
        f", {n} {what} by design"
        for n, what in ((by_design - translated, "refused"), (translated, "translated"))
        if n
    )
    verdict = report.verdict
    console.print(
        Text(
            f"\nverdict: {verdict.value.upper()}  ({len(report.table)} probes, "
            f"{measured} measured, {failed} failed{normal}, {report.duration_s:.1f}s)",
            style=VERDICT_STYLE[verdict],
        )
    )
