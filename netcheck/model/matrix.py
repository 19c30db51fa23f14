"""The connectivity matrix aggregated per pod, rack, datacenter or cluster pair.

One pass over the probes counts them per rack pair and port (each endpoint's group computed
once, not per probe); the coarser levels are sums of those counts, so every output (terminal,
JUnit, Prometheus, HTML, the JSON's probe_counts) shares one aggregation of a run
(RunReport.cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.probe_table import OUTCOMES, ProbeTable
from netcheck.model.topology import LEVELS, Topology


@dataclass(frozen=True, kw_only=True)
class Cell:
    src: tuple[str, ...]
    dst: tuple[str, ...]
    port: int
    outcomes: tuple[tuple[Outcome, int], ...]


Key = tuple[tuple[str, ...], tuple[str, ...], int, Outcome]


def _cells(counts: dict[Key, int]) -> list[Cell]:
    by_cell: dict[tuple[tuple[str, ...], tuple[str, ...], int], list[tuple[Outcome, int]]] = {}
    for (s, d, p, o), n in counts.items():
        by_cell.setdefault((s, d, p), []).append((o, n))
    return [
        Cell(src=s, dst=d, port=p, outcomes=tuple(sorted(c)))
        for (s, d, p), c in sorted(by_cell.items())
    ]


def aggregate(topology: Topology, results: Sequence[ProbeResult], level: str) -> list[Cell]:
    """Outcome counts per (src group, dst group, port) at a level of LEVELS, in one pass
    over the table's columns (ProbeTable.tally: the counting is done in C)."""
    table = ProbeTable.of(results)
    scope = {ep.name: ep.scope(level) for ep in topology.endpoints}
    keys = sorted(set(scope.values()))
    number = {k: i for i, k in enumerate(keys)}
    group = [number[scope[name]] for name in table.names]
    counts: dict[Key, int] = {
        (keys[s], keys[d], port, OUTCOMES[o]): n
        for (s, d, port, o), n in table.tally(group).items()
    }
    return _cells(counts)


def coarser(cells: list[Cell], level: str) -> list[Cell]:
    """Cells of a finer level summed into a coarser one (rack cells into cluster cells)."""
    width = LEVELS.index(level)
    counts: dict[Key, int] = {}
    for c in cells:
        if len(c.src) < width or len(c.dst) < width:
            raise ValueError(f"cells of {len(c.src)} levels are not finer than {level}")
        for o, n in c.outcomes:
            key = (c.src[:width], c.dst[:width], c.port, o)
            counts[key] = counts.get(key, 0) + n
    return _cells(counts)
