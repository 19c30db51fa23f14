"""Management API reads: the agent's mgmt probe and its limits, the wire, and the checks.

The reads against the lab's nodes are in test_lab_cassandra.py; here the probe asks a server on
loopback that answers like the Management API (its paths, status codes and JSON envelope), and
the checks get endpoint states shaped like the lab's.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from netcheck.agent.process import AgentConfig, read_token, run_agent
from netcheck.agent.server import AgentLimits
from netcheck.agent.transport import HttpAgentTransport, ProbeBatch
from netcheck.agent.wire import WireError, evidence_from_json, evidence_to_json
from netcheck.diagnosis.gossip import analyze
from netcheck.model.evidence import MgmtEndpoint, MgmtView
from netcheck.model.gossip import Observation, ReadFailure, StatusRow, status_row
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, ProbeKind, Target
from netcheck.probes import mgmt
from netcheck.probes.dialer import BadAnswerError, StreamDialer
from tests.conftest import free_ports
from tests.test_cql import PODS, topology

DATA = Path(__file__).parent / "data" / "mgmtapi"
LOOPBACK = "127.77.0.1"  # a loopback address of its own: 8080 may be taken on 127.0.0.1


def healthy_body() -> bytes:
    return (DATA / "lab-endpoints-healthy.json").read_bytes()


def test_the_endpoint_states_read_like_nodetool_status():
    view = mgmt.parse_endpoints(healthy_body())
    assert view.ready and view.cluster_name == "netcheck-lab"
    assert len(view.endpoints) == 4
    by_address = {e.address: e for e in view.endpoints}
    assert sorted(by_address) == sorted(a for a, _, _ in PODS.values())
    assert all(e.alive and e.status == "NORMAL" for e in view.endpoints)
    assert {(e.datacenter, e.rack) for e in view.endpoints} == {
        (dc, rack) for _, dc, rack in PODS.values()
    }
    assert all(e.release_version == "5.0.8" and len(e.host_id) == 36 for e in view.endpoints)
    # as nodetool status would print them
    rows = [status_row(e) for e in view.endpoints]
    assert {r.state for r in rows} == {"UN"}


@pytest.mark.parametrize(
    ("alive", "status", "state"),
    [
        (False, "NORMAL", "DN"),
        (False, "shutdown", "DN"),
        (True, "BOOT", "UJ"),
        (True, "LEAVING", "UL"),
        (True, "MOVING", "UM"),
        (True, "SOMETHING_NEW", "U?"),
    ],
)
def test_alive_and_status_map_to_the_nodetool_state(alive, status, state):
    e = MgmtEndpoint(address="198.18.1.10", alive=alive, status=status)
    assert status_row(e).state == state


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"<html>", "not JSON"),
        (b'[{"ENDPOINT_IP": "198.18.1.10", "IS_ALIVE": "true"}]', "no 'entity' list"),
        (b'{"entity": [17]}', "not an object"),
        (b'{"entity": [{"ENDPOINT_IP": "198.18.1.10"}]}', "lacks IS_ALIVE"),
        (b'{"entity": [{"ENDPOINT_IP": "node-1", "IS_ALIVE": "true"}]}', "not an IP address"),
        (
            json.dumps({"entity": [{"ENDPOINT_IP": "198.18.1.10", "IS_ALIVE": "true"}] * 5000}),
            "more than 4096",
        ),
    ],
)
def test_nonsense_from_the_api_is_a_bad_answer(body, error):
    with pytest.raises(BadAnswerError, match=error):
        mgmt.parse_endpoints(body if isinstance(body, bytes) else body.encode())


def test_mgmt_evidence_crosses_the_wire_and_nonsense_does_not():
    e = Evidence(mgmt=mgmt.parse_endpoints(healthy_body()))
    assert evidence_from_json(evidence_to_json(e), "r") == e
    not_ready = Evidence(mgmt=MgmtView(ready=False, readiness="HTTP 500: closed"))
    assert evidence_from_json(evidence_to_json(not_ready), "r") == not_ready
    bad = evidence_to_json(e)
    bad["mgmt"]["endpoints"][0]["address"] = "not-an-ip"
    with pytest.raises(WireError, match="not an IP address"):
        evidence_from_json(bad, "r")
    bad = evidence_to_json(e)
    bad["mgmt"]["endpoints"][0]["alive"] = "yes"
    with pytest.raises(WireError, match="wrong type"):
        evidence_from_json(bad, "r")
    bad = evidence_to_json(e)
    bad["mgmt"]["endpoints"] = bad["mgmt"]["endpoints"] * 2000
    with pytest.raises(WireError, match="at most"):
        evidence_from_json(bad, "r")


# ---------------------------------------------------------------- the probe on loopback


class FakeApi:
    """Answers like the Management API: liveness, readiness, endpoints; 404 elsewhere."""

    def __init__(self) -> None:
        self.ready = True
        self.endpoints = healthy_body()
        self.paths: list[str] = []

    def app(self) -> web.Application:
        async def any_path(request: web.Request) -> web.Response:
            self.paths.append(request.path)
            if request.path == "/api/v0/probes/liveness":
                return web.Response(text="OK")
            if request.path == "/api/v0/probes/readiness":
                if self.ready:
                    return web.Response(text="OK")
                return web.Response(status=500, text="Internal connection to Cassandra closed")
            if request.path == "/api/v0/metadata/endpoints":
                return web.Response(body=self.endpoints, content_type="application/json")
            return web.Response(status=404)

        app = web.Application()
        app.router.add_get("/{tail:.*}", any_path)
        return app


@pytest.fixture
async def api(no_leftover_tasks):
    fake = FakeApi()
    runner = web.AppRunner(fake.app())
    await runner.setup()
    site = web.TCPSite(runner, LOOPBACK, mgmt.MGMT_API_PORT)
    await site.start()
    yield fake
    await runner.cleanup()


async def ask() -> tuple[Outcome, str, MgmtView | None]:
    r = await mgmt.probe(
        StreamDialer(), Target(address=LOOPBACK, port=8080, kind=ProbeKind.MGMT), 2.0, 0
    )
    return r.outcome, r.detail, r.evidence.mgmt


async def test_the_probe_reads_readiness_then_the_endpoints(api):
    outcome, detail, view = await ask()
    assert outcome is Outcome.OPEN and view is not None and view.ready
    assert len(view.endpoints) == 4 and "ready, 4 endpoints" in detail
    assert api.paths == ["/api/v0/probes/readiness", "/api/v0/metadata/endpoints"]
    # Cassandra down under a live API: a result with its answer, and no endpoint request
    api.ready, api.paths = False, []
    outcome, detail, view = await ask()
    assert outcome is Outcome.OPEN and view is not None and not view.ready
    assert view.readiness == "HTTP 500: Internal connection to Cassandra closed"
    assert api.paths == ["/api/v0/probes/readiness"]
    # an API that answers nonsense: an error that names it
    api.ready, api.endpoints = True, b'{"entity": "four"}'
    outcome, detail, view = await ask()
    assert outcome is Outcome.ERROR and view is None and "no 'entity' list" in detail


async def test_something_else_on_8080_is_not_the_management_api(no_leftover_tasks):
    async def not_found(_: web.Request) -> web.Response:
        return web.Response(status=404)

    app = web.Application()
    app.router.add_get("/{tail:.*}", not_found)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, LOOPBACK, mgmt.MGMT_API_PORT).start()
    try:
        outcome, detail, view = await ask()
    finally:
        await runner.cleanup()
    assert outcome is Outcome.ERROR and view is None
    assert "answered HTTP 404: not the Management API" in detail
    # nothing listens now: refused, like any port
    outcome, _, _ = await ask()
    assert outcome is Outcome.REFUSED


async def test_the_agent_asks_the_api_only_on_8080_and_only_inside_its_allow_list(
    token_file, no_leftover_tasks
):
    (api_port, other) = free_ports(2)
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api_port,
        token_file=token_file,
        allow=("127.0.0.0/8",),
        limits=AgentLimits(rate=1000),
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await asyncio.wait_for(ready.wait(), 20)
    try:
        async with HttpAgentTransport(read_token(token_file)) as transport:
            url = f"http://127.0.0.1:{api_port}"
            info = await transport.info(url)
            batch = ProbeBatch(
                targets=(
                    Target(address=LOOPBACK, port=other, kind=ProbeKind.MGMT),
                    Target(address="198.51.100.7", port=8080, kind=ProbeKind.MGMT),
                    Target(address=LOOPBACK, port=8080, kind=ProbeKind.MGMT),
                ),
                timeout_s=1.0,
                payload_bytes=0,
            )
            other_port, outside, local = await transport.probe(url, batch, info)
    finally:
        stop.set()
        await task
    assert other_port.outcome is Outcome.NOT_MEASURED and "only asked on 8080" in other_port.detail
    assert outside.outcome is Outcome.NOT_MEASURED and "--allow" in outside.detail
    assert local.outcome is Outcome.REFUSED  # nothing listens on it here


# ---------------------------------------------------------------- checks


def api_view(name: str, down: tuple[str, ...] = ()) -> Observation:
    return Observation(
        observer=name,
        observer_address=PODS[name][0],
        mgmt=MgmtView(
            ready=True,
            readiness="OK",
            endpoints=tuple(
                MgmtEndpoint(
                    address=a,
                    alive=other not in down,
                    status="NORMAL",
                    datacenter=dc,
                    rack=rack,
                    host_id=f"id-{other}",
                    schema="s1",
                    release_version="5.0.8",
                )
                for other, (a, dc, rack) in PODS.items()
            ),
        ),
    )


def test_without_nodetool_the_api_gives_every_node_its_view():
    # west-1 is down for everybody; nobody could exec nodetool
    obs = [api_view(n, down=("west-1",)) for n in PODS if n != "west-1"]
    obs.append(
        Observation(
            observer="west-1",
            observer_address=PODS["west-1"][0],
            mgmt=MgmtView(
                ready=False, readiness="HTTP 500: Internal connection to Cassandra closed"
            ),
        )
    )
    analysis = analyze(obs, topology())
    states = {n.name: dict(n.states) for n in analysis.nodes}
    assert states["west-1"] == {"east-0": "DN", "east-1": "DN", "west-0": "DN"}
    assert all(s == "UN" for n, v in states.items() if n != "west-1" for s in v.values())
    assert dict(analysis.view_sources) == {n: "management_api" for n in PODS if n != "west-1"}
    codes = [f.code for f in analysis.findings]
    assert "CASSANDRA_NOT_READY" in codes and "GOSSIP_DOWN" in codes
    not_ready = next(f for f in analysis.findings if f.code == "CASSANDRA_NOT_READY")
    assert not_ready.dst_scope == "west-1" and "Internal connection" in not_ready.summary


def test_nodetool_wins_where_both_answered():
    both = Observation(
        observer="east-0",
        observer_address=PODS["east-0"][0],
        status=tuple(
            StatusRow(address=a, state="UN", datacenter=dc, rack=rack)
            for a, dc, rack in PODS.values()
        ),
        mgmt=api_view("east-0", down=("west-1",)).mgmt,
    )
    assert both.view_source == "nodetool"
    assert {r.state for r in both.status_rows or ()} == {"UN"}


def test_failed_api_reads_group_by_reason():
    refused = ReadFailure(outcome=Outcome.REFUSED, detail="ECONNREFUSED: Connection refused")
    skipped = ReadFailure(outcome=Outcome.NOT_MEASURED, detail="agent not usable: 401")
    obs = [
        Observation(observer=n, observer_address=PODS[n][0], mgmt_failure=f)
        for n, f in (("east-0", refused), ("east-1", refused), ("west-0", skipped))
    ]
    found = {f.code: f for f in analyze(obs, topology()).findings}
    unavailable = found["MGMT_API_UNAVAILABLE"]
    assert unavailable.affected_pairs == 2 and unavailable.outcome == "refused"
    assert "east-0, east-1" in unavailable.summary
    assert found["MGMT_API_NOT_CHECKED"].affected_pairs == 1


def test_7001_closed_by_design_stays_normal_when_one_refusal_came_late():
    """Cassandra 4.0+ does not listen on 7001: refused there is normal. On a loaded host one
    refusal may come too late (the plain connect times out) while the raw SYN beside it gets
    the node's own RST: still closed by design, not a reason to fail every other refusal."""
    from netcheck.diagnosis.gossip import expected_closed
    from netcheck.model.evidence import Reply, ReplyKind
    from netcheck.model.probe import ProbeResult

    obs = [api_view(n) for n in PODS]

    def probes(late: Reply | None) -> tuple[ProbeResult, ...]:
        out = []
        for s in PODS:
            for d in PODS:
                if s == d:
                    continue
                slow = late is not None and (s, d) == ("east-0", "west-0")
                out.append(
                    ProbeResult(
                        src=s,
                        dst=d,
                        port=7001,
                        kind=ProbeKind.TLS,
                        outcome=Outcome.TIMEOUT if slow else Outcome.REFUSED,
                        evidence=Evidence(reply=late) if slow else Evidence(),
                    )
                )
        return tuple(out)

    every = sorted((n, 7001) for n in PODS)
    assert sorted(expected_closed(obs, topology(), probes(None))) == every
    rst = Reply(kind=ReplyKind.RST, source=PODS["west-0"][0], ttl=62)
    assert sorted(expected_closed(obs, topology(), probes(rst))) == every
    # silence, or an RST from somewhere else, is no refusal by the node
    for other in (Reply(kind=ReplyKind.NONE), Reply(kind=ReplyKind.RST, source="198.19.126.2")):
        closed = expected_closed(obs, topology(), probes(other))
        assert ("west-0", 7001) not in closed and ("west-1", 7001) in closed


def test_7001_closed_by_design_holds_when_some_agents_could_not_probe():
    """One cluster's agents unusable (its pod proxy denied): their probes are not measured and
    say nothing either way; the refusals the others measured still show 7001 closed by design
    (found on the lab's real Kubernetes: every 7001 refusal became an error)."""
    from netcheck.diagnosis.gossip import expected_closed
    from netcheck.model.probe import ProbeResult

    obs = [api_view(n) for n in PODS]
    probes = tuple(
        ProbeResult(
            src=s,
            dst=d,
            port=7001,
            kind=ProbeKind.TLS,
            outcome=Outcome.NOT_MEASURED if s.startswith("west") else Outcome.REFUSED,
        )
        for s in PODS
        for d in PODS
        if s != d
    )
    assert sorted(expected_closed(obs, topology(), probes)) == sorted((n, 7001) for n in PODS)
    # nothing measured at all towards a node: no evidence, no exemption
    none = tuple(p for p in probes if p.dst != "east-0" or p.outcome is Outcome.NOT_MEASURED)
    assert ("east-0", 7001) not in expected_closed(obs, topology(), none)
