"""Path properties between clusters, summed up from raw evidence (latency, loss, path MTU)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from netcheck.model.evidence import PathMtu, percentile
from netcheck.model.probe import ProbeKind, ProbeResult
from netcheck.model.topology import Topology


@dataclass(frozen=True, kw_only=True)
class PathSummary:
    """One ordered cluster pair. Latency: median of the pairs' p50, highest of their p99."""

    src_cluster: str
    dst_cluster: str
    pairs: int  # endpoint pairs with a latency measurement
    sent: int
    received: int
    p50_ms: float | None
    p99_ms: float | None
    path_mtu: int | None  # the smallest path MTU measured (None: not measured)
    local_mtu: int | None
    black_hole: bool
    frag_needed_from: str

    @property
    def loss_pct(self) -> float:
        return 0.0 if self.sent == 0 else round(100.0 * (self.sent - self.received) / self.sent, 1)


def cluster_paths(topology: Topology, evidence: tuple[ProbeResult, ...]) -> tuple[PathSummary, ...]:
    cluster = {ep.name: ep.cluster for ep in topology.endpoints}
    p50s: dict[tuple[str, str], list[float]] = defaultdict(list)
    p99s: dict[tuple[str, str], list[float]] = defaultdict(list)
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    mtus: dict[tuple[str, str], list[PathMtu]] = defaultdict(list)
    for r in evidence:
        key = (cluster[r.src], cluster[r.dst])
        lat, mtu = r.evidence.latency, r.evidence.path_mtu
        if r.kind is ProbeKind.LATENCY and lat is not None:
            c = counts[key]
            c[0], c[1], c[2] = c[0] + 1, c[1] + lat.sent, c[2] + lat.received
            if lat.p50_ms is not None:
                p50s[key].append(lat.p50_ms)
            if lat.p99_ms is not None:
                p99s[key].append(lat.p99_ms)
        elif r.kind is ProbeKind.PMTU and mtu is not None and mtu.path_mtu is not None:
            mtus[key].append(mtu)
    out = []
    for key in sorted(set(counts) | set(mtus)):
        measured = mtus.get(key, [])
        smallest = min(measured, key=lambda m: m.path_mtu or 0) if measured else None
        pairs, sent, received = counts.get(key, (0, 0, 0))
        out.append(
            PathSummary(
                src_cluster=key[0],
                dst_cluster=key[1],
                pairs=pairs,
                sent=sent,
                received=received,
                p50_ms=percentile(p50s.get(key, []), 50),
                p99_ms=max(p99s[key]) if p99s.get(key) else None,
                path_mtu=smallest.path_mtu if smallest else None,
                local_mtu=smallest.local_mtu if smallest else None,
                black_hole=any(m.black_hole for m in measured),
                frag_needed_from=next(
                    (m.frag_needed_from for m in measured if m.frag_needed_from), ""
                ),
            )
        )
    return tuple(out)
