"""The echo exchange spoken between a probing agent and a port a netcheck agent serves.

The client sends ``NETCHECK-ECHO <n>\\n`` (in a segment of its own) and n bytes; the server
answers ``NETCHECK-ECHO <n> <ip> <port>\\n`` (the source address it saw) as soon as it has read
the request line, then the same n bytes.
Full-size segments must cross both ways (path-MTU black holes show up as a stall) and
the client learns whether its source address was translated (NAT).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from netcheck.model.outcome import Outcome
from netcheck.model.probe import Target, TargetResult
from netcheck.probes.dialer import (
    BadAnswerError,
    Connection,
    StalledError,
    is_ip,
    nat_check,
    result,
)

MAGIC = b"NETCHECK-ECHO"
MAX_PAYLOAD = 1 << 20
MAX_LINE = 128
HTTP_ECHO_PATH = "/netcheck/v1/echo"
OBSERVED_HEADER = "X-Netcheck-Observed-Source"


@dataclass(frozen=True, kw_only=True)
class EchoReply:
    size: int
    observed_ip: str
    observed_port: int


def request_line(size: int) -> bytes:
    return MAGIC + b" %d\n" % size


def reply_line(size: int, ip: str, port: int) -> bytes:
    return MAGIC + b" %d %s %d\n" % (size, ip.encode(), port)


def parse_request_line(line: bytes) -> int | None:
    """The payload size a client announces, or None for anything else."""
    parts = line.strip().split()
    if len(parts) != 2 or parts[0] != MAGIC or not parts[1].isdigit():
        return None
    size = int(parts[1])
    return size if 0 <= size <= MAX_PAYLOAD else None


def parse_reply_line(line: bytes) -> EchoReply | None:
    parts = line.strip().split()
    if len(parts) != 4 or parts[0] != MAGIC or not parts[1].isdigit() or not parts[3].isdigit():
        return None
    observed = parts[2].decode(errors="replace")
    if not is_ip(observed):
        return None  # whatever answered, it is not a netcheck agent's echo
    return EchoReply(size=int(parts[1]), observed_ip=observed, observed_port=int(parts[3]))


def payload(size: int) -> bytes:
    # Incompressible enough and recognisable in a capture.
    pattern = b"netcheck-payload-0123456789abcdef"
    return (pattern * (size // len(pattern) + 1))[:size]


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, timeout: float
) -> EchoReply:
    """Client side of the echo exchange; raises StalledError or BadAnswerError."""
    data = payload(size)
    reply: EchoReply | None = None
    try:
        async with asyncio.timeout(timeout):
            # the request line crosses alone and its answer is awaited before the payload
            # goes: written back to back, a loaded host's kernel coalesces the two (TCP
            # autocorking) into a full-size segment that a black-holed path drops, and the
            # address the peer saw would be lost with it
            writer.write(request_line(size))
            await writer.drain()
            line = await reader.readline()
            reply = parse_reply_line(line)
            if reply is None or reply.size != size:
                raise BadAnswerError(f"echo reply {line[:60]!r}")
            writer.write(data)
            await writer.drain()
            back = await reader.readexactly(size)
    except TimeoutError:
        raise StalledError(
            f"connected, but a {size}-byte payload did not cross within {timeout:g}s "
            "(path MTU black hole?)",
            observed_ip=reply.observed_ip if reply is not None else "",
        ) from None
    except asyncio.IncompleteReadError as exc:
        raise BadAnswerError(f"echo cut after {len(exc.partial)} of {size} bytes") from None
    if back != data:
        raise BadAnswerError("echo payload came back altered")
    return reply


async def finish(
    target: Target, conn: Connection, what: str, payload_bytes: int, timeout: float
) -> TargetResult:
    """Open after `what`, plus the echo where a netcheck agent serves the port."""
    if not target.echo:
        return nat_check(target, conn, None, what)
    try:
        reply = await exchange(conn.reader, conn.writer, payload_bytes, timeout)
    except StalledError as exc:
        # stalled, and maybe translated too: the address the peer saw is kept with the stall
        seen = exc.observed_ip
        nat = (
            f"; sent from {conn.local_address}, peer saw {seen}"
            if seen and seen != conn.local_address
            else ""
        )
        return result(
            target,
            Outcome.STALLED,
            latency_ms=conn.connect_ms,
            detail=f"{exc}{nat}",
            local_address=conn.local_address,
            observed_source=seen,
        )
    return nat_check(target, conn, reply.observed_ip, f"{what}; {payload_bytes}-byte echo crossed")
