"""CQL reads: the agent's cql probe and its limits, the wire, and the checks on system tables.

The reads against real Cassandra are in test_lab_cassandra.py; here the agent runs on loopback
and the checks get system tables shaped like the lab's real ones.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from netcheck.agent.process import (
    AgentConfig,
    AgentConfigError,
    cql_credentials,
    read_token,
    run_agent,
)
from netcheck.agent.server import AgentLimits
from netcheck.agent.transport import HttpAgentTransport, ProbeBatch
from netcheck.agent.wire import WireError, evidence_from_json, evidence_to_json
from netcheck.diagnosis.cql import cql_findings
from netcheck.model.evidence import CQL_LOGIN_REFUSED, CqlNode, CqlView
from netcheck.model.gossip import Observation, ReadFailure, StatusRow
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, ProbeKind, Target
from netcheck.model.topology import Cluster, Endpoint, Role, Topology
from tests.conftest import free_ports

PODS = {
    "east-0": ("198.18.1.10", "dc1", "r1"),
    "east-1": ("198.18.2.10", "dc1", "r2"),
    "west-0": ("198.18.33.10", "dc2", "r1"),
    "west-1": ("198.18.34.10", "dc2", "r2"),
}


def topology() -> Topology:
    return Topology(
        clusters=(Cluster(name="CP_EAST", region="east"), Cluster(name="DP_WEST", region="west")),
        endpoints=tuple(
            Endpoint(
                name=name,
                cluster="CP_EAST" if name.startswith("east") else "DP_WEST",
                region="",
                address=a,
                datacenter=dc,
                rack=rack,
                role=Role.DATABASE,
            )
            for name, (a, dc, rack) in PODS.items()
        ),
    )


def node(name: str, **kw: str) -> CqlNode:
    a, dc, rack = PODS[name]
    return (
        CqlNode(
            address=a,
            datacenter=dc,
            rack=rack,
            host_id=f"id-{name}",
            release_version="5.0.8",
            schema_version="s1",
        )
        if not kw
        else dataclasses.replace(node(name), **kw)
    )


def view(name: str, peers: list[CqlNode] | None = None, cluster: str = "demo") -> Observation:
    others = [node(o) for o in PODS if o != name] if peers is None else peers
    return Observation(
        observer=name,
        observer_address=PODS[name][0],
        cql=CqlView(
            cluster_name=cluster,
            local=node(name),
            peers=tuple(others),
            peers_table="system.peers_v2",
        ),
    )


def codes(findings) -> list[str]:
    return sorted(f.code for f in findings)


def test_a_healthy_cluster_has_no_cql_findings():
    assert cql_findings([view(n) for n in PODS], topology()) == []


def test_a_node_missing_from_the_peers_and_a_ghost_peer_are_named():
    ghost = CqlNode(address="198.18.33.99", datacenter="dc2", rack="r1", host_id="old-id")
    elsewhere = CqlNode(address="10.9.9.9", datacenter="dc9", rack="r1", host_id="x")
    obs = [
        view("east-0", [node("east-1"), node("west-0"), ghost, elsewhere]),  # lacks west-1
        view("east-1", [node("east-0"), node("west-0"), node("west-1"), ghost]),
        view("west-0"),
        view("west-1"),
    ]
    found = cql_findings(obs, topology())
    assert codes(found) == ["CQL_GHOST_PEER", "CQL_PEERS_MISSING"]
    missing = next(f for f in found if f.code == "CQL_PEERS_MISSING")
    assert missing.src_scope == "east-0" and missing.dst_scope == "west-1"
    assert "system.peers_v2 lacks west-1" in missing.summary
    g = next(f for f in found if f.code == "CQL_GHOST_PEER")
    # the peer of an unknown DC is a topology question, not a ghost
    assert g.dst_scope == "198.18.33.99" and g.affected_pairs == 2
    assert "nodetool removenode old-id" in g.hint and "east-0, east-1" in g.summary


def test_a_peer_row_not_yet_written_is_not_missing_when_nodetool_lists_the_node():
    # seen on a fresh lab: gossip (nodetool) knew west-1 before system.peers_v2 had its row
    lagging = view("east-0", [node("east-1"), node("west-0")])
    rows = tuple(
        StatusRow(address=a, state="UN", datacenter=dc, rack=rack) for a, dc, rack in PODS.values()
    )
    known = dataclasses.replace(lagging, status=rows)
    assert cql_findings([known, view("east-1"), view("west-0"), view("west-1")], topology()) == []
    unknown = dataclasses.replace(lagging, status=rows[:3])
    found = cql_findings([unknown, view("east-1"), view("west-0"), view("west-1")], topology())
    assert codes(found) == ["CQL_PEERS_MISSING"] and "nodetool does not list" in found[0].summary


def test_different_cluster_names_are_an_error():
    obs = [view("east-0"), view("east-1"), view("west-0", cluster="other"), view("west-1")]
    found = cql_findings(obs, topology())
    assert codes(found) == ["CLUSTER_NAME_MISMATCH"]
    assert "'other' on west-0" in found[0].summary and found[0].severity.value == "error"


def test_failed_reads_group_by_reason():
    def failed(name: str, error: str) -> Observation:
        outcome, _, detail = error.partition(": ")
        failure = ReadFailure(outcome=Outcome(outcome), detail=detail)
        return Observation(observer=name, observer_address=PODS[name][0], cql_failure=failure)

    refused = f"error: {CQL_LOGIN_REFUSED}: Provided username x and/or password are incorrect"
    obs = [
        failed("east-0", refused),
        failed("east-1", refused),
        failed("west-0", "not_measured: the agent has no CQL credentials (mount ...)"),
        failed("west-1", "refused: ECONNREFUSED: Connection refused"),
    ]
    found = {f.code: f for f in cql_findings(obs, topology())}
    assert sorted(found) == ["CQL_LOGIN_REFUSED", "CQL_NOT_CHECKED", "CQL_UNAVAILABLE"]
    assert found["CQL_LOGIN_REFUSED"].affected_pairs == 2
    assert "Provided username x" in found["CQL_LOGIN_REFUSED"].summary
    assert found["CQL_NOT_CHECKED"].severity.value == "info"
    assert found["CQL_UNAVAILABLE"].dst_scope == "west-1"
    assert found["CQL_UNAVAILABLE"].outcome == "refused"


def test_cql_evidence_crosses_the_wire_and_nonsense_does_not():
    obs = view("east-0")
    assert obs.cql is not None
    e = Evidence(cql=obs.cql)
    assert evidence_from_json(evidence_to_json(e), "r") == e
    bad = evidence_to_json(e)
    bad["cql"]["peers"][0]["address"] = "not-an-ip"
    with pytest.raises(WireError, match="not an IP address"):
        evidence_from_json(bad, "r")
    bad = evidence_to_json(e)
    bad["cql"]["peers_table"] = "system.users"
    with pytest.raises(WireError, match="peers_table"):
        evidence_from_json(bad, "r")
    bad = evidence_to_json(e)
    bad["cql"]["peers"] = [bad["cql"]["local"]] * 5000
    with pytest.raises(WireError, match="at most"):
        evidence_from_json(bad, "r")


def test_cql_credentials_come_from_a_secret_directory_or_flags(tmp_path, token_file):
    assert cql_credentials(AgentConfig(token_file=token_file)) is None
    # the Secret is optional: mounted empty (or not at all) there is no login yet, no error
    where = tmp_path / "cql"
    mounted = cql_credentials(AgentConfig(token_file=token_file, cql_credentials_dir=str(where)))
    assert mounted is not None and mounted.read() is None
    where.mkdir()
    assert mounted.read() is None
    # filled later (kubelet updates the volume): the next read sees it, no restart
    (where / "username").write_text("netcheck\n")
    (where / "password").write_text("s3cret\n")
    assert mounted.read() == ("netcheck", "s3cret")
    (where / "password").write_text("rotated\n")
    assert mounted.read() == ("netcheck", "rotated")
    with pytest.raises(AgentConfigError, match="go together"):
        cql_credentials(AgentConfig(token_file=token_file, cql_username="u"))
    flags = AgentConfig(
        token_file=token_file, cql_username="u", cql_password_file=str(where / "password")
    )
    creds = cql_credentials(flags)
    assert creds is not None and creds.read() == ("u", "rotated")


@pytest.mark.parametrize("with_creds", [False, True])
async def test_the_agent_reads_cql_only_on_native_ports_and_only_with_credentials(
    tmp_path, token_file, no_leftover_tasks, with_creds
):
    api, closed = free_ports(2)
    password = tmp_path / "password"
    password.write_text("pw\n")
    config = AgentConfig(
        bind="127.0.0.1",
        api_port=api,
        token_file=token_file,
        allow=("127.0.0.0/8",),
        limits=AgentLimits(rate=1000),
        cql_username="netcheck" if with_creds else None,
        cql_password_file=str(password) if with_creds else None,
    )
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_agent(config, stop, ready))
    await asyncio.wait_for(ready.wait(), 20)
    token = read_token(token_file)
    try:
        async with HttpAgentTransport(token) as transport:
            url = f"http://127.0.0.1:{api}"
            info = await transport.info(url)
            batch = ProbeBatch(
                targets=(
                    Target(address="127.0.0.1", port=closed, kind=ProbeKind.CQL),
                    Target(address="127.0.0.1", port=9042, kind=ProbeKind.CQL),
                    Target(address="198.51.100.7", port=9042, kind=ProbeKind.CQL),
                ),
                timeout_s=1.0,
                payload_bytes=0,
            )
            other_port, native, outside = await transport.probe(url, batch, info)
    finally:
        stop.set()
        await task
    assert other_port.outcome is Outcome.NOT_MEASURED
    assert "CQL only to the native ports" in other_port.detail
    # never a packet outside the allow list, credentials or not
    assert outside.outcome is Outcome.NOT_MEASURED and "--allow" in outside.detail
    if with_creds:  # nothing listens on loopback 9042 here: the connect is refused
        assert native.outcome is Outcome.REFUSED, native
    else:
        assert native.outcome is Outcome.NOT_MEASURED and "no CQL credentials" in native.detail


def test_a_login_lost_to_a_partition_points_at_the_network_not_the_secret():
    """7000 dropped between the regions: the superuser's login needs QUORUM and fails. That is
    the partition's doing; the finding must not send the user to fix Secret netcheck-cql."""
    from netcheck.diagnosis.gossip import merge
    from netcheck.model.findings import Finding, Severity
    from netcheck.model.gossip import GossipAnalysis

    quorum = (
        f"{CQL_LOGIN_REFUSED}: Error from server: code=0100 [Bad credentials] "
        'message="Unable to perform authentication: Cannot achieve consistency level QUORUM"'
    )
    obs = [
        Observation(
            observer=name,
            observer_address=PODS[name][0],
            cql_failure=ReadFailure(outcome=Outcome.ERROR, detail=quorum),
        )
        for name in ("east-0", "west-0")
    ]
    found = cql_findings(obs, topology())
    assert codes(found) == ["CQL_LOGIN_UNAVAILABLE"]
    assert "netcheck-cql" not in found[0].hint and "credentials" in found[0].hint
    drop = Finding(
        severity=Severity.ERROR,
        code="FIREWALL_DROP",
        summary="7000 is dropped silently between every CP_EAST endpoint and every DP_WEST ...",
        src_cluster="CP_EAST",
        dst_cluster="DP_WEST",
        ports=(7000,),
        affected_pairs=8,
        hint="allow tcp/7000",
    )
    analysis = GossipAnalysis(nodes=(), findings=tuple(found), warnings=())
    merged = merge(topology(), (drop,), analysis)
    assert [f.code for f in merged] == ["FIREWALL_DROP", "CQL_LOGIN_UNAVAILABLE"]
    assert merged[1].summary.endswith("caused by FIREWALL_DROP (above)")
