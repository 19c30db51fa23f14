"""The connectivity matrix aggregated per pod, rack, datacenter or cluster pair."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.topology import Topology


@dataclass(frozen=True, kw_only=True)
class Cell:
    src: tuple[str, ...]
    dst: tuple[str, ...]
    port: int
    outcomes: tuple[tuple[Outcome, int], ...]


def aggregate(topology: Topology, results: tuple[ProbeResult, ...], level: str) -> list[Cell]:
    """Outcome counts per (src group, dst group, port) at a level of LEVELS."""
    eps = {ep.name: ep for ep in topology.endpoints}
    counts: dict[tuple[tuple[str, ...], tuple[str, ...], int], Counter[Outcome]] = {}
    for r in results:
        key = (eps[r.src].scope(level), eps[r.dst].scope(level), r.port)
        counts.setdefault(key, Counter())[r.outcome] += 1
    return [
        Cell(src=s, dst=d, port=p, outcomes=tuple(sorted(c.items())))
        for (s, d, p), c in sorted(counts.items())
    ]
