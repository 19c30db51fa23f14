"""The tls_facts probe (probes/tls_facts.py) and its diagnosis (diagnosis/tls.py) against real
TLS servers on loopback: OpenSSL through Python's ssl on both sides, certificates made here with
`cryptography`. What Cassandra itself answers (its plaintext handshake, Netty's TLS) is checked
on the lab's real nodes in test_kube_cassandra."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcheck.agent.wire import result_from_json, result_to_json
from netcheck.diagnosis.tls import tls_findings, tls_rows
from netcheck.lab.cassandra import LabCA
from netcheck.model.probe import ProbeKind, ProbeResult, Target
from netcheck.model.topology import Endpoint, Topology
from netcheck.probes import tls_facts
from netcheck.probes.dialer import StreamDialer

NOW = datetime.datetime.now(datetime.UTC)


CA = LabCA.generate("cluster CA")  # the lab's own CA maker: a P-256 CA and node certificates


def server_context(
    issuer: LabCA = CA, *, client_auth: bool = True, tls12_only: bool = False, **kw: bool | int
) -> ssl.SSLContext:
    pem = issuer.issue("node-a", "127.0.0.1", **kw)  # type: ignore[arg-type]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "c.pem").write_bytes(pem)
        ctx.load_cert_chain(str(Path(d) / "c.pem"))
    ctx.load_verify_locations(cadata=CA.cert_pem.decode())
    ctx.verify_mode = ssl.CERT_REQUIRED if client_auth else ssl.CERT_NONE
    if tls12_only:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    return ctx


CLIENT_HOST = "127.0.0.42"  # its own loopback address, for a server on the client TLS port


@asynccontextmanager
async def server(
    ctx: ssl.SSLContext | None, answer: bytes = b"", port: int = 0
) -> AsyncIterator[int]:
    """A TLS server (or a plaintext one answering `answer` to 8 bytes) that, like Cassandra,
    waits for the peer's first message and never speaks first."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = await asyncio.wait_for(reader.read(64), 5)
            if data and answer:
                writer.write(answer)
                await writer.drain()
        except (OSError, TimeoutError, ssl.SSLError):
            pass
        finally:
            writer.close()

    host = CLIENT_HOST if port else "127.0.0.1"
    srv = await asyncio.start_server(handle, host, port, ssl=ctx, reuse_address=True)
    try:
        yield srv.sockets[0].getsockname()[1]
    finally:
        srv.close()


def look(
    ctx: ssl.SSLContext | None,
    *,
    ca: bytes = CA.cert_pem,
    answer: bytes = b"",
    client_port: bool = False,
) -> ProbeResult:
    """The probe of a server on a free port as if it were 7000, or (client_port) of one on
    9142 of its own loopback address."""

    async def go() -> ProbeResult:
        wanted = tls_facts.CLIENT_TLS_PORT if client_port else 0
        async with server(ctx, answer, wanted) as port:
            address = CLIENT_HOST if client_port else "127.0.0.1"
            t = Target(address=address, port=port, kind=ProbeKind.TLS_FACTS, ca_pem=ca.decode())
            r = await tls_facts.probe(StreamDialer(), t, 2.0, 0)
        # through the wire as an agent answers, parsed as the collector parses it
        back = result_from_json(result_to_json(r), "r")
        return ProbeResult(
            src="db-b", dst="db-a", port=wanted or 7000, kind=back.kind, outcome=back.outcome,
            detail=back.detail, evidence=back.evidence,
        )  # fmt: skip

    return asyncio.run(go())


TOPOLOGY = Topology(
    clusters=(),
    endpoints=(
        Endpoint(name="db-a", cluster="CP_EAST", region="east", address="127.0.0.1"),
        Endpoint(name="db-b", cluster="CP_EAST", region="east", address="127.0.0.2"),
    ),
)


