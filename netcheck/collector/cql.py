"""The CQL pass: each database pod's own agent reads that node's system tables.

The agent next to the node logs in on its native port (9042) with its own credentials, so the
path is local: what comes back is the node's membership view (system.local and
system.peers_v2), not a network measurement.
"""

from __future__ import annotations

import dataclasses

from netcheck.model.gossip import NATIVE_PORT, CqlFailure, Observation
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.topology import Role, Topology

CQL_TIMEOUT_S = 5.0  # a login hashes the password (bcrypt): slower than a connect


def plan_cql(topology: Topology) -> list[ProbeSpec]:
    return [
        ProbeSpec(src=ep.name, dst=ep.name, port=NATIVE_PORT, kind=ProbeKind.CQL)
        for ep in topology.endpoints
        if ep.role is Role.DATABASE and ep.has_agent
    ]


def attach(
    observations: tuple[Observation, ...], results: tuple[ProbeResult, ...], topology: Topology
) -> tuple[Observation, ...]:
    """Each node's CQL view (or why there is none) on its observation; a node nodetool did not
    reach still gets one."""
    by_node = {r.dst: r for r in results if r.kind is ProbeKind.CQL}
    out = []
    for obs in observations:
        r = by_node.pop(obs.observer, None)
        out.append(_with(obs, r) if r is not None else obs)
    for name, r in by_node.items():
        ep = topology.endpoint(name)
        out.append(_with(Observation(observer=name, observer_address=ep.address), r))
    return tuple(out)


def _with(obs: Observation, r: ProbeResult) -> Observation:
    if r.outcome is Outcome.OPEN and r.evidence.cql is not None:
        return dataclasses.replace(obs, cql=r.evidence.cql, cql_failure=None)
    failure = CqlFailure(outcome=r.outcome, detail=r.detail or r.outcome.value)
    return dataclasses.replace(obs, cql=None, cql_failure=failure)
