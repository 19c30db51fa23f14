"""Path MTU: DF SYNs padded to decreasing sizes, all of one round in flight at once.

A packet that crosses gets the port's answer (SYN-ACK or RST); one that is too big either
gets ICMP "fragmentation needed" from the router with the smaller link (path MTU discovery
works) or vanishes (a black hole: streaming stalls while handshakes pass). Later rounds narrow
the gap between the largest size that crossed and the smallest that did not.
"""

from __future__ import annotations

import asyncio
import math

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


def _crossed(reply: Reply, address: str) -> bool:
    return reply.source == address and reply.kind in (ReplyKind.SYN_ACK, ReplyKind.RST)


async def probe(raw: RawNet, target: Target, timeout: float) -> TargetResult:
    local = raw.local_mtu(target.address)
    if local < MIN_MTU:
        return result(target, Outcome.UNREACHABLE, detail="no route (no interface towards it)")
    sizes = sorted({s for s in (local, *LADDER, *LADDER_LOW) if s <= local}, reverse=True)
    crossed: set[int] = set()
    tried: set[int] = set()
    frag_from, reported = "", 0
    ok: int | None = None
    lost: int | None = None
    tries = 1
    for _ in range(ROUNDS):
        packets = [s for s in sizes for _ in range(tries)]
        replies = await asyncio.gather(
            *(raw.syn(target.address, target.port, timeout=timeout, size=s) for s in packets)
        )
        for size, reply in zip(packets, replies, strict=True):
            tried.add(size)
            if _crossed(reply, target.address):
                crossed.add(size)
            elif reply.kind is ReplyKind.FRAG_NEEDED:
                frag_from, reported = reply.source, reply.mtu
        ok = max(crossed, default=None)
        lost = min((s for s in tried - crossed if ok is not None and s > ok), default=None)
        if ok is None or lost is None or lost - ok <= 1:
            break
        # narrow the gap; the smallest lost size goes again, and from now on every size gets
        # two packets, so one lost answer does not move the path MTU
        tries = 2
        step = max(1, math.ceil((lost - ok) / PER_ROUND))
        sizes = sorted(
            {*range(ok + step, lost, step), lost, *([reported] if ok < reported < lost else [])},
            reverse=True,
        )
    mtu = PathMtu(
        local_mtu=local,
        path_mtu=ok,
        smallest_lost=lost,
        frag_needed_from=frag_from,
        reported_mtu=reported,
    )
    if ok is None:
        return result(
            target,
            Outcome.FILTERED,
            detail=f"not even {MIN_MTU}-byte packets crossed: path MTU not measurable here",
            evidence=Evidence(path_mtu=mtu),
        )
    if mtu.black_hole:
        detail = (
            f"path MTU {ok}: packets of {mtu.smallest_lost} bytes and more vanish without "
            "ICMP fragmentation-needed (black hole)"
        )
        return result(target, Outcome.STALLED, detail=detail, evidence=Evidence(path_mtu=mtu))
    detail = f"path MTU {ok} (interface {local})"
    if frag_from:
        detail += f"; fragmentation-needed from {frag_from} reports {reported}"
    return result(target, Outcome.OPEN, detail=detail, evidence=Evidence(path_mtu=mtu))
