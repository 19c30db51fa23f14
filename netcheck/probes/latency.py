"""Latency and loss: N SYNs to one port, spaced out; p50/p99 of the answers and loss %."""

from __future__ import annotations

import asyncio

from netcheck.model.evidence import Latency, Reply, percentile
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import outcome_of_reply, result
from netcheck.probes.rawnet import RawNet

DEFAULT_COUNT = 10
MAX_COUNT = 100
SPACING_S = 0.01


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    count = min(target.count or DEFAULT_COUNT, MAX_COUNT)

    async def one(i: int) -> Reply:
        await asyncio.sleep(i * SPACING_S)
        return await raw.syn(target.address, target.port, timeout=timeout)

    replies = await asyncio.gather(*(one(i) for i in range(count)))
    # an answer from the port itself (SYN-ACK or RST) is a round trip; anything else is lost
    answers = [r for r in replies if r.source == target.address and r.rtt_ms is not None]
    rtts = [r.rtt_ms for r in answers if r.rtt_ms is not None]
    latency = Latency(
        sent=count, received=len(rtts), p50_ms=percentile(rtts, 50), p99_ms=percentile(rtts, 99)
    )
    reference = answers[-1] if answers else replies[-1]
    outcome, detail = outcome_of_reply(reference)
    if answers:
        outcome = Outcome.OPEN
        detail = (
            f"{latency.received}/{count} answered, p50 {latency.p50_ms} ms, "
            f"p99 {latency.p99_ms} ms, loss {latency.loss_pct}%"
        )
    return result(
        target,
        outcome,
        latency_ms=latency.p50_ms,
        detail=detail,
        evidence=Evidence(reply=reference, latency=latency),
    )
