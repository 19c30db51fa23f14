"""TCP traceroute to one port: SYNs with TTL 1..N, all in flight at once.

Routers answer "time exceeded" from where the TTL ran out; the path ends with the port's
own answer (SYN-ACK, RST, ICMP prohibited/unreachable) or goes silent. The last router that
answered and the first TTL that did not say where packets stop.
"""

from __future__ import annotations

import asyncio

from netcheck.model.evidence import Hop, ReplyKind, Trace
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import outcome_of_reply, result
from netcheck.probes.rawnet import RawNet

DEFAULT_MAX_HOPS = 16
MAX_HOPS = 30


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    max_hops = min(target.count or DEFAULT_MAX_HOPS, MAX_HOPS)
    replies = await asyncio.gather(
        *(
            raw.syn(target.address, target.port, timeout=timeout, ttl=t)
            for t in range(1, max_hops + 1)
        )
    )
    hops = tuple(Hop(ttl=t, reply=r) for t, r in enumerate(replies, start=1))
    trace = Trace(hops=hops)
    if trace.end is not None:
        trace = Trace(hops=tuple(h for h in hops if h.ttl <= trace.end.ttl))
    end = trace.end
    if end is not None:
        outcome, detail = outcome_of_reply(end.reply)
        detail = f"{detail} at hop {end.ttl}"
        latency = end.reply.rtt_ms
    elif hops and hops[0].reply.kind is ReplyKind.NO_ROUTE:
        outcome, detail = outcome_of_reply(hops[0].reply)
        latency = None
    else:
        outcome, latency = Outcome.FILTERED, None
        last = trace.last_answered
        detail = (
            f"silent after hop {last.ttl} ({last.reply.source})"
            if last
            else "no hop answered, not even the first router"
        )
    return result(
        target, outcome, latency_ms=latency, detail=detail, evidence=Evidence(trace=trace)
    )
