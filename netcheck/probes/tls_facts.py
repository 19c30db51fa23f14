"""What a Cassandra TLS port is: handshake, protocol, certificate, chain, mutual TLS, plaintext.

The internode port (7000, or the legacy 7001) and the client port for TLS (9142,
native_transport_port_ssl) alike; only the plaintext question differs (step 3).

Three short connections, each bounded by the probe's timeout:
1. A handshake that trusts anything (no client certificate): the protocol and the leaf
   certificate. Whether the server insists on a client certificate shows here: in TLS 1.2 the
   handshake itself fails with the server's alert; in TLS 1.3 the client's side completes and
   the server's alert (certificate_required) or its close arrives on the first read. A server
   that does not insist waits for Cassandra's first message instead.
2. With a CA given: the same handshake verifying the chain against it (OpenSSL's verification:
   signatures, chain, validity dates). The host name is not checked: Cassandra verifies it only
   with require_endpoint_verification, which netcheck does not judge.
3. Cassandra's plaintext handshake (an Initiate of messaging protocol 4.0+, asking for versions
   no server supports, so a server that reads it answers with its Accept and closes without
   setting anything up): an answer means the port takes plaintext (internode_encryption
   optional); a server that requires TLS closes at once (Netty: NotSslRecordException).
   On the client port, a CQL OPTIONS frame instead: a SUPPORTED answer (a response frame)
   means it takes plaintext (client_encryption_options optional).

Each attempt leaves a line in the node's log (a failed handshake, or the refused versions):
the log analysis must not read the run's own probes as a peer's trouble.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import random
import ssl
import struct
import zlib
from dataclasses import replace

from netcheck.model.evidence import TlsFacts
from netcheck.model.outcome import Outcome
from netcheck.model.probe import LOOK_SOURCE_PORTS, Evidence, Target, TargetResult
from netcheck.model.text import one_line
from netcheck.probes.dialer import Connection, Dialer, close, dial, result

PROTOCOL_MAGIC = 0xCA552DFA
VERSION_40 = 12  # MessagingService.VERSION_40
SMALL_MESSAGES = 2  # ConnectionType's two-bit id
FRAMING_CRC = 2
# the server answers a readable Initiate before it checks the versions: 255 is none it has
NO_SUCH_VERSION = 255
MAX_CA_PEM = 64 << 10
# Cassandra's Crc.crc32() starts every CRC32 with these four bytes (the magic, little-endian)
CRC_SEED = zlib.crc32(bytes([0xFA, 0x2D, 0x55, 0xCA]))
# alerts that mean "a client certificate is needed" (TLS 1.3's own, and TLS 1.2's answers)
CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "HANDSHAKE_FAILURE", "BAD_CERTIFICATE")


def initiate(local: str, port: int) -> bytes:
    """HandshakeProtocol.Initiate as Cassandra 4.0+ writes it (big-endian): magic, flags
    (type, framing, request version, min and max accepted versions), the sender's address
    (size, address, port) and Cassandra's CRC32 of all that."""
    flags = SMALL_MESSAGES | ((FRAMING_CRC & 1) << 2) | ((FRAMING_CRC & 2) << 3)
    flags |= VERSION_40 << 8 | NO_SUCH_VERSION << 16 | NO_SUCH_VERSION << 24
    address = ipaddress.ip_address(local).packed
    body = struct.pack(">iI", PROTOCOL_MAGIC - (1 << 32), flags)
    body += bytes([len(address) + 2]) + address + struct.pack(">H", port & 0xFFFF)
    return body + struct.pack(">I", zlib.crc32(body, CRC_SEED))


CLIENT_TLS_PORT = 9142  # native_transport_port_ssl: CQL, not the internode protocol
# CQL native protocol v4 OPTIONS: version, flags, stream 0, opcode 0x05, no body
CQL_OPTIONS = bytes([0x04, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00])
CQL_RESPONSE = 0x80
TLS_ALERT = (
    21  # the content type of a TLS alert record  # the version byte's high bit marks a response
)


