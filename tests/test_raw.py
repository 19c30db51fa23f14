"""Raw probes: the agent's raw API on loopback, the wire shape of evidence, and the kernel rule
the raw-probes Kubernetes component relies on."""

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from netcheck.agent.listeners import ServeMode, ServeSpec
from netcheck.agent.process import AgentConfig, read_token, run_agent
from netcheck.agent.server import AgentLimits
from netcheck.agent.transport import HttpAgentTransport, ProbeBatch
from netcheck.agent.wire import WireError, result_from_json, result_to_json
from netcheck.model.evidence import Hop, Latency, PathMtu, Reply, ReplyKind, Trace, percentile
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, FollowUp, ProbeKind, Target, TargetResult
from netcheck.probes.dialer import outcome_of_reply
from tests.conftest import free_ports


async def start_agent(token_file, raw: bool):
    api, tcp = free_ports(2)
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        serve_bind="127.0.0.1",
        token_file=token_file,
        serve=(ServeSpec(port=tcp, mode=ServeMode.TCP),),
        allow=("127.0.0.0/8", "::1/128"),
        limits=AgentLimits(max_batch=50, rate=2000, concurrency=16),
        name="raw-agent",
        raw=raw,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await asyncio.wait_for(ready.wait(), 20)
    return f"http://127.0.0.1:{api}", tcp, stop, task


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def probe(url, token, targets, timeout=1.0):
    async with HttpAgentTransport(read_token(token)) as t:
        info = await t.info(url)
        batch = ProbeBatch(targets=tuple(targets), timeout_s=timeout, payload_bytes=0)
        return info, await t.probe(url, batch, info)


async def test_raw_probes_on_loopback(token_file, no_leftover_tasks):
    if os.geteuid() != 0:
        pytest.fail("raw probes need CAP_NET_RAW: run `make test` as root", False)
    url, tcp, stop, task = await start_agent(token_file, raw=True)
    closed = closed_port()
    try:
        info, (syn_open, syn_closed, trace, latency, pmtu, v6) = await probe(
            url,
            token_file,
            [
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.SYN),
                Target(address="127.0.0.1", port=closed, kind=ProbeKind.SYN),
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.TRACE, count=4),
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.LATENCY, count=5),
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.PMTU),
                Target(address="::1", port=tcp, kind=ProbeKind.SYN),
            ],
        )
    finally:
        stop.set()
        await task
    assert info.raw_probes
    assert syn_open.outcome is Outcome.OPEN
    assert syn_open.evidence.reply is not None
    assert syn_open.evidence.reply.kind is ReplyKind.SYN_ACK and syn_open.evidence.reply.ttl == 64
    assert syn_closed.outcome is Outcome.REFUSED and "RST from 127.0.0.1" in syn_closed.detail
    # loopback: the port answers the first TTL, no router in between
    assert trace.outcome is Outcome.OPEN and trace.evidence.trace is not None
    assert [h.reply.kind for h in trace.evidence.trace.hops] == [ReplyKind.SYN_ACK]
    lat = latency.evidence.latency
    assert lat is not None and (lat.sent, lat.received, lat.loss_pct) == (5, 5, 0.0)
    assert lat.p50_ms is not None and lat.p99_ms is not None and 0 <= lat.p50_ms <= lat.p99_ms
    mtu = pmtu.evidence.path_mtu
    assert pmtu.outcome is Outcome.OPEN and mtu is not None
    assert mtu.path_mtu == mtu.local_mtu == 65535 and not mtu.black_hole
    assert v6.outcome is Outcome.NOT_MEASURED and "IPv4 only" in v6.detail


async def test_follow_ups_on_loopback(token_file, no_leftover_tasks):
    """Real raw sockets: a refused port gets its SYN and trace, an open one its latency and
    path MTU, in the same answer as the plain probe."""
    if os.geteuid() != 0:
        pytest.fail("raw probes need CAP_NET_RAW: run `make test` as root", False)
    url, tcp, stop, task = await start_agent(token_file, raw=True)
    follow = FollowUp(
        timeout_s=0.5, trace_hops=4, trace_group="g", latency_count=3, pmtu_group="lo"
    )
    try:
        _, (works, refused) = await probe(
            url,
            token_file,
            [
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.TCP, follow=follow),
                Target(address="127.0.0.1", port=closed_port(), kind=ProbeKind.TCP, follow=follow),
            ],
        )
    finally:
        stop.set()
        await task
    assert works.outcome is Outcome.OPEN
    assert {f.kind: f.outcome for f in works.followed} == {
        ProbeKind.LATENCY: Outcome.OPEN,
        ProbeKind.PMTU: Outcome.OPEN,
    }
    lat = next(f for f in works.followed if f.kind is ProbeKind.LATENCY).evidence.latency
    assert lat is not None and (lat.sent, lat.received) == (3, 3)
    assert refused.outcome is Outcome.REFUSED
    assert {f.kind: f.outcome for f in refused.followed} == {
        ProbeKind.SYN: Outcome.REFUSED,
        ProbeKind.TRACE: Outcome.REFUSED,
    }


