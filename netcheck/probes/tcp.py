"""TCP connect probe, with a payload echo where a netcheck agent serves the port."""

from __future__ import annotations

from netcheck.model.probe import Target, TargetResult
from netcheck.probes import echo
from netcheck.probes.dialer import Dialer, close, dial, failed


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
    try:
        return await echo.finish(target, conn, "connected", payload_bytes, timeout)
    except Exception as exc:  # every failure is a result
        return failed(target, exc, conn.connect_ms)
    finally:
        await close(conn)
