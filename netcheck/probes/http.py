"""HTTP probe: GET the Management API liveness path, then an echo POST where an agent serves."""

from __future__ import annotations

import asyncio

import h11

from netcheck.model.probe import Target, TargetResult
from netcheck.probes import echo
from netcheck.probes.dialer import (
    BadAnswerError,
    Connection,
    Dialer,
    StalledError,
    close,
    dial,
    failed,
    nat_check,
)

LIVENESS_PATH = "/api/v0/probes/liveness"
MAX_BODY = 2 * echo.MAX_PAYLOAD


async def request(
    conn: Connection,
    method: str,
    path: str,
    body: bytes,
    host: str,
    timeout: float,
    max_body: int = MAX_BODY,
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 exchange on a connection the server closes after it."""
    client = h11.Connection(our_role=h11.CLIENT)
    headers = [("Host", host), ("Connection", "close"), ("User-Agent", "netcheck")]
    if body:
        headers.append(("Content-Length", str(len(body))))
    out = client.send(h11.Request(method=method, target=path, headers=headers))
    if body:
        out += client.send(h11.Data(data=body))
    out += client.send(h11.EndOfMessage())
    conn.writer.write(out)
    status, resp_headers, chunks, size = 0, {}, [], 0
    try:
        async with asyncio.timeout(timeout):
            await conn.writer.drain()
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(await conn.reader.read(65536))
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    resp_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > max_body:
                        raise BadAnswerError("HTTP body too large")
                    chunks.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    break
    except TimeoutError:
        raise StalledError(
            f"connected, but the HTTP exchange ({len(body)}-byte body) did not finish "
            f"within {timeout:g}s (path MTU black hole?)"
        ) from None
    except h11.RemoteProtocolError as exc:
        raise BadAnswerError(f"not HTTP: {exc}") from None
    return status, resp_headers, b"".join(chunks)


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    host = f"{target.address}:{target.port}"
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
    latency = conn.connect_ms
    try:
        status, _, _ = await request(conn, "GET", LIVENESS_PATH, b"", host, timeout)
        if status != 200:
            raise BadAnswerError(f"GET {LIVENESS_PATH} answered HTTP {status}")
        if not target.echo:
            return nat_check(target, conn, None, "liveness HTTP 200")
    except Exception as exc:  # every failure is a result
        return failed(target, exc, latency)
    finally:
        await close(conn)
    # the echo travels on a second connection: the first one is closed by the server
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
    try:
        data = echo.payload(payload_bytes)
        status, headers, body = await request(
            conn, "POST", echo.HTTP_ECHO_PATH, data, host, timeout
        )
        if status != 200 or body != data:
            raise BadAnswerError(f"echo POST answered HTTP {status}, {len(body)} bytes")
        return nat_check(
            target,
            conn,
            headers.get(echo.OBSERVED_HEADER.lower(), ""),
            f"liveness HTTP 200; {payload_bytes}-byte echo crossed",
            latency,
        )
    except Exception as exc:  # every failure is a result
        return failed(target, exc, latency)
    finally:
        await close(conn)
