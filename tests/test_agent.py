"""The agent on loopback: real sockets, real TLS, real HTTP."""

import asyncio
import json
import time

import aiohttp
import pytest
from aiohttp import web

from netcheck.agent.listeners import ServeMode, ServeSpec
from netcheck.agent.process import AgentConfig, read_token, run_agent
from netcheck.agent.server import AgentLimits
from netcheck.agent.transport import AgentError, HttpAgentTransport, ProbeBatch
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeResult, Target
from netcheck.model.topology import Endpoint, PortSpec, Topology
from tests.conftest import free_ports


@pytest.fixture
async def agent(token_file, no_leftover_tasks):
    api, tcp, tls, http = free_ports(4)
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        serve_bind="127.0.0.1",
        token_file=token_file,
        serve=(
            ServeSpec(port=tcp, mode=ServeMode.TCP),
            ServeSpec(port=tls, mode=ServeMode.TLS),
            ServeSpec(port=http, mode=ServeMode.HTTP),
        ),
        allow=("127.0.0.0/8",),
        limits=AgentLimits(max_batch=50, rate=1000, concurrency=8),
        name="test-agent",
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await asyncio.wait_for(ready.wait(), 20)
    token = read_token(token_file)
    yield {"url": f"http://127.0.0.1:{api}", "tcp": tcp, "tls": tls, "http": http, "token": token}
    stop.set()
    await task


async def call(agent, method, path, token=None, **kw):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, agent["url"] + path, headers=headers, **kw) as r,
    ):
        return r.status, await r.text()


async def test_api_requires_the_token(agent):
    assert (await call(agent, "GET", "/healthz"))[0] == 200
    assert (await call(agent, "GET", "/v1/info"))[0] == 401
    assert (await call(agent, "GET", "/v1/info", token="x" * 64))[0] == 401
    status, body = await call(agent, "POST", "/v1/probe", token="wrong", json={"targets": []})
    assert status == 401 and "token" in body
    status, body = await call(agent, "GET", "/v1/info", token=agent["token"])
    assert status == 200
    info = json.loads(body)
    assert info["agent"] == "netcheck" and info["allow"] == ["127.0.0.0/8"]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"not json", 400, "malformed"),
        (b'{"targets": "all"}', 400, "list"),
        (b'{"targets": [{"address": "example.com", "port": 1}]}', 400, "not an IP"),
        (b'{"targets": [{"address": "127.0.0.1", "port": 70000}]}', 400, "out of range"),
        (b'{"targets": [{"address": "127.0.0.1", "port": 1, "kind": "udp"}]}', 400, "kind"),
        (b'{"targets": [], "timeout_s": "soon"}', 400, "timeout_s"),
        (b'{"targets": [], "payload_bytes": 99999999}', 400, "payload_bytes"),
        (b"[1, 2, 3]", 400, "object"),
        (b"\xff\xfe", 400, "malformed"),
    ],
)
async def test_malformed_requests_are_refused_and_the_agent_survives(agent, body, status, words):
    got, text = await call(agent, "POST", "/v1/probe", token=agent["token"], data=body)
    assert got == status and words in text
    assert (await call(agent, "GET", "/v1/info", token=agent["token"]))[0] == 200


async def test_batch_size_is_capped(agent):
    targets = [{"address": "127.0.0.1", "port": agent["tcp"]}] * 51
    status, text = await call(
        agent, "POST", "/v1/probe", token=agent["token"], json={"targets": targets}
    )
    assert status == 413 and "limit of 50" in text


async def test_probes_against_served_ports(agent):
    closed = free_ports(1)[0]
    targets = (
        Target(address="127.0.0.1", port=agent["tcp"], kind=ProbeKind.TCP, echo=True),
        Target(address="127.0.0.1", port=agent["tls"], kind=ProbeKind.TLS, echo=True),
        Target(address="127.0.0.1", port=agent["http"], kind=ProbeKind.HTTP, echo=True),
        Target(address="127.0.0.1", port=agent["tls"], kind=ProbeKind.TLS),
        Target(address="127.0.0.1", port=closed, kind=ProbeKind.TCP),
        Target(address="198.18.0.1", port=7000, kind=ProbeKind.TCP),  # outside --allow
        Target(address="127.0.0.1", port=agent["tcp"], kind=ProbeKind.TLS),  # not TLS there
    )
    async with HttpAgentTransport(agent["token"]) as t:
        info = await t.info(agent["url"])
        results = await t.probe(
            agent["url"], ProbeBatch(targets=targets, timeout_s=2, payload_bytes=65536), info
        )
    outcomes = [r.outcome for r in results]
    assert outcomes == [
        Outcome.OPEN,
        Outcome.OPEN,
        Outcome.OPEN,
        Outcome.OPEN,
        Outcome.REFUSED,
        Outcome.NOT_MEASURED,
        Outcome.TLS_FAILED,
    ]
    assert all(r.observed_source == "127.0.0.1" for r in results[:3])
    assert "65536-byte echo crossed" in results[0].detail
    assert "TLS handshake ok" in results[1].detail
    assert "outside its --allow" in results[5].detail
    assert results[0].latency_ms is not None and results[0].latency_ms >= 0
    _, body = await call(agent, "GET", "/v1/accepted", token=agent["token"])
    seen = {(a["port"], a["peer"]) for a in json.loads(body)["accepted"]}
    assert {(agent["tcp"], "127.0.0.1"), (agent["http"], "127.0.0.1")} <= seen


