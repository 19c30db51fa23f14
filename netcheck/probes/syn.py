"""Raw SYN probe: open, refused, filtered, prohibited or unreachable, and who said so.

Silence is only a verdict when it repeats: when the first SYN is not answered within 100 ms, a
second one (another source port) follows, and "filtered" needs both to go unanswered. A single
lost answer under load is loss. On a path that loses packets, the collector asks for more
(target.count SYNs, 100 ms apart) before it believes the silence.
"""

from __future__ import annotations

import asyncio

from netcheck.model.evidence import Reply, ReplyKind
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import outcome_of_reply, result
from netcheck.probes.rawnet import RawNet

SECOND_AFTER_S = 0.1  # far enough apart that one burst of loss does not take both
DEFAULT_COUNT, MAX_COUNT = 2, 16


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    count = min(target.count or DEFAULT_COUNT, MAX_COUNT)
    first = asyncio.ensure_future(raw.syn(target.address, target.port, timeout=timeout))
    # an answer within the gap settles it; otherwise more SYNs join the first, one per gap
    done, _ = await asyncio.wait({first}, timeout=SECOND_AFTER_S)
    replies: list[Reply] = [first.result()] if done else []
    if not replies or not replies[0].answered:

        async def later(i: int) -> Reply:
            await asyncio.sleep((i - 1) * SECOND_AFTER_S)
            return await raw.syn(target.address, target.port, timeout=timeout)

        replies = list(await asyncio.gather(first, *(later(i) for i in range(1, count))))
    reply = next((r for r in replies if r.answered), replies[0])
    outcome, detail = outcome_of_reply(reply)
    if reply.kind is ReplyKind.NONE:
        detail = f"{detail} ({len(replies)} SYNs, none answered)"
    return result(
        target, outcome, latency_ms=reply.rtt_ms, detail=detail, evidence=Evidence(reply=reply)
    )