def diagnosed(r: ProbeResult) -> tuple[list[tuple[str, str]], object]:
    (row,) = tls_rows((r,), NOW)
    return [(f.code, f.severity.value) for f in tls_findings((row,), TOPOLOGY)], row


def test_a_healthy_node_is_verified_mutual_and_refuses_plaintext():
    codes, row = diagnosed(look(server_context()))
    assert codes == [("INTERNODE_TLS_VERIFIED", "info")]
    assert (row.handshake, row.protocol, row.chain_verified) == (True, "TLSv1.3", True)
    assert (row.client_auth_required, row.plaintext_accepted) == (True, False)
    assert row.subject == "CN=node-a" and row.issuer == "CN=cluster CA"
    assert row.sans == ("DNS:node-a", "IP:127.0.0.1") and 363 <= row.days_left <= 365


def test_without_a_ca_the_chain_is_not_judged():
    r = look(server_context(), ca=b"")
    codes, row = diagnosed(r)
    assert codes == [("INTERNODE_TLS_VERIFIED", "info")] and row.chain_verified is None
    (f,) = tls_findings((row,), TOPOLOGY)
    assert "chain not checked on 1 of 1" in f.summary


@pytest.mark.parametrize(
    ("ctx", "code"),
    [
        (lambda: server_context(expired=True), "INTERNODE_TLS_CERT_EXPIRED"),
        (lambda: server_context(days=10), "INTERNODE_TLS_CERT_EXPIRING"),
        (lambda: server_context(LabCA.generate("another CA")), "INTERNODE_TLS_UNTRUSTED"),
        (lambda: server_context(client_auth=False), "INTERNODE_TLS_CLIENT_AUTH_OFF"),
    ],
)
def test_each_fault_gives_its_finding_and_nothing_else(ctx, code):
    codes, _ = diagnosed(look(ctx()))
    assert [c for c, _ in codes] == [code], codes


def test_tls12_with_a_required_client_certificate_is_seen_through_the_handshake():
    """TLS 1.2 refuses the handshake itself without a client certificate: the server's
    certificate and its request for ours are read off the handshake messages, and the chain
    counts as verified when the client went on to answer with its certificate."""
    codes, row = diagnosed(look(server_context(tls12_only=True)))
    assert (row.handshake, row.protocol, row.client_auth_required) == (True, "TLSv1.2", True)
    assert (row.subject, row.chain_verified) == ("CN=node-a", True)
    assert codes == [("INTERNODE_TLS_VERIFIED", "info")]
    codes, row = diagnosed(look(server_context(LabCA.generate("another CA"), tls12_only=True)))
    assert codes == [("INTERNODE_TLS_UNTRUSTED", "error")] and row.chain_verified is False


def test_a_plaintext_port_that_answers_the_handshake_has_tls_off():
    codes, row = diagnosed(look(None, answer=b"\x00\x00\x00\x0d" * 3))
    assert codes == [("INTERNODE_TLS_OFF", "error")]
    assert (row.handshake, row.plaintext_accepted) == (False, True)


def test_the_plaintext_handshake_is_cassandras_initiate():
    """Magic, flags (small messages, CRC framing, version 12 asked, versions 255..255
    accepted), the IPv4 address with its port, and a CRC32 seeded with the magic's bytes."""
    import struct
    import zlib

    raw = tls_facts.initiate("198.18.1.10", 7000)
    magic, flags = struct.unpack(">II", raw[:8])
    assert magic == 0xCA552DFA and len(raw) == 8 + 7 + 4
    assert flags & 3 == 2 and (flags >> 8) & 0xFF == 12 and flags >> 16 == 0xFFFF
    assert raw[8:15] == bytes([6, 198, 18, 1, 10]) + struct.pack(">H", 7000)
    seed = zlib.crc32(bytes([0xFA, 0x2D, 0x55, 0xCA]))
    assert struct.unpack(">I", raw[15:])[0] == zlib.crc32(raw[:15], seed)


