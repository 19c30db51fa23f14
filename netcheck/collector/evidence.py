"""The second pass: raw-packet evidence for what the mesh found, and the matrix refined by it.

Only agents that hold CAP_NET_RAW take part. What is asked, per source agent:
  - every failing (timeout, unreachable, refused) pair and port: one raw SYN, to tell DROP
    from REJECT and to learn who answered; a TCP traceroute too when nothing or ICMP answered;
  - every pair with a port that connects: latency and loss (N SYNs), whose answers also give
    the TTL the peer's own packets arrive with (a RST arriving with another TTL came from a
    device in the path);
  - one pair per (source rack, destination rack) with a port that connects: the path MTU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.topology import Topology

EXPLAINED = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE, Outcome.REFUSED})


@dataclass(frozen=True, kw_only=True)
class EvidenceOptions:
    latency_count: int = 10
    max_hops: int = 16
    timeout_s: float = 1.0


def plan_evidence(
    topology: Topology,
    results: tuple[ProbeResult, ...],
    raw_capable: frozenset[str],
    options: EvidenceOptions,
) -> list[ProbeSpec]:
    eps = {ep.name: ep for ep in topology.endpoints}
    specs: list[ProbeSpec] = []
    connected: dict[tuple[str, str], int] = {}
    traced: set[tuple[str, tuple[str, ...], int, Outcome]] = set()
    for r in sorted(results, key=lambda r: (r.src, r.dst, r.port)):
        if r.src not in raw_capable:
            continue
        if r.outcome in EXPLAINED:
            specs.append(ProbeSpec(src=r.src, dst=r.dst, port=r.port, kind=ProbeKind.SYN))
            # One trace per source, destination rack, port and outcome: routers answer few
            # "time exceeded" per second to one sender, and one path serves the whole rack.
            group = (r.src, eps[r.dst].scope("rack"), r.port, r.outcome)
            if group not in traced:
                traced.add(group)
                specs.append(
                    ProbeSpec(
                        src=r.src,
                        dst=r.dst,
                        port=r.port,
                        kind=ProbeKind.TRACE,
                        count=options.max_hops,
                    )
                )
        elif r.outcome.connected:
            connected.setdefault((r.src, r.dst), r.port)
    mtu_pairs: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[str, str, int]] = {}
    for (src, dst), port in connected.items():
        specs.append(
            ProbeSpec(
                src=src, dst=dst, port=port, kind=ProbeKind.LATENCY, count=options.latency_count
            )
        )
        key = (eps[src].scope("rack"), eps[dst].scope("rack"))
        mtu_pairs.setdefault(key, (src, dst, port))
    for src, dst, port in mtu_pairs.values():
        specs.append(ProbeSpec(src=src, dst=dst, port=port, kind=ProbeKind.PMTU))
    return specs


_REFINES = {
    # plain outcome -> what a raw SYN may turn it into
    Outcome.TIMEOUT: {Outcome.FILTERED},
    Outcome.UNREACHABLE: {Outcome.PROHIBITED, Outcome.UNREACHABLE},
    Outcome.REFUSED: {Outcome.REFUSED},
}


def refine(
    results: tuple[ProbeResult, ...], evidence: tuple[ProbeResult, ...]
) -> tuple[ProbeResult, ...]:
    """The matrix with each failure replaced by what the raw SYN proved about it.

    When the SYN disagrees with the plain probe (a flapping path), the plain outcome stays
    and the detail says what the SYN saw.
    """
    syn = {(e.src, e.dst, e.port): e for e in evidence if e.kind is ProbeKind.SYN}
    out = []
    for r in results:
        e = syn.get((r.src, r.dst, r.port))
        if e is None or e.outcome is Outcome.NOT_MEASURED or r.outcome not in _REFINES:
            out.append(r)
        elif e.outcome in _REFINES[r.outcome]:
            out.append(replace(r, outcome=e.outcome, detail=e.detail, evidence=e.evidence))
        else:
            detail = f"{r.detail}; a raw SYN then saw {e.outcome.value}: {e.detail}"
            out.append(replace(r, detail=detail, evidence=e.evidence))
    return tuple(out)
