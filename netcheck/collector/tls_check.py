"""Internode TLS of every database node, looked at once per node and port (probes/tls_facts.py).

After the mesh: each database endpoint's 7000 (where Cassandra 4.0+ speaks TLS when internode
encryption is on) and its 7001 where that connected (the legacy SSL port), probed by another
database endpoint of the same cluster that reached that port in the mesh (so the look leaves
from where Cassandra's own connections leave), else of another cluster. A node no one reached
is not looked at: the mesh says why.
"""

from __future__ import annotations

from netcheck.agent.transport import AgentTransport
from netcheck.collector.run import AgentProblem, collect
from netcheck.model.probe import ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.topology import Role, Topology

INTERNODE_PORTS = (7000, 7001)


def plan_tls(topology: Topology, mesh: tuple[ProbeResult, ...], ca_pem: str) -> list[ProbeSpec]:
    eps = {ep.name: ep for ep in topology.endpoints}
    reached: dict[tuple[str, int], list[str]] = {}
    for r in sorted(mesh, key=lambda r: r.src):
        if r.port in INTERNODE_PORTS and r.outcome.connected:
            reached.setdefault((r.dst, r.port), []).append(r.src)
    plan = []
    for ep in topology.endpoints:
        if ep.role is not Role.DATABASE:
            continue
        for port in INTERNODE_PORTS:
            sources = reached.get((ep.name, port), [])
            same = [s for s in sources if eps[s].cluster == ep.cluster]
            if sources:
                plan.append(
                    ProbeSpec(
                        src=(same or sources)[0],
                        dst=ep.name,
                        port=port,
                        kind=ProbeKind.TLS_FACTS,
                        ca_pem=ca_pem,
                    )
                )
    return plan


async def check_tls(
    topology: Topology,
    mesh: tuple[ProbeResult, ...],
    transport: AgentTransport,
    *,
    ca_pem: str,
    timeout_s: float,
) -> tuple[tuple[ProbeResult, ...], tuple[AgentProblem, ...]]:
    plan = plan_tls(topology, mesh, ca_pem)
    if not plan:
        return (), ()
    done = await collect(topology, plan, transport, timeout_s=timeout_s, payload_bytes=0)
    return done.results, done.problems
