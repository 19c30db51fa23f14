"""Follow-ups: the raw evidence for a plain probe, gathered in the same batch.

Evidence for a failing probe starts while that probe still waits. When a plain connect has not
finished by the moment that leaves the raw probes just enough time (the probe timeout minus
the raw timeout), the raw SYN, and for the first pending target of its trace group a TCP
traceroute, go out beside it: both end about when the plain probe times out, instead of a raw
pass starting after the whole mesh. A probe that fails fast gets them after it fails. A probe
that connects cancels them; the first target to each address that connects then measures
latency, and the first of its path-MTU group measures the path MTU.

Nothing here adds a target: follow-ups go to the address and port the batch already named
(and the allow list passed), and every packet takes a token of the agent's rate limit.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from netcheck.model.outcome import Outcome
from netcheck.model.probe import FollowUp, ProbeKind, Target, TargetResult
from netcheck.probes import syn
from netcheck.probes.rawnet import RawNet
from netcheck.probes.registry import RawProbeFn

FAILED = frozenset({Outcome.TIMEOUT, Outcome.UNREACHABLE, Outcome.REFUSED})
# a healthy connect answers well within this: no raw packet goes out beside it
NOT_BEFORE_S = 0.25
MARGIN_S = 0.05


def start_after(timeout: float, follow: FollowUp) -> float:
    """When the raw SYN (and trace) join a plain probe that has not finished."""
    return max(NOT_BEFORE_S, timeout - follow.timeout_s - syn.SECOND_AFTER_S - MARGIN_S)


@dataclass
class BatchClaims:
    """One trace per trace group, one latency per address, one path MTU per group: per batch."""

    traces: set[str] = field(default_factory=set)
    latency: set[str] = field(default_factory=set)
    pmtu: set[str] = field(default_factory=set)


async def _cancel(task: asyncio.Future[TargetResult] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def probe(
    plain: Awaitable[TargetResult],
    target: Target,
    timeout: float,
    raw: RawNet,
    raw_probes: dict[ProbeKind, RawProbeFn],
    claims: BatchClaims,
) -> TargetResult:
    follow = target.follow
    assert follow is not None
    rt = follow.timeout_s

    def start(kind: ProbeKind, count: int = 0) -> asyncio.Future[TargetResult]:
        t = Target(address=target.address, port=target.port, kind=kind, count=count)
        return asyncio.ensure_future(raw_probes[kind](raw, t, rt))

    def start_trace() -> asyncio.Future[TargetResult] | None:
        if not follow.trace_hops or follow.trace_group in claims.traces:
            return None
        claims.traces.add(follow.trace_group)
        return start(ProbeKind.TRACE, follow.trace_hops)

    main = asyncio.ensure_future(plain)
    syn_task = trace_task = None
    try:
        done, _ = await asyncio.wait({main}, timeout=start_after(timeout, follow))
        if not done:
            syn_task, trace_task = start(ProbeKind.SYN), start_trace()
        first = await main
        if first.outcome in FAILED:
            syn_task = syn_task or start(ProbeKind.SYN)
            trace_task = trace_task or start_trace()
            pending = [t for t in (syn_task, trace_task) if t is not None]
            return replace(first, followed=tuple(await asyncio.gather(*pending)))
        if trace_task is not None:  # not needed: another target of the group may trace
            claims.traces.discard(follow.trace_group)
        await _cancel(syn_task)
        await _cancel(trace_task)
        syn_task = trace_task = None
        if not first.outcome.connected:
            return first
        return replace(first, followed=await _working_path(first, follow, start, claims))
    finally:
        for task in (main, syn_task, trace_task):
            await _cancel(task)


async def _working_path(
    first: TargetResult,
    follow: FollowUp,
    start: Callable[[ProbeKind, int], asyncio.Future[TargetResult]],
    claims: BatchClaims,
) -> tuple[TargetResult, ...]:
    tasks = []
    if follow.latency_count and first.address not in claims.latency:
        claims.latency.add(first.address)
        tasks.append(start(ProbeKind.LATENCY, follow.latency_count))
    if follow.pmtu_group and follow.pmtu_group not in claims.pmtu:
        claims.pmtu.add(follow.pmtu_group)
        tasks.append(start(ProbeKind.PMTU, 0))
    return tuple(await asyncio.gather(*tasks))