async def test_agent_without_raw_says_so_and_skips(token_file, no_leftover_tasks):
    url, tcp, stop, task = await start_agent(token_file, raw=False)
    follow = FollowUp(timeout_s=0.5, trace_hops=4, latency_count=3, pmtu_group="lo")
    try:
        info, (syn, plain) = await probe(
            url,
            token_file,
            [
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.SYN),
                Target(address="127.0.0.1", port=tcp, kind=ProbeKind.TCP, follow=follow),
            ],
        )
    finally:
        stop.set()
        await task
    assert not info.raw_probes
    assert syn.outcome is Outcome.NOT_MEASURED and "CAP_NET_RAW" in syn.detail
    # the plain probes run as before; follow-ups need raw sockets
    assert plain.outcome is Outcome.OPEN and plain.followed == ()


async def test_raw_targets_outside_the_allow_list_are_refused(token_file, no_leftover_tasks):
    url, _, stop, task = await start_agent(token_file, raw=True)
    try:
        _, (r,) = await probe(
            url, token_file, [Target(address="198.51.100.7", port=7000, kind=ProbeKind.TRACE)]
        )
    finally:
        stop.set()
        await task
    assert r.outcome is Outcome.NOT_MEASURED and "--allow" in r.detail


def test_evidence_survives_the_wire():
    trace = Trace(
        hops=(
            Hop(ttl=1, reply=Reply(kind=ReplyKind.TIME_EXCEEDED, source="198.18.16.1", ttl=64)),
            Hop(ttl=2, reply=Reply(kind=ReplyKind.NONE)),
        )
    )
    r = TargetResult(
        address="198.18.33.10",
        port=7000,
        kind=ProbeKind.TRACE,
        outcome=Outcome.FILTERED,
        detail="silent after hop 1",
        evidence=Evidence(
            trace=trace,
            path_mtu=PathMtu(local_mtu=1500, path_mtu=1200, smallest_lost=1201),
            latency=Latency(sent=10, received=9, p50_ms=0.2, p99_ms=1.5),
            reply=Reply(kind=ReplyKind.PROHIBITED, source="198.19.126.2", ttl=63, rtt_ms=0.1),
        ),
    )
    back = result_from_json(result_to_json(r), "results[0]")
    assert back == r
    assert back.evidence.trace is not None and back.evidence.trace.first_silent == 2
    assert back.evidence.path_mtu is not None and back.evidence.path_mtu.black_hole


@pytest.mark.parametrize(
    "evidence, words",
    [
        ({"reply": {"kind": "teapot"}}, "unknown reply kind"),
        ({"reply": {"kind": "rst", "source": "nope", "ttl": 1, "mtu": 0}}, "not an IP address"),
        ({"trace": "x"}, "list of at most"),
        ({"trace": [7]}, "trace[0]: not an object"),
        ({"latency": {"sent": 3, "received": 9}}, "'received' must be an integer from 0 to 3"),
        ({"path_mtu": {"local_mtu": -1}}, "'local_mtu'"),
    ],
)
def test_nonsense_evidence_is_a_one_line_wire_error(evidence, words):
    doc = {
        "address": "198.18.1.10",
        "port": 7000,
        "kind": "syn",
        "outcome": "open",
        "evidence": evidence,
    }
    with pytest.raises(WireError) as err:
        result_from_json(doc, "results[3]")
    assert words in str(err.value) and "results[3].evidence" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "kind, outcome",
    [
        (ReplyKind.SYN_ACK, Outcome.OPEN),
        (ReplyKind.RST, Outcome.REFUSED),
        (ReplyKind.NONE, Outcome.FILTERED),
        (ReplyKind.PROHIBITED, Outcome.PROHIBITED),
        (ReplyKind.PORT_UNREACHABLE, Outcome.PROHIBITED),
        (ReplyKind.HOST_UNREACHABLE, Outcome.UNREACHABLE),
        (ReplyKind.NET_UNREACHABLE, Outcome.UNREACHABLE),
        (ReplyKind.NO_ROUTE, Outcome.UNREACHABLE),
    ],
)
def test_every_reply_maps_to_one_outcome(kind, outcome):
    assert outcome_of_reply(Reply(kind=kind, source="198.18.16.1"))[0] is outcome


