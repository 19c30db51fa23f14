"""TCP connect probe, with a payload echo where a netcheck agent serves the port."""

from __future__ import annotations

import time

from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target, TargetResult
from netcheck.probes import echo
from netcheck.probes.connects import Touched
from netcheck.probes.dialer import Dialer, close, dial, failed, is_ip, result


def bare(target: Target) -> bool:
    """Nothing to push through (no netcheck agent serves the port) and no name to resolve:
    a connect and a close, which a batch runs in probes/connects.py's engine."""
    return target.kind is ProbeKind.TCP and not target.echo and is_ip(target.address)


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    if bare(target):
        return await _touch(dialer, target, timeout)
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
    try:
        return await echo.finish(target, conn, "connected", payload_bytes, timeout)
    except Exception as exc:  # every failure is a result
        return failed(target, exc, conn.connect_ms)
    finally:
        await close(conn)


async def _touch(dialer: Dialer, target: Target, timeout: float) -> TargetResult:
    """Nothing to push through (no netcheck agent serves the port): connect and close."""
    start = time.perf_counter()
    try:
        local, connect_ms = await dialer.touch(target.address, target.port, timeout=timeout)
    except Exception as exc:  # every failure is a result
        return failed(target, exc, (time.perf_counter() - start) * 1000)
    return result(
        target, Outcome.OPEN, latency_ms=connect_ms, local_address=local, detail="connected"
    )


def touched(target: Target, how: Touched) -> TargetResult:
    """The result of a bare target from the batch engine's answer."""
    if how.error is not None:
        return failed(target, how.error, how.connect_ms or None)
    return result(
        target,
        Outcome.OPEN,
        latency_ms=how.connect_ms,
        local_address=how.local_address,
        detail="connected",
    )