def _message(certs: list[bytes], tls13: bool, context: bytes = b"") -> bytes:
    def u24(n: int) -> bytes:
        return n.to_bytes(3, "big")

    entries = b"".join(u24(len(c)) + c + (b"\x00\x00" if tls13 else b"") for c in certs)
    body = (bytes([len(context)]) + context if tls13 else b"") + u24(len(entries)) + entries
    return bytes([11]) + u24(len(body)) + body


@given(
    certs=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=4),
    tls13=st.booleans(),
)
def test_the_certificate_message_of_either_version_gives_its_certificates(certs, tls13):
    assert tls_facts.certificates(_message(certs, tls13)) == certs


@given(st.binary(max_size=300))
def test_any_bytes_as_a_certificate_message_give_a_list_and_no_exception(data):
    out = tls_facts.certificates(data)
    assert isinstance(out, list) and sum(map(len, out)) <= len(data)


# ---------------------------------------------------------------- client TLS on 9142

CQL_SUPPORTED = bytes([0x84, 0, 0, 0, 0x06, 0, 0, 0, 0])  # a response frame: SUPPORTED


def test_client_tls_is_reported_with_its_own_codes_and_client_certificates_are_not_judged():
    """9142 with a certificate from the clients' CA and no client certificate asked: the
    client family's verified finding, saying how many nodes ask clients for one."""
    codes, row = diagnosed(look(server_context(client_auth=False), client_port=True))
    assert codes == [("CLIENT_TLS_VERIFIED", "info")]
    assert (row.port, row.handshake, row.chain_verified) == (9142, True, True)
    assert (row.client_auth_required, row.plaintext_accepted) == (False, False)
    (f,) = tls_findings((row,), TOPOLOGY)
    assert "client TLS on 1 node ports" in f.summary
    assert "client certificate required on 0 of 1" in f.summary and "--client-ca-file" in f.hint


@pytest.mark.parametrize(
    ("ctx", "answer", "code"),
    [
        (lambda: server_context(expired=True), b"", "CLIENT_TLS_CERT_EXPIRED"),
        (lambda: server_context(LabCA.generate("another CA")), b"", "CLIENT_TLS_UNTRUSTED"),
        (lambda: None, CQL_SUPPORTED, "CLIENT_TLS_OFF"),
    ],
)
def test_each_client_tls_fault_gives_its_client_finding(ctx, answer, code):
    codes, _ = diagnosed(look(ctx(), answer=answer, client_port=True))
    assert [c for c, _ in codes] == [code], codes


def test_a_node_that_refuses_9142_serves_no_client_tls_and_gives_no_row():
    async def go() -> ProbeResult:
        t = Target(address=CLIENT_HOST, port=9142, kind=ProbeKind.TLS_FACTS)
        r = await tls_facts.probe(StreamDialer(), t, 2.0, 0)
        return ProbeResult(src="db-b", dst="db-a", port=9142, kind=r.kind, outcome=r.outcome)

    refused = asyncio.run(go())
    assert refused.outcome.value == "refused"
    assert tls_rows((refused,), NOW) == ()


def test_the_plaintext_answer_is_read_per_protocol():
    """A TLS alert is never a plaintext answer; on 9142 only a CQL response frame is."""
    alert = bytes([21, 3, 3, 0, 2, 2, 40])
    assert not tls_facts.plaintext_answer(7000, alert)
    assert not tls_facts.plaintext_answer(9142, alert + b"\0\0")
    assert tls_facts.plaintext_answer(9142, CQL_SUPPORTED)
    assert not tls_facts.plaintext_answer(9142, b"\x04" + CQL_SUPPORTED[1:])  # a request
    assert tls_facts.plaintext_answer(7000, b"\x00\x00\x00\x0d")


@given(st.integers(min_value=1, max_value=65535), st.binary(max_size=64))
def test_any_answer_to_the_plaintext_hello_is_read_without_an_exception(port, data):
    assert isinstance(tls_facts.plaintext_answer(port, data), bool)