async def test_served_ports_survive_garbage(agent):
    for payload in (b"GET / HTTP/1.0\r\n\r\n", b"NETCHECK-ECHO 99999999999\n", b"x" * 5000):
        reader, writer = await asyncio.open_connection("127.0.0.1", agent["tcp"])
        writer.write(payload)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 5) == b""  # it hangs up, politely
        writer.close()
        await writer.wait_closed()
    async with HttpAgentTransport(agent["token"]) as t:
        info = await t.info(agent["url"])
        (r,) = await t.probe(
            agent["url"],
            ProbeBatch(
                targets=(Target(address="127.0.0.1", port=agent["tcp"], echo=True),),
                timeout_s=2,
                payload_bytes=100,
            ),
            info,
        )
    assert r.outcome is Outcome.OPEN


async def test_rate_is_bounded(token_file, no_leftover_tasks):
    api, tcp = free_ports(2)
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        serve_bind="127.0.0.1",
        token_file=token_file,
        serve=(ServeSpec(port=tcp, mode=ServeMode.TCP),),
        allow=("127.0.0.1/32",),
        limits=AgentLimits(rate=20, concurrency=5),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await ready.wait()
    url = f"http://127.0.0.1:{api}"
    try:
        async with HttpAgentTransport(read_token(token_file)) as t:
            info = await t.info(url)
            batch = ProbeBatch(
                targets=(Target(address="127.0.0.1", port=tcp),) * 30, timeout_s=1, payload_bytes=0
            )
            started = time.monotonic()
            first = asyncio.create_task(t.probe(url, batch, info))
            await asyncio.sleep(0.2)
            with pytest.raises(AgentError, match="429"):
                await t.probe(url, batch, info)  # one batch at a time
            results = await first
            elapsed = time.monotonic() - started
    finally:
        stop.set()
        await task
    assert all(r.outcome is Outcome.OPEN for r in results)
    # burst of 5, then 20 per second: 25 more probes need at least 1.25 s
    assert elapsed >= 1.2


async def test_transport_errors_are_one_line(token_file, no_leftover_tasks):
    (closed,) = free_ports(1)
    async with HttpAgentTransport("t" * 32, connect_timeout=1) as t:
        with pytest.raises(AgentError, match="unreachable") as err:
            await t.info(f"http://127.0.0.1:{closed}")
        assert "\n" not in str(err.value)

    async def nonsense(request):
        if request.path == "/v1/info":
            return web.json_response(
                {"agent": "netcheck", "limits": {"max_batch": 5, "rate": 1, "concurrency": 1}}
            )
        return web.json_response({"results": [{"address": "127.0.0.1", "outcome": "great"}]})

    async def html(_):
        return web.Response(text="<html>hello</html>")

    for handler, words in ((nonsense, "nonsense"), (html, "not JSON")):
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        (port,) = free_ports(1)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with HttpAgentTransport("t" * 32) as t:
                url = f"http://127.0.0.1:{port}"
                with pytest.raises(AgentError, match=words):
                    info = await t.info(url)
                    await t.probe(
                        url,
                        ProbeBatch(
                            targets=(Target(address="127.0.0.1", port=1),),
                            timeout_s=1,
                            payload_bytes=0,
                        ),
                        info,
                    )
        finally:
            await runner.cleanup()


async def test_a_stand_in_port_another_process_holds_is_left_to_it(
    token_file, no_leftover_tasks, capsys
):
    """A hostNetwork agent on a node whose Cassandra already listens on 7000: the agent starts,
    leaves that port to Cassandra, says so, and /v1/info lists only what it stands in for.
    The API port taken is still fatal."""
    import socket

    from netcheck.agent.process import AgentConfigError

    api, held, free = free_ports(3)
    holder = socket.socket()
    holder.bind(("127.0.0.1", held))
    holder.listen()
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        serve_bind="127.0.0.1",
        token_file=token_file,
        serve=(ServeSpec(port=held, mode=ServeMode.TCP), ServeSpec(port=free, mode=ServeMode.TCP)),
        allow=("127.0.0.1/32",),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        status, body = await call(
            {"url": f"http://127.0.0.1:{api}"}, "GET", "/v1/info", read_token(token_file)
        )
        assert status == 200
        assert json.loads(body)["serving"] == [{"port": free, "mode": "tcp"}]
        assert f"port {held} is already in use" in capsys.readouterr().err
    finally:
        stop.set()
        await task
    taken = AgentConfig(
        bind="127.0.0.1", api_port=held, serve_bind="127.0.0.1", token_file=token_file
    )
    with pytest.raises(AgentConfigError, match="cannot listen"):
        await run_agent(taken, asyncio.Event())
    holder.close()


