"""Raw SYN probe: open, refused, filtered, prohibited or unreachable, and who said so."""

from __future__ import annotations

from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import outcome_of_reply, result
from netcheck.probes.rawnet import RawNet


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    reply = await raw.syn(target.address, target.port, timeout=timeout)
    outcome, detail = outcome_of_reply(reply)
    return result(
        target, outcome, latency_ms=reply.rtt_ms, detail=detail, evidence=Evidence(reply=reply)
    )
