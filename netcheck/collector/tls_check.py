"""Internode TLS of every database node, looked at once per node and port (probes/tls_facts.py).

After the mesh: each database endpoint's 7000 (where Cassandra 4.0+ speaks TLS when internode
encryption is on) and its 7001 where that connected (the legacy SSL port), probed by another
database endpoint of the same cluster that reached that port in the mesh (so the look leaves
from where Cassandra's own connections leave), else of another cluster. A node no one reached
is not looked at: the mesh says why.

Client-to-node TLS: each node's 9142 (native_transport_port_ssl) is looked at from the same
source as its 7000, checked against the clients' CA when one is given. A node that refuses
9142 does not serve it there (cass-operator declares the port on every pod, which says
nothing), and gives no row.
"""

from __future__ import annotations

from collections.abc import Sequence

from netcheck.agent.podshell import is_shell
from netcheck.agent.transport import AgentTransport
from netcheck.collector.run import AgentProblem, collect
from netcheck.model.probe import ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.topology import Role, Topology

INTERNODE_PORTS = (7000, 7001)
CLIENT_TLS_PORT = 9142


def plan_tls(
    topology: Topology, mesh: Sequence[ProbeResult], ca_pem: str, client_ca_pem: str = ""
) -> list[ProbeSpec]:
    eps = {ep.name: ep for ep in topology.endpoints}
    reached: dict[tuple[str, int], list[str]] = {}
    for r in sorted(mesh, key=lambda r: r.src):
        # from a pod that holds netcheck's container or from an agent: a shell cannot look
        if r.port in INTERNODE_PORTS and r.outcome.connected and not is_shell(eps[r.src].prober):
            reached.setdefault((r.dst, r.port), []).append(r.src)
    plan = []
    for ep in topology.endpoints:
        if ep.role is not Role.DATABASE:
            continue
        first = ""
        for port in INTERNODE_PORTS:
            sources = reached.get((ep.name, port), [])
            same = [s for s in sources if eps[s].cluster == ep.cluster]
            if sources:
                first = first or (same or sources)[0]
                plan.append(_look((same or sources)[0], ep.name, port, ca_pem))
        if first:
            plan.append(_look(first, ep.name, CLIENT_TLS_PORT, client_ca_pem))
    return plan


def _look(src: str, dst: str, port: int, ca_pem: str) -> ProbeSpec:
    return ProbeSpec(src=src, dst=dst, port=port, kind=ProbeKind.TLS_FACTS, ca_pem=ca_pem)


async def check_tls(
    topology: Topology,
    mesh: Sequence[ProbeResult],
    transport: AgentTransport,
    *,
    ca_pem: str,
    client_ca_pem: str = "",
    timeout_s: float,
) -> tuple[tuple[ProbeResult, ...], tuple[AgentProblem, ...]]:
    plan = plan_tls(topology, mesh, ca_pem, client_ca_pem)
    if not plan:
        return (), ()
    done = await collect(topology, plan, transport, timeout_s=timeout_s, payload_bytes=0)
    return tuple(done.results), done.problems
