"""The node reads: each database pod's own agent asks that node about itself.

The agent next to the node logs in on its native port (9042) with its own credentials and reads
system.local and system.peers_v2, and asks the Management API on 8080 (where one runs) for its
readiness and its gossip view of every endpoint. The path is local: what comes back is the
node's own view, not a network measurement.
"""

from __future__ import annotations

import dataclasses

from netcheck.model.gossip import MGMT_API_PORT, NATIVE_PORT, Observation, ReadFailure
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.topology import Role, Topology

READ_TIMEOUT_S = 5.0  # a CQL login hashes the password (bcrypt): slower than a connect


def plan_cql(topology: Topology) -> list[ProbeSpec]:
    return _plan(topology, NATIVE_PORT, ProbeKind.CQL)


def plan_mgmt(topology: Topology) -> list[ProbeSpec]:
    """Pods that declare 8080 (cass-operator's pods do: the Management API)."""
    declared = {
        ep.name for ep in topology.endpoints if any(p.port == MGMT_API_PORT for p in ep.ports)
    }
    return [s for s in _plan(topology, MGMT_API_PORT, ProbeKind.MGMT) if s.dst in declared]


def _plan(topology: Topology, port: int, kind: ProbeKind) -> list[ProbeSpec]:
    """Each database pod with an agent on its node, asked by that agent."""
    return [
        ProbeSpec(src=ep.name, dst=ep.name, port=port, kind=kind)
        for ep in topology.endpoints
        if ep.role is Role.DATABASE and ep.has_agent
    ]


def attach(
    observations: tuple[Observation, ...], results: tuple[ProbeResult, ...], topology: Topology
) -> tuple[Observation, ...]:
    """Each node's CQL and Management API reads (or why there are none) on its observation; a
    node nodetool did not reach still gets one."""
    by_node: dict[str, list[ProbeResult]] = {}
    for r in results:
        if r.kind in (ProbeKind.CQL, ProbeKind.MGMT):
            by_node.setdefault(r.dst, []).append(r)
    out = []
    for obs in observations:
        out.append(_with(obs, by_node.pop(obs.observer, [])))
    for name, rs in by_node.items():
        ep = topology.endpoint(name)
        out.append(_with(Observation(observer=name, observer_address=ep.address), rs))
    return tuple(out)


def _with(obs: Observation, results: list[ProbeResult]) -> Observation:
    for r in results:
        failure = ReadFailure(outcome=r.outcome, detail=r.detail or r.outcome.value)
        if r.kind is ProbeKind.CQL:
            ok = r.outcome is Outcome.OPEN and r.evidence.cql is not None
            obs = dataclasses.replace(
                obs, cql=r.evidence.cql if ok else None, cql_failure=None if ok else failure
            )
        else:
            ok = r.outcome is Outcome.OPEN and r.evidence.mgmt is not None
            obs = dataclasses.replace(
                obs, mgmt=r.evidence.mgmt if ok else None, mgmt_failure=None if ok else failure
            )
    return obs