def plaintext_answer(port: int, data: bytes) -> bool:
    """Whether `data`, the first bytes read after the plaintext hello, is the server answering
    it (rather than a TLS alert, or nothing)."""
    if data[:2] == bytes([TLS_ALERT, 0x03]):
        return False  # a TLS server's alert at our plaintext: it does not take plaintext
    if port == CLIENT_TLS_PORT:
        return len(data) >= 9 and bool(data[0] & CQL_RESPONSE) and data[0] & 0x7F <= 0x06
    return len(data) >= 4


HANDSHAKE, CERTIFICATE, CERTIFICATE_REQUEST = 22, 11, 13  # TLS content and message types


class Watch:
    """The handshake messages as OpenSSL passes them (SSLContext._msg_callback, which Python's
    ssl has carried since 3.8 for its own tests and key logging): whether the server asked for
    a client certificate, the server's certificates, and whether we answered with ours (in TLS
    1.2 the client sends its Certificate only once it has verified the server's chain). Python
    has no public way to see a CertificateRequest; without this the facts are None."""

    def __init__(self) -> None:
        self.cert_request = False
        self.sent_certificate = False
        self.server_certificates: list[bytes] = []

    def __call__(
        self, conn: object, direction: str, version: object, content: object, kind: object,
        data: bytes,
    ) -> None:  # fmt: skip
        if int(content) != HANDSHAKE:  # type: ignore[call-overload]
            return
        kind = int(kind)  # type: ignore[call-overload]
        if direction == "read" and kind == CERTIFICATE_REQUEST:
            self.cert_request = True
        elif direction == "read" and kind == CERTIFICATE:
            self.server_certificates = certificates(data)
        elif direction == "write" and kind == CERTIFICATE:
            self.sent_certificate = True


def certificates(message: bytes) -> list[bytes]:
    """The DER certificates of a Certificate handshake message (4-byte header): TLS 1.2's is a
    list of 3-byte-length entries; TLS 1.3's starts with a request context and gives each
    entry 2 bytes of extensions' length after it. Bounded by the message; [] when unreadable."""
    body = message[4:]
    for tls13 in (False, True):
        at = 1 + body[0] if tls13 and body else 0
        if len(body) < at + 3:
            continue
        end = at + 3 + int.from_bytes(body[at : at + 3], "big")
        at += 3
        if end != len(body):
            continue
        out = []
        while at + 3 <= end:
            size = int.from_bytes(body[at : at + 3], "big")
            out.append(body[at + 3 : at + 3 + size])
            at += 3 + size
            if tls13:
                at += 2 + int.from_bytes(body[at : at + 2], "big")
        if at == end and out:
            return out
    return []


def _context(ca_pem: str) -> tuple[ssl.SSLContext, Watch]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_pem:
        ctx.load_verify_locations(cadata=ca_pem)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    watch = Watch()
    with contextlib.suppress(AttributeError, TypeError):
        ctx._msg_callback = watch  # type: ignore[attr-defined]
    return ctx, watch


LOOK_PORT_TRIES = 8


async def _dial(dialer: Dialer, target: Target, timeout: float) -> Connection | TargetResult:
    """A connection from one of LOOK_SOURCE_PORTS (a port still in use or in TIME_WAIT to
    this peer is skipped), so the node's log of this look can be told from a peer's."""
    conn: Connection | TargetResult | None = None
    for _ in range(LOOK_PORT_TRIES):
        conn = await dial(dialer, target, timeout, random.choice(LOOK_SOURCE_PORTS))
        if not (isinstance(conn, TargetResult) and "EADDR" in conn.detail):
            return conn
    assert conn is not None
    return conn


def _alert(exc: BaseException) -> str:
    return (getattr(exc, "reason", None) or str(exc)).upper()


async def _handshake(conn: Connection, ctx: ssl.SSLContext, timeout: float) -> None:
    async with asyncio.timeout(timeout):
        await conn.writer.start_tls(ctx)


async def _insists(conn: Connection, wait: float) -> bool | None:
    """After a TLS 1.3 handshake without a client certificate: does the server refuse to go
    on? True on its alert or its close, False when it waits for us, None when unclear."""
    try:
        async with asyncio.timeout(wait):
            data = await conn.reader.read(1)
    except TimeoutError:
        return False
    except ssl.SSLError as exc:
        return any(a in _alert(exc) for a in CLIENT_CERT_ALERTS) or None
    except ConnectionError:
        return True
    return True if not data else None


