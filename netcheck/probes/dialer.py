"""The one seam to the network under every probe, and the one error-to-outcome map."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import ipaddress
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from netcheck.model.evidence import Reply, ReplyKind
from netcheck.model.outcome import Outcome
from netcheck.model.probe import NO_EVIDENCE, Evidence, Target, TargetResult
from netcheck.probes import connects
from netcheck.probes.connects import Done, Pace


@dataclass(frozen=True, kw_only=True)
class Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    local_address: str
    connect_ms: float


class Dialer(Protocol):
    async def connect(
        self, address: str, port: int, *, timeout: float, local_port: int | None = None
    ) -> Connection: ...

    async def touch(self, address: str, port: int, *, timeout: float) -> tuple[str, float]:
        """Connect to an IP address and close at once: our local address, the connect ms."""
        ...

    async def touch_many(
        self,
        addresses: Sequence[tuple[str, int]],
        *,
        timeout: float,
        slots: asyncio.Semaphore,
        pace: Pace,
        done: Done,
    ) -> None:
        """touch() for a batch: done(index, how it ended) once per address (probes/connects.py)."""
        ...


class StreamDialer:
    """Real sockets through asyncio."""

    async def connect(
        self, address: str, port: int, *, timeout: float, local_port: int | None = None
    ) -> Connection:
        """local_port: leave from this source port (the tls_facts looks: LOOK_SOURCE_PORTS)."""
        start = time.perf_counter()
        local = None
        if local_port is not None:
            local = ("::" if ":" in address else "0.0.0.0", local_port)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address, port, local_addr=local), timeout=timeout
        )
        connect_ms = (time.perf_counter() - start) * 1000
        sockname = writer.get_extra_info("sockname")
        return Connection(
            reader=reader,
            writer=writer,
            local_address=str(sockname[0]) if sockname else "",
            connect_ms=connect_ms,
        )

    async def touch(self, address: str, port: int, *, timeout: float) -> tuple[str, float]:
        """A bare non-blocking socket, no stream around it: a plain TCP probe's connect costs
        a third of open_connection's (BENCHMARKS.md p)."""
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            start = time.perf_counter()
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (address, port))
            connect_ms = (time.perf_counter() - start) * 1000
            return str(sock.getsockname()[0]), connect_ms
        finally:
            sock.close()

    async def touch_many(
        self,
        addresses: Sequence[tuple[str, int]],
        *,
        timeout: float,
        slots: asyncio.Semaphore,
        pace: Pace,
        done: Done,
    ) -> None:
        await connects.connect_all(addresses, timeout=timeout, slots=slots, pace=pace, done=done)


class TLSHandshakeError(Exception):
    """TCP connected, the TLS handshake did not complete."""


class StalledError(Exception):
    """TCP connected, then data did not cross in time.

    observed_ip: the source address the serving peer reported before the data stalled ("" when
    it reported none).
    """

    def __init__(self, message: str, observed_ip: str = "") -> None:
        super().__init__(message)
        self.observed_ip = observed_ip


class BadAnswerError(Exception):
    """The peer answered something we cannot read."""


_ERRNO_OUTCOME = {
    errno.ECONNREFUSED: Outcome.REFUSED,
    errno.ECONNRESET: Outcome.REFUSED,
    errno.EHOSTUNREACH: Outcome.UNREACHABLE,
    errno.ENETUNREACH: Outcome.UNREACHABLE,
    errno.EACCES: Outcome.UNREACHABLE,  # a local firewall rejected our own packet
    errno.EPERM: Outcome.UNREACHABLE,
    errno.ETIMEDOUT: Outcome.TIMEOUT,
}


def outcome_of_error(exc: BaseException) -> tuple[Outcome, str]:
    """Map any low-level failure of a probe to the outcome vocabulary (the only place)."""
    if isinstance(exc, StalledError):
        return Outcome.STALLED, str(exc)
    if isinstance(exc, TLSHandshakeError | ssl.SSLError):
        return Outcome.TLS_FAILED, f"TLS handshake failed: {exc}"
    if isinstance(exc, BadAnswerError):
        return Outcome.ERROR, f"unexpected answer: {exc}"
    if isinstance(exc, TimeoutError):
        return Outcome.TIMEOUT, "no answer to the SYN within the timeout"
    if isinstance(exc, OSError) and exc.errno in _ERRNO_OUTCOME:
        return _ERRNO_OUTCOME[exc.errno], f"{errno.errorcode[exc.errno]}: {exc.strerror}"
    if isinstance(exc, OSError):
        name = errno.errorcode.get(exc.errno or 0, "OSError")
        return Outcome.ERROR, f"{name}: {exc.strerror or exc}"
    return Outcome.ERROR, f"{type(exc).__name__}: {exc}"


