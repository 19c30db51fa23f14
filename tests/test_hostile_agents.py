"""Hostile requests to the agent and nonsense answers from agents: bounded, named, never a pass.

The nonsense agents below are real HTTP servers on loopback that answer what a broken or hostile
agent could; they are not fakes of the agent (the real one is started where it is the subject).
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from netcheck.agent.process import AgentConfig, read_token, run_agent
from netcheck.agent.server import AgentLimits
from netcheck.agent.transport import HttpAgentTransport, ProbeBatch
from netcheck.collector.run import collect
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeSpec, Target
from netcheck.model.topology import Cluster, Endpoint, PortSpec, Topology
from tests.conftest import free_ports
from tests.helpers import GOOD_RESULT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def agent(token_file, no_leftover_tasks):
    (api,) = free_ports(1)
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        token_file=token_file,
        allow=("127.0.0.0/8",),
        limits=AgentLimits(max_batch=50, rate=1000, concurrency=8, head_timeout_s=1.0),
        name="hostile-test",
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await asyncio.wait_for(ready.wait(), 20)
    yield {"port": api, "url": f"http://127.0.0.1:{api}", "token": read_token(token_file)}
    stop.set()
    await task


async def post(agent, body: bytes, headers=None):
    h = {"Authorization": f"Bearer {agent['token']}", **(headers or {})}
    async with (
        aiohttp.ClientSession() as s,
        s.post(agent["url"] + "/v1/probe", data=body, headers=h) as r,
    ):
        return r.status, await r.text()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b'{"targets": [], "timeout_s": NaN}', "positive"),
        (b'{"targets": [], "timeout_s": Infinity}', "positive"),
        (b'{"targets": [], "timeout_s": -1}', "positive"),
        (b'{"targets": [], "timeout_s": 0}', "positive"),
        (b"[" * 100_000 + b"]" * 100_000, "nested"),
        (b'{"targets": [{"address": "127.0.0.1", "port": 1, "kind": ["tcp"]}]}', "kind"),
    ],
)
async def test_agent_rejects_hostile_probe_requests_with_400(agent, body, words):
    status, text = await asyncio.wait_for(post(agent, body), 10)
    assert status == 400, text
    assert words in json.loads(text)["error"]


async def closed(writer: asyncio.StreamWriter) -> None:
    """Close our side and give the agent's handler a moment to see it."""
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    await asyncio.sleep(0.1)


async def raw_exchange(port: int, data: bytes, wait: float) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        out = b""
        async with asyncio.timeout(wait):
            while chunk := await reader.read(65536):
                out += chunk
        return out
    finally:
        await closed(writer)


async def test_non_ascii_authorization_is_a_401_not_a_traceback(agent, caplog):
    request = (
        b"GET /v1/info HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\xc3\r\n"
        b"Connection: close\r\n\r\n"
    )
    answer = await raw_exchange(agent["port"], request, 5)
    assert answer.startswith(b"HTTP/1.1 401"), answer[:100]
    assert "Traceback" not in caplog.text and "Error handling request" not in caplog.text


async def test_no_100_continue_before_the_token_is_checked(agent):
    head = (
        b"POST /v1/probe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\n"
        b"Expect: 100-continue\r\nContent-Length: 20\r\nContent-Type: application/json\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", agent["port"])
    try:
        writer.write(head)
        await writer.drain()
        first = await asyncio.wait_for(reader.readline(), 5)
    finally:
        await closed(writer)
    assert first.startswith(b"HTTP/1.1 401"), first


async def test_a_valid_token_still_gets_100_continue(agent):
    body = b'{"targets": []}'
    head = (
        f"POST /v1/probe HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent['token']}\r\n"
        f"Expect: 100-continue\r\nContent-Length: {len(body)}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", agent["port"])
    try:
        writer.write(head)
        await writer.drain()
        first = await asyncio.wait_for(reader.readline(), 5)
        assert first.startswith(b"HTTP/1.1 100"), first
        writer.write(body)
        rest = await asyncio.wait_for(reader.read(), 5)
    finally:
        await closed(writer)
    assert b"200 OK" in rest and b'"results": []' in rest


