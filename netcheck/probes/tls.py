"""TCP connect + TLS handshake probe (internode TLS on 7001, API servers on 6443)."""

from __future__ import annotations

import asyncio
import ssl

from netcheck.model.probe import Target, TargetResult
from netcheck.probes import echo
from netcheck.probes.dialer import (
    Dialer,
    StalledError,
    TLSHandshakeError,
    close,
    dial,
    failed,
)


def client_context() -> ssl.SSLContext:
    # Reachability check: the handshake must complete; trust is checked by later issues.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
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
        return await echo.finish(
            target, conn, f"TLS handshake ok ({version})", payload_bytes, timeout
        )
    except Exception as exc:  # every failure is a result
        return failed(target, exc, conn.connect_ms)
    finally:
        await close(conn)