_REPLY_OUTCOME = {
    ReplyKind.SYN_ACK: (Outcome.OPEN, "SYN-ACK from {source}"),
    ReplyKind.RST: (Outcome.REFUSED, "RST from {source} (TTL {ttl})"),
    ReplyKind.NONE: (Outcome.FILTERED, "no answer to the SYN: silently dropped"),
    ReplyKind.PROHIBITED: (Outcome.PROHIBITED, "ICMP administratively prohibited from {source}"),
    # a host answers a closed TCP port with RST: ICMP port unreachable is a firewall's REJECT
    ReplyKind.PORT_UNREACHABLE: (
        Outcome.PROHIBITED,
        "ICMP port unreachable from {source} (a REJECT rule's default answer)",
    ),
    ReplyKind.HOST_UNREACHABLE: (Outcome.UNREACHABLE, "ICMP host unreachable from {source}"),
    ReplyKind.NET_UNREACHABLE: (Outcome.UNREACHABLE, "ICMP net unreachable from {source}"),
    ReplyKind.NO_ROUTE: (Outcome.UNREACHABLE, "the sender has no route to the address"),
    ReplyKind.TIME_EXCEEDED: (Outcome.UNREACHABLE, "TTL exceeded at {source}: a routing loop"),
    ReplyKind.FRAG_NEEDED: (Outcome.ERROR, "fragmentation needed from {source} for a bare SYN"),
}


def outcome_of_reply(reply: Reply) -> tuple[Outcome, str]:
    """Map what answered a raw SYN to the outcome vocabulary (the only place)."""
    outcome, text = _REPLY_OUTCOME[reply.kind]
    return outcome, text.format(source=reply.source or "?", ttl=reply.ttl)


ProbeFn = Callable[[Dialer, Target, float, int], Awaitable[TargetResult]]


def result(
    target: Target,
    outcome: Outcome,
    *,
    latency_ms: float | None = None,
    detail: str = "",
    local_address: str = "",
    observed_source: str = "",
    evidence: Evidence | None = None,
) -> TargetResult:
    return TargetResult(
        address=target.address,
        port=target.port,
        kind=target.kind,
        outcome=outcome,
        latency_ms=None if latency_ms is None else round(latency_ms, 3),
        detail=detail,
        local_address=local_address,
        observed_source=observed_source,
        evidence=evidence or NO_EVIDENCE,
    )


def failed(target: Target, exc: BaseException, latency_ms: float | None = None) -> TargetResult:
    outcome, detail = outcome_of_error(exc)
    return result(target, outcome, latency_ms=latency_ms, detail=detail)


async def close(conn: Connection) -> None:
    conn.writer.close()
    with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
        await asyncio.wait_for(conn.writer.wait_closed(), timeout=0.5)


def nat_check(
    target: Target,
    conn: Connection,
    observed_ip: str | None,
    what: str,
    latency_ms: float | None = None,
) -> TargetResult:
    """Open, or nat when the peer saw another source address than ours (None: not asked)."""
    latency = conn.connect_ms if latency_ms is None else latency_ms
    if observed_ip and not is_ip(observed_ip):
        return result(
            target,
            Outcome.ERROR,
            latency_ms=latency,
            detail=f"{what}; the peer reported {observed_ip[:40]!r} as our address: not an IP",
        )
    if observed_ip and observed_ip != conn.local_address:
        return result(
            target,
            Outcome.NAT,
            latency_ms=latency,
            local_address=conn.local_address,
            observed_source=observed_ip,
            detail=f"{what}; sent from {conn.local_address}, peer saw {observed_ip}",
        )
    return result(
        target,
        Outcome.OPEN,
        latency_ms=latency,
        local_address=conn.local_address,
        observed_source=observed_ip or "",
        detail=what,
    )


@functools.lru_cache(maxsize=4096)  # a batch asks about the same few addresses thousands of times
def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


async def dial(
    dialer: Dialer, target: Target, timeout: float, local_port: int | None = None
) -> Connection | TargetResult:
    """A connection, or the result that says why there is none."""
    start = time.perf_counter()
    try:
        return await dialer.connect(
            target.address, target.port, timeout=timeout, local_port=local_port
        )
    except Exception as exc:  # every failure is a result
        return failed(target, exc, (time.perf_counter() - start) * 1000)
