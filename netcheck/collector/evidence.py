"""Raw-packet evidence for what the mesh found, and the matrix refined by it.

Only agents that hold CAP_NET_RAW take part. Most of it comes as follow-ups of the mesh's own
probes (agent/followup.py: the SYN and trace start beside a probe that has not answered, so
they end when it times out); a second pass asks only for what the follow-ups left out. What is
asked, per source agent:
  - every failing (timeout, unreachable, refused) pair and port: one raw SYN, to tell DROP
    from REJECT and to learn who answered; a TCP traceroute too when nothing or ICMP answered;
  - every pair with a port that connects: latency and loss (N SYNs), whose answers also give
    the TTL the peer's own packets arrive with (a RST arriving with another TTL came from a
    device in the path);
  - one pair per (source rack, destination rack) with a port that connects: the path MTU.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from netcheck.model.outcome import Outcome
from netcheck.model.probe import FollowUp, ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.probe_table import ProbeTable
from netcheck.model.topology import Topology

EXPLAINED = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE, Outcome.REFUSED})
# Silence on a path that loses packets is believed only when so many SYNs go unanswered that
# the measured round-trip loss would do it less than once in 10^4 (6 SYNs at 20 % loss, 14
# at 50 %), within the SYN probe's bounds.
CONFIRM_CHANCE = 1e-4
CONFIRM_SYNS = (6, 16)


@dataclass(frozen=True, kw_only=True)
class EvidenceOptions:
    latency_count: int = 10
    max_hops: int = 16
    timeout_s: float = 1.0


def follow_ups(
    topology: Topology, plan: Sequence[ProbeSpec], options: EvidenceOptions
) -> dict[ProbeSpec, FollowUp]:
    """The follow-ups each mesh probe carries: the same evidence plan_evidence asks for.

    A trace group is the destination rack and port (the agent traces once per group); the
    path MTU of a pair of racks is measured by one source in the source rack (the first by
    name), to the first destination of the other rack that connects.
    """
    eps = {ep.name: ep for ep in topology.endpoints}
    first_in_rack: dict[tuple[str, ...], str] = {}
    for name in sorted({s.src for s in plan}):
        first_in_rack.setdefault(eps[name].scope("rack"), name)
    out: dict[ProbeSpec, FollowUp] = {}
    for s in plan:
        if s.kind.raw or s.kind in (ProbeKind.CQL, ProbeKind.MGMT):
            continue
        src_rack, dst_rack = eps[s.src].scope("rack"), "/".join(eps[s.dst].scope("rack"))
        out[s] = FollowUp(
            timeout_s=options.timeout_s,
            trace_hops=options.max_hops,
            trace_group=f"{dst_rack}:{s.port}",
            latency_count=options.latency_count,
            pmtu_group=dst_rack if first_in_rack[src_rack] == s.src else "",
        )
    return out


def plan_evidence(
    topology: Topology,
    results: Sequence[ProbeResult],
    raw_capable: frozenset[str],
    options: EvidenceOptions,
    done: tuple[ProbeResult, ...] = (),
) -> list[ProbeSpec]:
    """done: evidence already gathered (the follow-ups); only what it lacks is planned, and
    silence that a lossy path may explain is asked again (CONFIRM_SYNS)."""
    eps = {ep.name: ep for ep in topology.endpoints}
    outcome = {(r.src, r.dst, r.port): r.outcome for r in results}
    have_syn = {(e.src, e.dst, e.port) for e in done if e.kind is ProbeKind.SYN}
    lossy = _lossy_cluster_paths(topology, done)
    for e in done:
        if (
            e.kind is ProbeKind.SYN
            and e.outcome is Outcome.FILTERED
            and e.src in raw_capable
            and frozenset((eps[e.src].cluster, eps[e.dst].cluster)) in lossy
        ):
            have_syn.discard((e.src, e.dst, e.port))  # asked again
    have_latency = {(e.src, e.dst) for e in done if e.kind is ProbeKind.LATENCY}
    specs: list[ProbeSpec] = []
    connected: dict[tuple[str, str], int] = {}
    traced: set[tuple[str, tuple[str, ...], int, Outcome]] = {
        (e.src, eps[e.dst].scope("rack"), e.port, outcome[(e.src, e.dst, e.port)])
        for e in done
        if e.kind is ProbeKind.TRACE and (e.src, e.dst, e.port) in outcome
    }
    mtu_pairs: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[str, str, int] | None] = {
        (eps[e.src].scope("rack"), eps[e.dst].scope("rack")): None
        for e in done
        if e.kind is ProbeKind.PMTU
    }
    for r in sorted(results, key=lambda r: (r.src, r.dst, r.port)):
        if r.src not in raw_capable:
            continue
        if r.outcome in EXPLAINED:
            if (r.src, r.dst, r.port) not in have_syn:
                loss = lossy.get(frozenset((eps[r.src].cluster, eps[r.dst].cluster)), 0.0)
                specs.append(
                    ProbeSpec(
                        src=r.src,
                        dst=r.dst,
                        port=r.port,
                        kind=ProbeKind.SYN,
                        count=confirm_syns(loss) if loss else 0,
                    )
                )
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
    for (src, dst), port in connected.items():
        if (src, dst) not in have_latency:
            specs.append(
                ProbeSpec(
                    src=src, dst=dst, port=port, kind=ProbeKind.LATENCY, count=options.latency_count
                )
            )
        key = (eps[src].scope("rack"), eps[dst].scope("rack"))
        mtu_pairs.setdefault(key, (src, dst, port))
    for pair in mtu_pairs.values():
        if pair is not None:
            src, dst, port = pair
            specs.append(ProbeSpec(src=src, dst=dst, port=port, kind=ProbeKind.PMTU))
    return specs


def confirm_syns(loss: float) -> int:
    """SYNs that all go unanswered at this round-trip loss less often than CONFIRM_CHANCE."""
    lo, hi = CONFIRM_SYNS
    if loss >= 1.0:
        return hi
    return max(lo, min(hi, math.ceil(math.log(CONFIRM_CHANCE) / math.log(loss))))


def _lossy_cluster_paths(
    topology: Topology, evidence: tuple[ProbeResult, ...]
) -> dict[frozenset[str], float]:
    """Round-trip loss of the latency SYNs per cluster pair (both directions together), for
    the pairs that lost any."""
    cluster = {ep.name: ep.cluster for ep in topology.endpoints}
    sent: dict[frozenset[str], int] = {}
    lost: dict[frozenset[str], int] = {}
    for e in evidence:
        lat = e.evidence.latency
        if e.kind is ProbeKind.LATENCY and lat is not None and lat.sent:
            key = frozenset((cluster[e.src], cluster[e.dst]))
            sent[key] = sent.get(key, 0) + lat.sent
            lost[key] = lost.get(key, 0) + lat.sent - lat.received
    return {k: lost[k] / sent[k] for k in sent if lost[k]}


def combined(
    first: tuple[ProbeResult, ...], second: tuple[ProbeResult, ...]
) -> tuple[ProbeResult, ...]:
    """The follow-ups and the second pass: a SYN asked again (to confirm silence) replaces
    the first one."""
    again = {(e.src, e.dst, e.port) for e in second if e.kind is ProbeKind.SYN}
    kept = tuple(
        e for e in first if e.kind is not ProbeKind.SYN or (e.src, e.dst, e.port) not in again
    )
    return kept + second


_REFINES = {
    # plain outcome -> what a raw SYN may turn it into
    Outcome.TIMEOUT: {Outcome.FILTERED},
    Outcome.UNREACHABLE: {Outcome.PROHIBITED, Outcome.UNREACHABLE},
    Outcome.REFUSED: {Outcome.REFUSED},
}


def refine(
    results: Sequence[ProbeResult], evidence: tuple[ProbeResult, ...]
) -> Sequence[ProbeResult]:
    """The matrix with each failure replaced by what the raw SYN proved about it.

    When the SYN disagrees with the plain probe (a flapping path), the plain outcome stays
    and the detail says what the SYN saw.
    """
    syn = {(e.src, e.dst, e.port): e for e in evidence if e.kind is ProbeKind.SYN}
    if not syn:
        return results
    table = ProbeTable.of(results)
    changed = {}
    for i in table.failed_rows():  # only failures are refined
        r = table.row(i)
        e = syn.get((r.src, r.dst, r.port))
        if e is None or e.outcome is Outcome.NOT_MEASURED or r.outcome not in _REFINES:
            continue
        if e.outcome in _REFINES[r.outcome]:
            changed[i] = replace(r, outcome=e.outcome, detail=e.detail, evidence=e.evidence)
        else:
            detail = f"{r.detail}; a raw SYN then saw {e.outcome.value}: {e.detail}"
            changed[i] = replace(r, detail=detail, evidence=e.evidence)
    return table.with_rows(changed)