async def test_a_connection_that_trickles_its_head_is_closed(agent):
    """Slowloris: a byte now and then, the head never finished. The agent closes it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", agent["port"])
    loop = asyncio.get_running_loop()
    started = loop.time()
    closed_after = None
    try:
        writer.write(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n")
        for _ in range(40):  # 40 x 0.1 s, far past the 1 s head timeout
            await asyncio.sleep(0.1)
            if reader.at_eof():
                closed_after = loop.time() - started
                break
            try:
                writer.write(b"X-A: b\r\n")
                await writer.drain()
            except ConnectionError:
                closed_after = loop.time() - started
                break
            # a pending EOF shows once read is attempted
            try:
                data = await asyncio.wait_for(reader.read(1), 0.01)
                if data == b"":
                    closed_after = loop.time() - started
                    break
            except TimeoutError:
                pass
    finally:
        await closed(writer)
    assert closed_after is not None, "the agent kept a trickling connection open for 4 s"
    assert closed_after < 3.0


# --- the collector against agents that answer nonsense ------------------------------------


def one_agent_topology(agent_url: str) -> Topology:
    eps = (
        Endpoint(
            name="a",
            cluster="C",
            region="r",
            address="127.0.0.1",
            agent=agent_url,
            ports=(PortSpec.default(7000),),
        ),
        Endpoint(
            name="b", cluster="C", region="r", address="127.0.0.2", ports=(PortSpec.default(7000),)
        ),
    )
    return Topology(clusters=(Cluster(name="C", region="r", pod_cidrs=()),), endpoints=eps)


async def nonsense_agent(info: object, probe: object) -> tuple[web.AppRunner, str]:
    """An HTTP server that answers the agent API's paths with the given documents."""

    async def info_h(_: web.Request) -> web.Response:
        return web.Response(text=info if isinstance(info, str) else json.dumps(info))

    async def probe_h(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text=probe if isinstance(probe, str) else json.dumps(probe))

    return await _serving(info_h, probe_h)


async def _serving(info: Handler, probe: Handler) -> tuple[web.AppRunner, str]:
    """An HTTP server on loopback answering the agent API's paths with these handlers."""
    app = web.Application()
    app.router.add_get("/v1/info", info)
    app.router.add_post("/v1/probe", probe)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    (port,) = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def info_doc(**limits: object) -> dict[str, object]:
    base: dict[str, object] = {"max_batch": 10, "rate": 100, "concurrency": 4}
    base.update(limits)
    return {"agent": "netcheck", "name": "x", "version": "0", "limits": base}


@pytest.mark.parametrize(
    ("info", "probe"),
    [
        (info_doc(max_batch=-1), {"results": [GOOD_RESULT]}),
        (info_doc(max_batch=0), {"results": [GOOD_RESULT]}),
        (
            '{"agent": "netcheck", "limits": {"max_batch": Infinity, "rate": 1, "concurrency": 1}}',
            {"results": [GOOD_RESULT]},
        ),
        (info_doc(rate=float("nan")), {"results": [GOOD_RESULT]}),
        (info_doc(concurrency="many"), {"results": [GOOD_RESULT]}),
        (info_doc(), {"results": [{**GOOD_RESULT, "outcome": ["open"]}]}),
        (info_doc(), {"results": [{**GOOD_RESULT, "kind": ["tcp"]}]}),
        (info_doc(), {"results": [{**GOOD_RESULT, "detail": ["x"]}]}),
        (info_doc(), {"results": [{**GOOD_RESULT, "local_address": ["x"]}]}),
        (info_doc(), {"results": [{**GOOD_RESULT, "latency_ms": "fast"}]}),
        (
            info_doc(),
            '{"results": [{"address": "127.0.0.2", "port": 7000, "kind": "tcp", '
            '"outcome": "open", "latency_ms": NaN}]}',
        ),
        (info_doc(), {"results": []}),
        (info_doc(), {"results": [GOOD_RESULT, GOOD_RESULT]}),
        (info_doc(), "[" * 50_000),
        (info_doc(), {"results": "all open"}),
    ],
)
async def test_a_nonsense_agent_makes_its_probes_not_measured(info, probe, no_leftover_tasks):
    runner, url = await nonsense_agent(info, probe)
    try:
        topo = one_agent_topology(url)
        plan = [ProbeSpec(src="a", dst="b", port=7000, kind=ProbeKind.TCP)]
        async with HttpAgentTransport("t" * 32) as transport:
            got = await asyncio.wait_for(
                collect(topo, plan, transport, timeout_s=1.0, payload_bytes=0), 20
            )
    finally:
        await runner.cleanup()
    assert len(got.results) == 1, "a planned probe vanished"
    assert got.results[0].outcome is Outcome.NOT_MEASURED
    assert len(got.problems) == 1
    message = got.problems[0].message
    assert url in message and "\n" not in message