async def _first_look(
    dialer: Dialer, target: Target, timeout: float
) -> tuple[TlsFacts | TargetResult, float | None]:
    conn = await _dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn, None
    ctx, watch = _context("")
    try:
        try:
            await _handshake(conn, ctx, timeout)
        except TimeoutError:
            return TlsFacts(handshake=False, verify_error="no TLS handshake within the timeout"), (
                conn.connect_ms
            )
        except (ssl.SSLError, ConnectionError) as exc:
            if watch.cert_request or any(a in _alert(exc) for a in CLIENT_CERT_ALERTS):
                # TLS 1.2 with a required client certificate: the server refused us after
                # asking for one; its certificate came before that
                leaf = watch.server_certificates[:1]
                return TlsFacts(
                    handshake=True,
                    protocol="TLSv1.2",
                    certificate=base64.b64encode(leaf[0]).decode() if leaf else "",
                    client_auth_required=True,
                ), conn.connect_ms
            return TlsFacts(handshake=False, verify_error=str(exc) or type(exc).__name__), (
                conn.connect_ms
            )
        tls = conn.writer.get_extra_info("ssl_object")
        protocol = tls.version() or ""
        der = tls.getpeercert(binary_form=True) or b""
        insists: bool | None = False
        if protocol == "TLSv1.3":
            insists = await _insists(conn, min(timeout, 1.5))
        return TlsFacts(
            handshake=True,
            protocol=protocol,
            certificate=base64.b64encode(der).decode(),
            client_auth_required=insists,
        ), conn.connect_ms
    finally:
        await close(conn)


async def _verified(dialer: Dialer, target: Target, timeout: float) -> tuple[bool | None, str]:
    conn = await _dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return None, f"second connection: {conn.detail}"
    ctx, watch = _context(target.ca_pem)
    try:
        await _handshake(conn, ctx, timeout)
    except ssl.SSLCertVerificationError as exc:
        return False, exc.verify_message or str(exc)
    except (ssl.SSLError, ConnectionError, TimeoutError) as exc:
        if watch.sent_certificate:
            # TLS 1.2 and a required client certificate: we had verified the chain, answered
            # with our (empty) certificate, and were refused for that
            return True, ""
        return None, f"the verifying handshake failed: {exc}"
    finally:
        await close(conn)
    return True, ""


async def _plaintext(dialer: Dialer, target: Target, timeout: float) -> bool | None:
    conn = await _dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return None
    try:
        hello = (
            CQL_OPTIONS
            if target.port == CLIENT_TLS_PORT
            else initiate(conn.local_address or "0.0.0.0", 0)
        )
        conn.writer.write(hello)
        async with asyncio.timeout(min(timeout, 2.0)):
            await conn.writer.drain()
            data = await conn.reader.read(12)
    except TimeoutError:
        return None
    except ConnectionError:
        return False
    finally:
        await close(conn)
    return plaintext_answer(target.port, data)


async def probe(dialer: Dialer, target: Target, timeout: float, payload_bytes: int) -> TargetResult:
    try:
        first, connect_ms = await _first_look(dialer, target, timeout)
        if isinstance(first, TargetResult):
            return first  # no TCP connection: the outcome says why
        facts = first
        if target.ca_pem and facts.certificate:
            verified, why = await _verified(dialer, target, timeout)
            facts = replace(facts, chain_verified=verified, verify_error=why)
        plaintext = await _plaintext(dialer, target, timeout)
        facts = replace(facts, plaintext_accepted=plaintext)
    except Exception as exc:  # every failure is a result
        return result(target, Outcome.ERROR, detail=f"{type(exc).__name__}: {exc}")
    facts = replace(facts, verify_error=one_line(facts.verify_error, 300))
    said = (
        f"TLS {facts.protocol}" if facts.handshake else f"no TLS handshake ({facts.verify_error})"
    )
    return result(
        target,
        Outcome.OPEN,
        latency_ms=connect_ms,
        detail=said,
        evidence=Evidence(tls=facts),
    )
