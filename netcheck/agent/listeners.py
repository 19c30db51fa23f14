"""Ports the agent serves in place of Cassandra before install: plain TCP, TLS and HTTP.

Each one answers the echo exchange (netcheck.probes.echo) and records the source address of
every connection it accepts, so the collector can tell NAT between pods.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from aiohttp import web

from netcheck.model.text import ascii_int
from netcheck.probes import echo
from netcheck.probes.http import LIVENESS_PATH

IDLE_TIMEOUT_S = 10.0
ACCEPTED_KEPT = 4096


class ServeMode(StrEnum):
    TCP = "tcp"
    TLS = "tls"
    HTTP = "http"


@dataclass(frozen=True, kw_only=True)
class ServeSpec:
    port: int
    mode: ServeMode


@dataclass(frozen=True, kw_only=True)
class Accepted:
    at: float
    port: int
    peer_ip: str
    peer_port: int


def parse_serve(text: str) -> ServeSpec:
    """'7000', '7001:tls', '8080:http'."""
    port_s, _, mode_s = text.partition(":")
    mode_s = mode_s or "tcp"
    port = ascii_int(port_s, 5)
    if port is None or not 1 <= port <= 65535:
        raise ValueError(f"--serve {text!r}: the port must be a number from 1 to 65535")
    if mode_s not in {m.value for m in ServeMode}:
        raise ValueError(f"--serve {text!r}: the mode must be tcp, tls or http")
    return ServeSpec(port=port, mode=ServeMode(mode_s))


class AcceptLog:
    """The sources of accepted connections, newest last, bounded."""

    def __init__(self, keep: int = ACCEPTED_KEPT) -> None:
        self._entries: deque[Accepted] = deque(maxlen=keep)

    def record(self, port: int, peer: tuple[str, int] | None) -> None:
        if peer:
            self._entries.append(
                Accepted(at=time.time(), port=port, peer_ip=str(peer[0]), peer_port=int(peer[1]))
            )

    def entries(self) -> list[Accepted]:
        return list(self._entries)


def _stream_handler(
    port: int, log: AcceptLog
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        log.record(port, peer)
        try:
            async with asyncio.timeout(IDLE_TIMEOUT_S):
                line = await reader.readline()
                size = echo.parse_request_line(line[: echo.MAX_LINE])
                if size is None:
                    return
                # the address we saw goes back at once, before the payload: small packets
                # cross where full-size ones stall, so NAT is seen even on a black-holed path
                writer.write(echo.reply_line(size, str(peer[0]), int(peer[1])))
                await writer.drain()
                data = await reader.readexactly(size)
                writer.write(data)
                await writer.drain()
        except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError, ssl.SSLError):
            return  # a peer that hangs up, stalls or talks nonsense is not our problem
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), timeout=1)

    return handle


def _http_app(port: int, log: AcceptLog) -> web.Application:
    @web.middleware
    async def record(request: web.Request, handler: Callable[..., object]) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        log.record(port, peer)
        response = await handler(request)  # type: ignore[misc]
        assert isinstance(response, web.StreamResponse)
        return response

    async def liveness(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def echo_post(request: web.Request) -> web.Response:
        body = await request.read()
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return web.Response(body=body, headers={echo.OBSERVED_HEADER: str(peer[0]) if peer else ""})

    app = web.Application(middlewares=[record], client_max_size=echo.MAX_PAYLOAD + 1024)
    app.router.add_get(LIVENESS_PATH, liveness)
    app.router.add_post(echo.HTTP_ECHO_PATH, echo_post)
    return app


class Listeners:
    """Starts and stops every served port."""

    def __init__(
        self, bind: str, specs: list[ServeSpec], tls: ssl.SSLContext | None, log: AcceptLog
    ) -> None:
        self._bind, self._specs, self._tls, self._log = bind, specs, tls, log
        self._servers: list[asyncio.Server] = []
        self._runners: list[web.AppRunner] = []

    async def start(self) -> list[ServeSpec]:
        """Listen on every served port; returns the ones another process already holds on
        this address (a Cassandra pod sharing the node's network with a hostNetwork agent):
        those are left to it, not a reason to stop. Any other error is raised."""
        busy = []
        for spec in self._specs:
            try:
                await self._start_one(spec)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                busy.append(spec)
        return busy

    async def _start_one(self, spec: ServeSpec) -> None:
        if spec.mode is ServeMode.HTTP:
            runner = web.AppRunner(
                _http_app(spec.port, self._log),
                access_log=None,
                handle_signals=False,
                keepalive_timeout=IDLE_TIMEOUT_S,  # also bounds an unfinished request head
            )
            await runner.setup()
            try:
                await web.TCPSite(runner, self._bind, spec.port, reuse_address=True).start()
            except OSError:
                await runner.cleanup()
                raise
            self._runners.append(runner)
        else:
            ctx = self._tls if spec.mode is ServeMode.TLS else None
            server = await asyncio.start_server(
                _stream_handler(spec.port, self._log),
                self._bind,
                spec.port,
                ssl=ctx,
                reuse_address=True,
                limit=echo.MAX_LINE * 4,
                ssl_handshake_timeout=IDLE_TIMEOUT_S if ctx else None,
            )
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for runner in self._runners:
            await runner.cleanup()
        for server in self._servers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), timeout=2)