async def test_a_port_that_answers_a_bogus_echo_costs_one_probe_not_the_batch(agent):
    """Whatever listens on a probed port may lie about the address it saw: that probe is an
    error, and the agent's other results still reach the collector."""

    async def liar(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        size = int(line.split()[1])
        writer.write(b"NETCHECK-ECHO %d not-an-ip 1\n" % size)
        writer.write(await reader.readexactly(size))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(liar, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with HttpAgentTransport(agent["token"]) as t:
            info = await t.info(agent["url"])
            batch = ProbeBatch(
                targets=(
                    Target(address="127.0.0.1", port=port, echo=True),
                    Target(address="127.0.0.1", port=agent["port"]),
                ),
                timeout_s=2.0,
                payload_bytes=64,
            )
            lied, fine = await t.probe(agent["url"], batch, info)
    finally:
        server.close()
        await server.wait_closed()
    assert lied.outcome is Outcome.ERROR and lied.observed_source == ""
    assert fine.outcome is Outcome.OPEN


async def _agent_answering(probe: Handler) -> tuple[web.AppRunner, str]:
    """An HTTP server on loopback with a sane info and this handler for batches."""

    async def info_h(_: web.Request) -> web.Response:
        return web.json_response(info_doc())

    return await _serving(info_h, probe)


async def test_an_agent_that_answers_without_end_is_cut_off_at_the_bound(no_leftover_tasks):
    """A probe answer that never ends (or a declared gigabyte): the collector stops reading at
    the batch's bound (transport.answer_max_bytes), the probes are not measured, and the
    problem is one line; the agent got no further than the bound."""
    sent = {"bytes": 0}

    async def endless(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse()
        await resp.prepare(request)
        chunk = b" " * (1 << 20)
        with contextlib.suppress(ConnectionError):
            for _ in range(512):  # 512 MiB at most: the test's own bound
                await resp.write(chunk)
                sent["bytes"] += len(chunk)
        return resp

    async def declared(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"{}", headers={"Content-Length": str(1 << 30)})

    for handler in (endless, declared):
        runner, url = await _agent_answering(handler)
        try:
            plan = [ProbeSpec(src="a", dst="b", port=7000, kind=ProbeKind.TCP)]
            async with HttpAgentTransport("t" * 32) as transport:
                got = await asyncio.wait_for(
                    collect(one_agent_topology(url), plan, transport, timeout_s=1.0,
                            payload_bytes=0),
                    60,
                )  # fmt: skip
        finally:
            await runner.cleanup()
        assert [r.outcome for r in got.results] == [Outcome.NOT_MEASURED]
        (problem,) = got.problems
        assert "more than 1 MiB" in problem.message and "\n" not in problem.message
    # one target's bound is 1 MiB and 64 KiB; the socket buffers hold a few MiB more
    assert sent["bytes"] < 16 << 20


async def test_a_call_waiting_for_a_connection_does_not_time_out_meanwhile(no_leftover_tasks):
    """More agents than connections: an agent's info waits for a connection behind another
    agent's slow batch, and its timeout counts from when it has one (else a thousand agents
    time out their own infos behind the first batches)."""

    async def slow(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(1.5)
        return web.json_response({"results": [GOOD_RESULT]})

    runner, url = await _agent_answering(slow)
    try:
        async with HttpAgentTransport("t" * 32, connections=1) as transport:
            transport.info_timeout_s = 1.0
            info = await transport.info(url)
            batch = ProbeBatch(
                targets=(Target(address="127.0.0.2", port=7000),), timeout_s=1, payload_bytes=0
            )
            slow_batch = asyncio.create_task(transport.probe(url, batch, info))
            await asyncio.sleep(0.2)  # the batch holds the only connection
            again = await transport.info(url)  # waits 1.3 s, then answers at once
            assert again.max_batch == info.max_batch
            assert [r.outcome for r in await slow_batch] == [Outcome.OPEN]
    finally:
        await runner.cleanup()
