"""Path MTU: DF SYNs padded to decreasing sizes, the search narrowed, the verdict confirmed.

A packet that crosses gets the port's answer (SYN-ACK or RST); one that is too big either
gets ICMP "fragmentation needed" from the router with the smaller link (path MTU discovery
works) or vanishes (a black hole: streaming stalls while handshakes pass). Later rounds narrow
the gap between the largest size that crossed and the smallest that did not.

A lost packet is not an MTU limit: any size that crosses once proves the path carries it, and
a black hole is only reported when a confirmation round, with a timeout scaled to the measured
round trip, loses every packet at and above the limit while the size below it gets through.
Anything less consistent is loss, and the path MTU is reported as not determined.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

from netcheck.model.evidence import PathMtu, Reply, ReplyKind
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import result
from netcheck.probes.rawnet import RawNet

MIN_MTU = 576
LADDER = (9001, 1500, 1492, 1480, 1460, 1450, 1420, 1400, 1380, 1350, 1300, 1280, 1250, 1200)
LADDER_LOW = (1150, 1100, 1000, 900, 800, 700, MIN_MTU)
ROUNDS = 3
PER_ROUND = 24
CONFIRM = 4  # packets per size in a confirmation round
CONFIRM_ROUNDS = 3
RTT_FACTOR = 4  # a confirmation waits at least this many of the slowest round trips seen


@dataclass
class _Seen:
    """What the DF packets to one target have shown so far."""

    address: str
    crossed: dict[int, int] = field(default_factory=dict)  # size -> packets that crossed
    tried: set[int] = field(default_factory=set)
    frag_from: str = ""
    reported: int = 0
    slowest_ms: float = 0.0

    def record(self, size: int, reply: Reply) -> None:
        self.tried.add(size)
        if reply.source == self.address and reply.kind in (ReplyKind.SYN_ACK, ReplyKind.RST):
            self.crossed[size] = self.crossed.get(size, 0) + 1
            self.slowest_ms = max(self.slowest_ms, reply.rtt_ms or 0.0)
        elif reply.kind is ReplyKind.FRAG_NEEDED:
            self.frag_from, self.reported = reply.source, reply.mtu

    @property
    def ok(self) -> int | None:
        return max(self.crossed, default=None)

    @property
    def lost(self) -> int | None:
        ok = self.ok
        return min(
            (s for s in self.tried - set(self.crossed) if ok is not None and s > ok), default=None
        )


async def _send(raw: RawNet, target: Target, seen: _Seen, sizes: list[int], timeout: float) -> None:
    # sizes interleaved (not largest first): a burst lost at its start hits every size alike
    replies = await asyncio.gather(
        *(raw.syn(target.address, target.port, timeout=timeout, size=s) for s in sizes)
    )
    for size, reply in zip(sizes, replies, strict=True):
        seen.record(size, reply)


def _interleaved(sizes: list[int]) -> list[int]:
    ordered = sorted(sizes)
    out: list[int] = []
    while ordered:
        out.append(ordered.pop(0))
        if ordered:
            out.append(ordered.pop())
    return out


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    local = raw.local_mtu(target.address)
    if local < MIN_MTU:
        return result(target, Outcome.UNREACHABLE, detail="no route (no interface towards it)")
    seen = _Seen(address=target.address)
    sizes = sorted({s for s in (local, *LADDER, *LADDER_LOW) if s <= local})
    tries = 1
    for _ in range(ROUNDS):
        await _send(
            raw, target, seen, _interleaved([s for s in sizes for _ in range(tries)]), timeout
        )
        ok, lost = seen.ok, seen.lost
        if ok is None or lost is None or lost - ok <= 1:
            break
        # narrow the gap; every size gets two packets from now on
        tries = 2
        step = max(1, math.ceil((lost - ok) / PER_ROUND))
        reported = seen.reported
        sizes = sorted(
            {*range(ok + step, lost, step), lost, *([reported] if ok < reported < lost else [])}
        )
    confirmed = await _confirm(raw, target, seen, local, timeout) if seen.lost else True
    ok, lost = seen.ok, seen.lost
    mtu = PathMtu(
        local_mtu=local,
        path_mtu=ok if confirmed else None,
        smallest_lost=lost if confirmed else None,
        frag_needed_from=seen.frag_from,
        reported_mtu=seen.reported,
    )
    if ok is None:
        return result(
            target,
            Outcome.FILTERED,
            detail=f"not even {MIN_MTU}-byte packets crossed: path MTU not measurable here",
            evidence=Evidence(path_mtu=mtu),
        )
    if not confirmed:
        detail = (
            f"path MTU not determined: DF packets up to {ok} bytes crossed, but the losses "
            "did not repeat by size (random loss, not an MTU limit)"
        )
        return result(target, Outcome.OPEN, detail=detail, evidence=Evidence(path_mtu=mtu))
    if mtu.black_hole:
        detail = (
            f"path MTU {ok}: packets of {lost} bytes and more vanish without ICMP "
            f"fragmentation-needed (black hole; confirmed with {CONFIRM} packets per size)"
        )
        return result(target, Outcome.STALLED, detail=detail, evidence=Evidence(path_mtu=mtu))
    detail = f"path MTU {ok} (interface {local})"
    if seen.frag_from:
        detail += f"; fragmentation-needed from {seen.frag_from} reports {seen.reported}"
    return result(target, Outcome.OPEN, detail=detail, evidence=Evidence(path_mtu=mtu))


async def _confirm(raw: RawNet, target: Target, seen: _Seen, local: int, timeout: float) -> bool:
    """Repeat the boundary. True: every packet at and above it is lost again while the size
    below gets through (or the loss is gone). False: not consistent by size (loss)."""
    for _ in range(CONFIRM_ROUNDS):
        ok, lost = seen.ok, seen.lost
        if ok is None or lost is None:
            return True
        ok_before = seen.crossed.get(ok, 0)
        wait = max(timeout, RTT_FACTOR * seen.slowest_ms / 1000)
        sizes = [s for s in sorted({ok, lost, local}) for _ in range(CONFIRM)]
        await _send(raw, target, seen, _interleaved(sizes), wait)
        if seen.ok != ok:
            continue  # a size above the old limit crossed: look again from the new one
        # nothing above ok crossed; ok itself must have, nearly every time (else: again)
        if seen.crossed.get(ok, 0) - ok_before >= CONFIRM - 1:
            return True
    return seen.lost is None
