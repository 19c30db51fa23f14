"""Many plain TCP connects at once: the agent's engine for the probes that only connect.

A plain TCP probe with nothing to push through (no netcheck agent serves the port) is a
connect and a close. Run as a task of its own per probe, asyncio's bookkeeping (the task,
its timeout, sock_connect's future and callbacks) costs several times the connect itself
(BENCHMARKS.md p). Here a batch's connects share one coroutine: each is a non-blocking
socket whose writability the event loop reports, the deadlines (one timeout for the whole
batch, so they expire in the order the connects started) sit in one queue, and the loop
wakes once for every completion that is ready. Written by hand because no library does this
on asyncio's own loop; uvloop would replace the loop and not the per-probe tasks.

The concurrency bound is the caller's semaphore (shared with the batch's other probes) and
the rate bound its token bucket: neither is loosened here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Touched:
    """How one connect ended: our local address and the connect time, or the error."""

    local_address: str = ""
    connect_ms: float = 0.0
    error: OSError | None = None


class Pace(Protocol):
    """The agent's rate limit (agent/ratelimit.py: TokenBucket)."""

    def take(self, wanted: int) -> int:
        """Up to `wanted` tokens granted now, without waiting."""
        ...

    def delay(self) -> float:
        """Seconds until the next token."""
        ...


Done = Callable[[int, Touched], None]


async def connect_all(
    addresses: Sequence[tuple[str, int]],
    *,
    timeout: float,
    slots: asyncio.Semaphore,
    pace: Pace,
    done: Done,
) -> None:
    """Connect to every (IP address, port) once and close; done(index, how it ended) is called
    exactly once per address, as each ends (a timeout as TimeoutError)."""
    loop = asyncio.get_running_loop()
    live: dict[int, tuple[socket.socket, float]] = {}  # index: (socket, started)
    deadlines: deque[tuple[float, int]] = deque()
    wake: list[asyncio.Future[None]] = []

    def nudge() -> None:
        if wake and not wake[0].done():
            wake[0].set_result(None)

    def finish(i: int, touched: Touched) -> None:
        sock, _ = live.pop(i)
        loop.remove_writer(sock.fileno())
        sock.close()
        slots.release()
        done(i, touched)

    def writable(i: int) -> None:
        sock, started = live[i]
        ms = (time.perf_counter() - started) * 1000
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            finish(i, Touched(connect_ms=ms, error=OSError(err, os.strerror(err))))
        else:
            try:
                local = str(sock.getsockname()[0])
            except OSError as exc:
                finish(i, Touched(connect_ms=ms, error=exc))
            else:
                finish(i, Touched(local_address=local, connect_ms=ms))
        nudge()

    def start(i: int) -> None:
        address, port = addresses[i]
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
        except OSError as exc:
            slots.release()
            done(i, Touched(error=exc))
            return
        sock.setblocking(False)
        started = time.perf_counter()
        err = sock.connect_ex((address, port))
        if err in (errno.EINPROGRESS, 0):
            live[i] = (sock, started)
            deadlines.append((started + timeout, i))
            loop.add_writer(sock.fileno(), writable, i)  # a connect done at once is writable too
            return
        sock.close()
        slots.release()
        done(i, Touched(error=OSError(err, os.strerror(err))))

    following = 0
    try:
        while following < len(addresses) or live:
            # start what the concurrency and the rate allow now
            room = 0
            while following + room < len(addresses) and not slots.locked():
                await slots.acquire()  # free now: returns without waiting
                room += 1
            granted = pace.take(room) if room else 0
            for _ in range(room - granted):
                slots.release()
            for _ in range(granted):
                start(following)
                following += 1
            # expire what ran out of time
            now = time.perf_counter()
            while deadlines and (deadlines[0][1] not in live or deadlines[0][0] <= now):
                _, i = deadlines.popleft()
                if i in live:
                    finish(i, Touched(connect_ms=timeout * 1000, error=TimeoutError()))
            if following >= len(addresses) and not live:
                break
            # sleep until a connect ends, the first deadline, or the next token
            waits = [deadlines[0][0] - now] if deadlines else []
            if following < len(addresses) and (room == 0 or granted < room):
                waits.append(pace.delay() if room else 0.05)
            if not live and following < len(addresses) and room == 0:
                # every slot is held by the batch's other probes: wait for one of them
                await slots.acquire()
                slots.release()
                continue
            woken: asyncio.Future[None] = loop.create_future()
            wake[:] = [woken]
            timer = loop.call_later(max(0.0, min(waits, default=0.05)), nudge)
            try:
                await woken
            finally:
                timer.cancel()
    finally:
        for i in list(live):
            sock, _ = live.pop(i)
            loop.remove_writer(sock.fileno())
            sock.close()
            slots.release()
