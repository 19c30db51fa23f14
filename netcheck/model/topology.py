"""Topology: clusters (kube contexts), regions, zones, datacenters, racks, endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netcheck.model.probe import ProbeKind


class Role(StrEnum):
    DATABASE = "database"
    CONTROL_PLANE_NODE = "control-plane-node"
    API_SERVER = "api-server"
    OTHER = "other"


# Mission Control's Vector aggregator: a NodePort on the control plane's nodes, where the data
# planes ship their logs and metrics
VECTOR_NODEPORT = 30600

# Probe kind of a port when the inventory does not say.
WELL_KNOWN_KINDS = {
    7001: ProbeKind.TLS,
    9142: ProbeKind.TLS,
    6443: ProbeKind.TLS,
    443: ProbeKind.TLS,
    8080: ProbeKind.HTTP,
}


@dataclass(frozen=True, kw_only=True)
class PortSpec:
    port: int
    kind: ProbeKind = ProbeKind.TCP
    # None: as its endpoint (Endpoint.stand_in). False on a pod whose agent serves 8080 while
    # real Cassandra owns 7000/7001: no echo through those.
    stand_in: bool | None = None

    @staticmethod
    def default(port: int) -> PortSpec:
        return PortSpec(port=port, kind=WELL_KNOWN_KINDS.get(port, ProbeKind.TCP))


@dataclass(frozen=True, kw_only=True)
class Endpoint:
    name: str
    cluster: str
    region: str
    address: str
    datacenter: str = ""
    rack: str = ""
    zone: str = ""
    role: Role = Role.DATABASE
    agent: str | None = None
    # Where its mesh probes leave from when that is not its agent: the database pod itself (a
    # netcheck container in it), so they carry the identity NetworkPolicies admit. The agent
    # still makes its node reads (CQL with the agents' login, the Management API).
    prober: str | None = None
    ports: tuple[PortSpec, ...] = ()
    # Its ports are served by a netcheck agent standing in for the real service (pre-install):
    # probes push a payload through them and learn the source address the peer saw.
    stand_in: bool = False
    # Kubernetes names when discovered from a context (empty for inventories).
    namespace: str = ""
    node: str = ""

    @property
    def has_agent(self) -> bool:
        return self.agent is not None

    def source_for(self, kind: ProbeKind) -> str | None:
        """Who sends a probe of this kind from this endpoint."""
        if self.prober is not None and kind not in (ProbeKind.CQL, ProbeKind.MGMT):
            return self.prober
        return self.agent

    def scope(self, level: str) -> tuple[str, ...]:
        """The group this endpoint belongs to at a level: all, cluster, datacenter, rack, pod."""
        full = (self.cluster, self.datacenter, self.rack, self.name)
        return full[: LEVELS.index(level)]


LEVELS = ("all", "cluster", "datacenter", "rack", "pod")


@dataclass(frozen=True, kw_only=True)
class Cluster:
    name: str
    region: str
    pod_cidrs: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Topology:
    clusters: tuple[Cluster, ...]
    endpoints: tuple[Endpoint, ...]
    token_file: str | None = None
    # how to run nodetool in the database pods: "lab" (the built-in lab), "" not reachable
    cassandra_exec: str = ""

    def endpoint(self, name: str) -> Endpoint:
        for ep in self.endpoints:
            if ep.name == name:
                return ep
        raise KeyError(name)

    def cluster(self, name: str) -> Cluster:
        for c in self.clusters:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def agents(self) -> tuple[Endpoint, ...]:
        return tuple(ep for ep in self.endpoints if ep.has_agent)
