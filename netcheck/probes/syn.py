"""Raw SYN probe: open, refused, filtered, prohibited or unreachable, and who said so.

Silence is only a verdict when it repeats: a second SYN (another source port) follows the first
shortly, and "filtered" needs both to go unanswered. A single lost answer under load is loss.
"""

from __future__ import annotations

import asyncio

from netcheck.model.evidence import Reply, ReplyKind
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import outcome_of_reply, result
from netcheck.probes.rawnet import RawNet

SECOND_AFTER_S = 0.1  # far enough apart that one burst of loss does not take both


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    async def second() -> Reply:
        await asyncio.sleep(SECOND_AFTER_S)
        return await raw.syn(target.address, target.port, timeout=timeout)

    replies = await asyncio.gather(raw.syn(target.address, target.port, timeout=timeout), second())
    reply = next((r for r in replies if r.answered), replies[0])
    outcome, detail = outcome_of_reply(reply)
    if reply.kind is ReplyKind.NONE:
        detail = f"{detail} ({len(replies)} SYNs, none answered)"
    return result(
        target, outcome, latency_ms=reply.rtt_ms, detail=detail, evidence=Evidence(reply=reply)
    )
