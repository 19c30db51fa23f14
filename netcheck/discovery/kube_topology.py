"""Topologies from Kubernetes discovery: the post-install mesh and the preflight mesh."""

from __future__ import annotations

import socket
from collections import Counter
from dataclasses import dataclass

from netcheck.discovery.kube import AGENT_NAMESPACE, AgentPod, ContextDiscovery, DatabasePod
from netcheck.kube.agentref import agent_ref
from netcheck.model.probe import ProbeKind
from netcheck.model.topology import VECTOR_NODEPORT, Cluster, Endpoint, PortSpec, Role, Topology

DATABASE_PORTS = (7000, 7001, 8080)
STAND_IN_PORTS = (
    PortSpec(port=7000, kind=ProbeKind.TCP),
    PortSpec(port=7001, kind=ProbeKind.TLS),
    PortSpec(port=8080, kind=ProbeKind.HTTP),
)


@dataclass(frozen=True, kw_only=True)
class PodRef:
    """Where a database endpoint lives in Kubernetes (for exec and logs)."""

    endpoint: str
    context: str
    namespace: str
    pod: str
    containers: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class KubeTopology:
    topology: Topology
    problems: tuple[str, ...]  # one line each: endpoints that cannot be probed from, and why
    pods: tuple[PodRef, ...] = ()  # the database endpoints' pods


def _cluster(d: ContextDiscovery) -> Cluster:
    regions = Counter(n.region for n in d.nodes if n.region)
    return Cluster(
        name=d.context,
        region=regions.most_common(1)[0][0] if regions else "",
        pod_cidrs=d.pod_cidrs,
    )


