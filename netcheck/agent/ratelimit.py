"""A token bucket: the agent never probes faster than its configured rate."""

from __future__ import annotations

import asyncio
import time


class TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now

    async def acquire(self) -> None:
        async with self._lock:
            while True:
                self._refill()
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                await asyncio.sleep((1 - self._tokens) / self._rate)

    def take(self, wanted: int) -> int:
        """Up to `wanted` whole tokens now, without waiting (probes/connects.py starts that
        many connects); none while a waiter in acquire() is first in line."""
        if self._lock.locked() or wanted <= 0:
            return 0
        self._refill()
        granted = min(wanted, int(self._tokens))
        self._tokens -= granted
        return granted

    def delay(self) -> float:
        """Seconds until the next whole token."""
        self._refill()
        return max(0.0, (1 - self._tokens) / self._rate)
