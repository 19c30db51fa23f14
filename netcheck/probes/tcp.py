"""TCP connect probe, with a payload echo where a netcheck agent serves the port."""

from __future__ import annotations

import time

from netcheck.model.outcome import Outcome
from netcheck.model.probe import Target, TargetResult
from netcheck.probes import echo
from netcheck.probes.dialer import Dialer, close, failed, nat_check, result


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    start = time.perf_counter()
    try:
        conn = await dialer.connect(target.address, target.port, timeout=timeout)
    except Exception as exc:
        return failed(target, exc, (time.perf_counter() - start) * 1000)
    try:
        if not target.echo:
            return result(
                target,
                Outcome.OPEN,
                latency_ms=conn.connect_ms,
                local_address=conn.local_address,
                detail="connected",
            )
        reply = await echo.exchange(conn.reader, conn.writer, payload_bytes, timeout)
        return nat_check(
            target,
            conn,
            reply.observed_ip,
            conn.connect_ms,
            f"connected; {payload_bytes}-byte echo crossed",
        )
    except Exception as exc:
        return failed(target, exc, conn.connect_ms)
    finally:
        await close(conn)
