"""TCP connect + TLS handshake probe (internode TLS on 7001, API servers on 6443)."""

from __future__ import annotations

import asyncio
import ssl
import time

from netcheck.model.outcome import Outcome
from netcheck.model.probe import Target, TargetResult
from netcheck.probes import echo
from netcheck.probes.dialer import (
    Dialer,
    StalledError,
    TLSHandshakeError,
    close,
    failed,
    nat_check,
    result,
)


def client_context() -> ssl.SSLContext:
    # Reachability check: the handshake must complete; trust is checked by later issues.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    start = time.perf_counter()
    try:
        conn = await dialer.connect(target.address, target.port, timeout=timeout)
    except Exception as exc:
        return failed(target, exc, (time.perf_counter() - start) * 1000)
    try:
        try:
            async with asyncio.timeout(timeout):
                await conn.writer.start_tls(client_context())
        except TimeoutError:
            raise StalledError(
                f"TCP connected, TLS handshake did not finish within {timeout:g}s "
                "(server's certificate flight lost: path MTU black hole?)"
            ) from None
        except (ssl.SSLError, ConnectionError) as exc:
            raise TLSHandshakeError(str(exc) or type(exc).__name__) from None
        version = conn.writer.get_extra_info("ssl_object").version()
        what = f"TLS handshake ok ({version})"
        if not target.echo:
            return result(
                target,
                Outcome.OPEN,
                latency_ms=conn.connect_ms,
                local_address=conn.local_address,
                detail=what,
            )
        reply = await echo.exchange(conn.reader, conn.writer, payload_bytes, timeout)
        return nat_check(
            target,
            conn,
            reply.observed_ip,
            conn.connect_ms,
            f"{what}; {payload_bytes}-byte echo crossed",
        )
    except Exception as exc:
        return failed(target, exc, conn.connect_ms)
    finally:
        await close(conn)