def _unique(names: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """Short names where they are unique across contexts, context/name where they are not."""
    count = Counter(n for _, n in names)
    return {(c, n): (n if count[n] == 1 else f"{c}/{n}") for c, n in names}


def _agent_for(
    d: ContextDiscovery, pod: DatabasePod, by_node: dict[str, AgentPod]
) -> AgentPod | None:
    if pod.node in by_node:
        return by_node[pod.node]
    for other in d.database_pods:  # else an agent next to another database pod of the rack
        if (other.datacenter, other.rack) == (pod.datacenter, pod.rack) and other.node in by_node:
            return by_node[other.node]
    return None


def vector_endpoints(cp: ContextDiscovery, *, stand_in: bool) -> list[Endpoint]:
    """The control plane's nodes, where Mission Control's Vector aggregator answers on its
    NodePort (stand_in: netcheck's own NodePort in front of its agents, before install)."""
    return [
        Endpoint(
            name=f"{cp.context}/node/{n.name}",
            cluster=cp.context,
            region=n.region,
            address=n.internal_ip,
            datacenter=n.region,
            rack=n.zone,
            zone=n.zone,
            role=Role.CONTROL_PLANE_NODE,
            ports=(PortSpec(port=VECTOR_NODEPORT, kind=ProbeKind.TCP),),
            stand_in=stand_in,
            node=n.name,
        )
        for n in cp.nodes
        if n.internal_ip
    ]


def run_topology(
    discoveries: list[ContextDiscovery], control_plane: ContextDiscovery | None = None
) -> KubeTopology:
    """Database pods as endpoints, each probed from the agent on its node (or rack); with the
    Mission Control control plane, its nodes' Vector NodePort too (from every database pod)."""
    names = _unique([(d.context, p.name) for d in discoveries for p in d.database_pods])
    endpoints: list[Endpoint] = []
    problems: list[str] = []
    pods: list[PodRef] = []
    for d in discoveries:
        by_node = {a.node: a for a in d.agents if a.ready}
        for pod in d.database_pods:
            if not pod.pod_ip:
                problems.append(
                    f"context {d.context}: pod {pod.namespace}/{pod.name} has no IP yet "
                    f"(node-state {pod.node_state or 'unknown'}); it is left out"
                )
                continue
            node = d.node(pod.node)
            agent = _agent_for(d, pod, by_node)
            if agent is None:
                problems.append(
                    f"context {d.context}: no ready netcheck agent on node {pod.node} or in rack "
                    f"{pod.rack}, so nothing probes from {pod.name}; run `netcheck deploy "
                    f"--context {d.context}` and check `netcheck discover`"
                )
            declared = [p for p in DATABASE_PORTS if p in pod.ports] or list(DATABASE_PORTS)
            endpoints.append(
                Endpoint(
                    name=names[(d.context, pod.name)],
                    cluster=d.context,
                    region=node.region if node else "",
                    address=pod.pod_ip,
                    datacenter=pod.datacenter,
                    rack=pod.rack,
                    zone=node.zone if node else "",
                    role=Role.DATABASE,
                    agent=agent_ref(d.context, AGENT_NAMESPACE, agent.name) if agent else None,
                    ports=tuple(PortSpec.default(p) for p in declared),
                    namespace=pod.namespace,
                    node=pod.node,
                )
            )
            pods.append(
                PodRef(
                    endpoint=names[(d.context, pod.name)],
                    context=d.context,
                    namespace=pod.namespace,
                    pod=pod.name,
                    containers=pod.containers,
                )
            )
    clusters = [_cluster(d) for d in discoveries]
    if control_plane is not None:
        endpoints += vector_endpoints(control_plane, stand_in=False)
        if control_plane.context not in {d.context for d in discoveries}:
            clusters.append(_cluster(control_plane))
    return KubeTopology(
        topology=Topology(clusters=tuple(clusters), endpoints=tuple(endpoints)),
        problems=tuple(problems),
        pods=tuple(pods),
    )


def resolve(host: str) -> str:
    """An API server host as an address the agents can be given (they take addresses only)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


def preflight_topology(
    discoveries: list[ContextDiscovery],
    *,
    control_plane: str,
    api_servers: dict[str, tuple[str, int]],
) -> KubeTopology:
    """Before install: agents stand in for database pods; control-plane nodes serve 30600
    (through the NodePort in front of the agents); data-plane API servers as given."""
    names = _unique([(d.context, a.name) for d in discoveries for a in d.agents])
    endpoints: list[Endpoint] = []
    problems: list[str] = []
    for d in discoveries:
        for a in d.agents:
            node = d.node(a.node)
            if not a.ready or not a.pod_ip:
                problems.append(
                    f"context {d.context}: agent {a.name} on node {a.node or '(unscheduled)'} is "
                    f"not ready ({a.reason or a.phase or 'unknown'}); its node is not checked"
                )
                continue
            endpoints.append(
                Endpoint(
                    name=names[(d.context, a.name)],
                    cluster=d.context,
                    region=node.region if node else "",
                    address=a.pod_ip,
                    datacenter=node.region if node else "",
                    rack=node.zone if node else "",
                    zone=node.zone if node else "",
                    role=Role.DATABASE,
                    agent=agent_ref(d.context, AGENT_NAMESPACE, a.name),
                    ports=STAND_IN_PORTS,
                    stand_in=True,
                    namespace=AGENT_NAMESPACE,
                    node=a.node,
                )
            )
        if d.context == control_plane:
            # the preflight NodePort forwards to agents
            endpoints.extend(vector_endpoints(d, stand_in=True))
        elif d.context in api_servers:
            host, port = api_servers[d.context]
            endpoints.append(
                Endpoint(
                    name=f"{d.context}/api-server",
                    cluster=d.context,
                    region=_cluster(d).region,
                    address=host,
                    role=Role.API_SERVER,
                    ports=(PortSpec(port=port, kind=ProbeKind.TLS),),
                )
            )
    return KubeTopology(
        topology=Topology(
            clusters=tuple(_cluster(d) for d in discoveries), endpoints=tuple(endpoints)
        ),
        problems=tuple(problems),
    )