def test_trace_reads_where_packets_stop():
    te = ReplyKind.TIME_EXCEEDED
    trace = Trace(
        hops=(
            Hop(ttl=1, reply=Reply(kind=te, source="198.18.16.1")),
            Hop(ttl=2, reply=Reply(kind=te, source="198.19.126.2")),
            Hop(ttl=3, reply=Reply(kind=ReplyKind.NONE)),
            Hop(ttl=4, reply=Reply(kind=ReplyKind.NONE)),
        )
    )
    assert trace.last_answered is not None and trace.last_answered.reply.source == "198.19.126.2"
    assert trace.first_silent == 3 and trace.end is None
    rejected = Trace(hops=(*trace.hops[:2], Hop(ttl=3, reply=Reply(kind=ReplyKind.PROHIBITED))))
    assert rejected.end is not None and rejected.end.ttl == 3 and rejected.first_silent is None
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50) == 3.0
    assert percentile([5.0, 1.0, 3.0, 2.0, 4.0], 99) == 5.0 and percentile([], 50) is None


@pytest.fixture
def shared_dir():
    """A directory the nobody user can traverse (pytest's tmp_path is root's only)."""
    path = tempfile.mkdtemp(prefix="netcheck-test-")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path)


def test_file_capability_needs_privilege_escalation(shared_dir):
    """What the raw-probes component relies on: a non-root process gets NET_RAW from the
    interpreter's file capability only without no_new_privs (allowPrivilegeEscalation)."""
    setcap, setpriv = shutil.which("setcap"), shutil.which("setpriv")
    if os.geteuid() != 0 or not setcap or not setpriv:
        pytest.fail("needs root, setcap and setpriv: run `make test` (make system-deps)", False)
    netraw = shared_dir / "python-netraw"
    shutil.copy2(os.path.realpath(sys.executable), netraw)
    subprocess.run([setcap, "cap_net_raw+ep", str(netraw)], check=True)
    code = "import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)"
    as_nobody = [
        setpriv,
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all,+net_raw",
        "/bin/sh",
        "-c",
    ]
    allowed = subprocess.run(
        [*as_nobody, f'exec "$0" -c "{code}"', str(netraw)], capture_output=True, text=True
    )
    assert allowed.returncode == 0, allowed.stderr
    nnp = subprocess.run(
        [*as_nobody, f'exec {setpriv} --no-new-privs "$0" -c "{code}"', str(netraw)],
        capture_output=True,
        text=True,
    )
    assert nnp.returncode != 0 and "PermissionError" in nnp.stderr


async def test_raw_sockets_keep_only_what_can_answer_a_probe(no_leftover_tasks):
    """Traffic between probes (Cassandra's, the agent's own) must not pile up in the raw sockets:
    answers to a new probe would wait behind it past their timeout (seen as false loss)."""
    if os.geteuid() != 0:
        pytest.skip("raw sockets need root")
    from netcheck.probes.rawnet import RawSockets

    async def send_64k(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"x" * 65536)
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    raw = RawSockets()
    server = await asyncio.start_server(send_64k, "127.0.0.1", 0, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    try:
        for _ in range(20):  # data, ACKs and FINs: 20 connections of 64 KiB
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await reader.readexactly(65536)
            writer.close()
            await writer.wait_closed()
        table = await asyncio.to_thread(Path("/proc/net/raw").read_text)
        rows = [line.split() for line in table.splitlines()[1:]]
        # local_address ends in the protocol (0006: TCP); tx_queue:rx_queue in hex bytes
        tcp_rx = [int(f[4].split(":")[1], 16) for f in rows if f[1].endswith(":0006")]
        # the 20 SYN-ACKs of those connections (about 830 bytes each in the kernel's count)
        # may queue; the 1.3 MB of data and its ACKs may not
        assert tcp_rx and max(tcp_rx) < 65536, f"raw TCP sockets queued {tcp_rx} bytes"
        # what can answer a probe still gets through: a SYN-ACK from the open port
        reply = await raw.syn("127.0.0.1", port, timeout=2.0)
        assert reply.kind.value == "syn_ack"
    finally:
        server.close()
        await server.wait_closed()
        raw.close()