@pytest.mark.parametrize(("slow_answers", "outcome"), [(1, Outcome.OPEN), (5, Outcome.STALLED)])
async def test_a_stalled_exchange_is_asked_again_before_it_counts(agent, slow_answers, outcome):
    """A real HTTP server that answers its first requests too late: one slow answer is asked
    again and passes, saying it stalled before; a stall that repeats on all three asks stays
    a stall (workflows/probing.py: ask_again)."""
    from netcheck.model.probe import ProbeSpec
    from netcheck.workflows.feedback import Feedback
    from netcheck.workflows.probing import probe_all

    (port,) = free_ports(1)
    asked = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal asked
        asked += 1
        if asked <= slow_answers:
            await asyncio.sleep(1.5)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/{tail:.*}", slow)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    topology = _agent_and_loopback(agent["url"], port, ProbeKind.HTTP)
    spec = ProbeSpec(src="a", dst="b", port=port, kind=ProbeKind.HTTP)
    try:
        async with HttpAgentTransport(agent["token"]) as transport:
            probed = await probe_all(topology, [spec], transport, 0.5, 0, Feedback(), None)
    finally:
        await runner.cleanup()
    (r,) = probed.results
    assert r.outcome is outcome, r
    if outcome is Outcome.OPEN:
        assert asked == 2 and "stalled 1 time(s) before" in r.detail
    else:
        assert asked == 3 and "did not finish" in r.detail


async def test_a_timeout_the_raw_syn_contradicts_is_settled_by_an_answer_that_agrees(agent):
    """A connect that timed out while the raw SYN beside it got a RST (a fault that went away
    mid-run) is asked again through a real agent: the refusal it now gets agrees with the raw
    SYN and replaces the timeout; where only a pass would settle it, the timeout stays."""
    from netcheck.model.probe import ProbeSpec
    from netcheck.workflows.probing import ask_again

    (closed,) = free_ports(1)  # nothing listens on it: the kernel answers RST
    topology = _agent_and_loopback(agent["url"], closed, ProbeKind.TCP)
    spec = ProbeSpec(src="a", dst="b", port=closed, kind=ProbeKind.TCP)
    timed_out = ProbeResult(
        src="a", dst="b", port=closed, kind=ProbeKind.TCP, outcome=Outcome.TIMEOUT
    )

    def doubtful(r: ProbeResult) -> bool:
        return r.outcome is Outcome.TIMEOUT

    async with HttpAgentTransport(agent["token"]) as transport:
        (settled,) = await ask_again(
            topology,
            [spec],
            transport,
            (timed_out,),
            1.0,
            0,
            doubtful,
            "timed out",
            settles=lambda r: r.outcome is Outcome.REFUSED,
        )
        (kept,) = await ask_again(
            topology, [spec], transport, (timed_out,), 1.0, 0, doubtful, "timed out"
        )
    assert settled.outcome is Outcome.REFUSED
    assert "timed out 1 time(s) before" in settled.detail
    assert kept == timed_out


def _agent_and_loopback(agent_url: str, port: int, kind: ProbeKind) -> Topology:
    """Endpoint a (the agent) and b (a port on loopback) for the workflow-level tests."""
    return Topology(
        clusters=(),
        endpoints=(
            Endpoint(name="a", cluster="C", region="r", address="127.0.0.1", agent=agent_url),
            Endpoint(
                name="b",
                cluster="C",
                region="r",
                address="127.0.0.1",
                ports=(PortSpec(port=port, kind=kind),),
            ),
        ),
    )


@pytest.mark.parametrize(
    ("raw", "again", "settles"),
    [
        (Outcome.OPEN, Outcome.OPEN, True),
        (Outcome.OPEN, Outcome.NAT, True),
        # the SYN-ACK said open; the connect asked again opened and then stalled: an MTU black
        # hole on the path (as in the lab's WAN MTU scenario), not the timeout it first was
        (Outcome.OPEN, Outcome.STALLED, True),
        (Outcome.OPEN, Outcome.TIMEOUT, False),
        (Outcome.OPEN, Outcome.REFUSED, False),
        (Outcome.REFUSED, Outcome.REFUSED, True),
        (Outcome.REFUSED, Outcome.STALLED, False),
        (None, Outcome.OPEN, False),
    ],
)
def test_a_timeout_asked_again_settles_only_with_what_the_raw_syn_said(raw, again, settles):
    from netcheck.workflows.probing import agrees_with_raw

    r = ProbeResult(src="a", dst="b", port=8080, kind=ProbeKind.HTTP, outcome=again)
    assert agrees_with_raw(raw, r) is settles
