"""Negative probes: pods that are not database pods try the internode ports of every database pod.

The guide requires that only database pods reach 7000/7001. The netcheck agents are such
outsiders (namespace `netcheck`, their own labels): each context's agents (at most
MAX_PER_CONTEXT, one per node first) open a TCP connection to 7000 and 7001 of every database
pod, of their own cluster and of the others. What the policies should do is the audit's
business (diagnosis/isolation.py); this only says what the packets did. A probe that connects
is conclusive; silence is what isolation looks like.
"""

from __future__ import annotations

from dataclasses import dataclass

from netcheck.agent.transport import AgentTransport
from netcheck.collector.run import AgentProblem, collect
from netcheck.discovery.kube import AGENT_NAMESPACE, ContextDiscovery
from netcheck.kube.agentref import agent_ref
from netcheck.model.probe import ProbeKind, ProbeSpec
from netcheck.model.report import OutsiderProbe
from netcheck.model.topology import Endpoint, Role, Topology

INTERNODE_PORTS = (7000, 7001)
MAX_PER_CONTEXT = 16  # outsiders per context: they share one identity, so a few say it all


@dataclass(frozen=True, kw_only=True)
class Outsiders:
    probes: tuple[OutsiderProbe, ...]
    problems: tuple[AgentProblem, ...]  # agents that could not be asked


def _outsider_endpoints(d: ContextDiscovery) -> list[Endpoint]:
    ready = sorted((a for a in d.agents if a.ready and a.pod_ip), key=lambda a: (a.node, a.name))
    return [
        Endpoint(
            name=f"{d.context}/{AGENT_NAMESPACE}/{a.name}",
            cluster=d.context,
            region="",
            address=a.pod_ip,
            role=Role.OTHER,
            agent=agent_ref(d.context, AGENT_NAMESPACE, a.name),
            namespace=AGENT_NAMESPACE,
            node=a.node,
        )
        for a in ready[:MAX_PER_CONTEXT]
    ]


async def probe_outsiders(
    discoveries: list[ContextDiscovery],
    databases: Topology,
    transport: AgentTransport,
    *,
    timeout_s: float,
) -> Outsiders:
    """databases: the run's topology (its database endpoints are the destinations)."""
    sources = [e for d in discoveries for e in _outsider_endpoints(d)]
    targets = [ep for ep in databases.endpoints if ep.role is Role.DATABASE]
    if not sources or not targets:
        return Outsiders(probes=(), problems=())
    plan = [
        ProbeSpec(src=s.name, dst=t.name, port=port, kind=ProbeKind.TCP)
        for s in sources
        for t in targets
        for port in INTERNODE_PORTS
    ]
    topology = Topology(clusters=databases.clusters, endpoints=(*sources, *targets))
    done = await collect(topology, plan, transport, timeout_s=timeout_s, payload_bytes=0)
    eps = {e.name: e for e in topology.endpoints}
    probes = tuple(
        OutsiderProbe(
            context=eps[r.src].cluster,
            outsider=r.src.split("/", 1)[1],
            dst=r.dst,
            dst_context=eps[r.dst].cluster,
            port=r.port,
            outcome=r.outcome,
            detail=r.detail,
        )
        for r in done.results
    )
    return Outsiders(probes=probes, problems=done.problems)


__all__ = ["INTERNODE_PORTS", "Outsiders", "probe_outsiders"]
