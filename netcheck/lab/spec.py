"""What the lab builds: clusters, datacenters, racks, pods, and their addresses.

Addressing (all inside 198.18.0.0/15, and only inside the lab's namespaces):
  cluster k         198.18.0.0 + k*8192 /19  (on the cluster's bridge)
  pod CIDR          the first /20 of it; rack i (1..15) is its i-th /24, pods from .10
  nodes             the 16th /24: router .1, control-plane node .10, API server .20
  WAN transit       198.19.126.4k/30: router .4k+1, WAN router .4k+2
  management        198.19.128.0/17: the host side .128.1, every lab host from .128.10
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

import yaml

LAB_NET = ipaddress.ip_network("198.18.0.0/15")
MGMT_NET = ipaddress.ip_network("198.19.128.0/17")
MGMT_HOST = "198.19.128.1"
MGMT_NS = "ncl-mgmt"  # the management bridge's namespace
TRANSIT_NET = "198.19.126.0/24"
CLUSTER_BLOCK = 8192
MAX_CLUSTERS = 12
MAX_RACKS = 15
MAX_PODS_PER_RACK = 200
POD_PORTS = ((7000, "tcp"), (7001, "tls"), (8080, "http"))
CASSANDRA_POD_PORTS: tuple[tuple[int, str], ...] = ()  # Cassandra and the Management API
VECTOR_NODEPORT = 30600
API_SERVER_PORT = 6443


class LabSpecError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class RackSpec:
    name: str
    zone: str
    pods: int


@dataclass(frozen=True, kw_only=True)
class DatacenterSpec:
    name: str
    racks: tuple[RackSpec, ...]


@dataclass(frozen=True, kw_only=True)
class ClusterSpec:
    name: str
    short: str
    region: str
    datacenters: tuple[DatacenterSpec, ...]
    control_plane: bool = False
    api_server: bool = True
    # Cassandra nodes of this cluster also listen on 7001 (legacy_ssl_storage_port_enabled)
    legacy_ssl_port: bool = False


@dataclass(frozen=True, kw_only=True)
class LabSpec:
    clusters: tuple[ClusterSpec, ...]


@dataclass(frozen=True, kw_only=True)
class LabHost:
    """One namespace with an address on a cluster's network and one on the management net."""

    name: str
    namespace: str
    cluster: str
    short: str
    region: str
    role: str
    address: str
    mgmt_address: str
    datacenter: str = ""
    rack: str = ""
    zone: str = ""
    serve: tuple[tuple[int, str], ...] = ()
    probes: bool = False  # runs a probing agent listed in the inventory
    # A database host doubles as the Kubernetes node it runs on (fake API server tests): the
    # node's InternalIP is a second address, and on the control plane it answers the NodePort.
    node_address: str = ""
    node_serve: tuple[tuple[int, str], ...] = ()
    # On the lab's Kubernetes each pod has its own network namespace behind the node's: a
    # database pod has the host's address (a routed network allows one outside the podCIDR),
    # other pods (the agent, a test's outsider) the addresses of the node's podCIDR.
    node_pod_cidr: str = ""


@dataclass(frozen=True, kw_only=True)
class ClusterNet:
    name: str
    short: str
    region: str
    index: int
    site: str  # the /19
    pod_cidr: str  # the /20
    router_address: str
    transit_router: str
    transit_wan: str
    router_ns: str


def default_spec() -> LabSpec:
    def cluster(name: str, short: str, region: str, dc: str, cp: bool) -> ClusterSpec:
        racks = tuple(
            RackSpec(name=f"r{i}", zone=f"{region}-{'ab'[i - 1]}", pods=2) for i in (1, 2)
        )
        return ClusterSpec(
            name=name,
            short=short,
            region=region,
            control_plane=cp,
            datacenters=(DatacenterSpec(name=dc, racks=racks),),
        )

    return LabSpec(
        clusters=(
            cluster("CP_EAST", "cp", "east", "dc1", True),
            cluster("DP_WEST", "dp", "west", "dc2", False),
        )
    )


def _block(k: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(LAB_NET.network_address) + k * CLUSTER_BLOCK)


def _node_address(base: ipaddress.IPv4Address, i: int) -> ipaddress.IPv4Address:
    """Node InternalIPs fill the /24s above the node network: .10 to .209 of each."""
    return base + (17 + i // 200) * 256 + 10 + i % 200


MAX_NODES = 512  # per cluster: the pod CIDRs below fill the 24th to 31st /24 of its /19


def pod_addresses(host: dict[str, Any]) -> list[str]:
    """The addresses of a lab host's podCIDR (as the lab's state keeps hosts: dicts)."""
    cidr = host.get("node_pod_cidr") or ""
    return [str(a) for a in ipaddress.IPv4Network(cidr)] if cidr else []


def _node_pod_cidr(base: ipaddress.IPv4Address, i: int) -> str:
    """Node i's podCIDR (lab Kubernetes): a /30 from the cluster's 24th /24 on, four pod
    addresses routed to the node, each a /32 behind it (lab/pods.py). Nodes past MAX_NODES
    get none: their pods other than Cassandra's fail with "no pod address left"."""
    if i >= MAX_NODES:
        return ""
    return str(ipaddress.IPv4Network(f"{base + 24 * 256 + 4 * i}/30"))


def cluster_nets(spec: LabSpec) -> list[ClusterNet]:
    nets = []
    for k, c in enumerate(spec.clusters):
        base = _block(k)
        transit = ipaddress.IPv4Address("198.19.126.0") + 4 * k
        nets.append(
            ClusterNet(
                name=c.name,
                short=c.short,
                region=c.region,
                index=k,
                site=f"{base}/19",
                pod_cidr=f"{base}/20",
                router_address=str(base + 16 * 256 + 1),
                transit_router=str(transit + 1),
                transit_wan=str(transit + 2),
                router_ns=f"ncl-rtr-{c.short}",
            )
        )
    return nets


def _host(
    c: ClusterSpec,
    name: str,
    role: str,
    address: ipaddress.IPv4Address,
    mgmt: ipaddress.IPv4Address,
    **more: Any,
) -> LabHost:
    return LabHost(
        name=name,
        namespace=f"ncl-{name}",
        cluster=c.name,
        short=c.short,
        region=c.region,
        role=role,
        address=str(address),
        mgmt_address=str(mgmt),
        **more,
    )


def lab_hosts(spec: LabSpec, *, cassandra: bool = False) -> list[LabHost]:
    """Every host of the lab. With cassandra, real Cassandra owns the internode ports of the
    database pods (7000, and 7001 where the cluster enables the legacy SSL port): their agent
    serves the Management API port only."""
    hosts: list[LabHost] = []
    mgmt = iter(
        ipaddress.IPv4Address(int(MGMT_NET.network_address) + 10 + i)
        for i in range(MGMT_NET.num_addresses - 12)
    )
    for k, c in enumerate(spec.clusters):
        base = _block(k)

        rack_index = 0
        node_index = 0
        for dc in c.datacenters:
            for rack in dc.racks:
                rack_index += 1
                for p in range(rack.pods):
                    hosts.append(
                        _host(
                            c,
                            f"{c.short}-{dc.name}-{rack.name}-p{p}",
                            "database",
                            base + rack_index * 256 + 10 + p,
                            next(mgmt),
                            datacenter=dc.name,
                            rack=rack.name,
                            zone=rack.zone,
                            serve=CASSANDRA_POD_PORTS if cassandra else POD_PORTS,
                            probes=True,
                            node_address=str(_node_address(base, node_index)),
                            node_serve=((VECTOR_NODEPORT, "tcp"),) if c.control_plane else (),
                            node_pod_cidr=_node_pod_cidr(base, node_index),
                        )
                    )
                    node_index += 1
        nodes = base + 16 * 256
        if c.control_plane:
            hosts.append(
                _host(
                    c,
                    f"{c.short}-node-0",
                    "control-plane-node",
                    nodes + 10,
                    next(mgmt),
                    serve=((VECTOR_NODEPORT, "tcp"),),
                )
            )
        if c.api_server:
            hosts.append(
                _host(
                    c,
                    f"{c.short}-apiserver",
                    "api-server",
                    nodes + 20,
                    next(mgmt),
                    serve=((API_SERVER_PORT, "tls"),),
                )
            )
    return hosts


def spec_from_yaml(text: str, source: str) -> LabSpec:
    def fail(path: str, problem: str, fix: str) -> LabSpecError:
        return LabSpecError(f"{source}: {path}: {problem}; {fix}")

    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        raise fail("", "not valid YAML", "fix the YAML syntax") from None
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("clusters"), list)
        or not doc["clusters"]
    ):
        raise fail("clusters", "missing or empty", "list at least one cluster")
    if len(doc["clusters"]) > MAX_CLUSTERS:
        raise fail("clusters", f"more than {MAX_CLUSTERS}", "build a smaller lab")
    clusters = []
    shorts: set[str] = set()
    for i, cj in enumerate(doc["clusters"]):
        path = f"clusters[{i}]"
        if not isinstance(cj, dict):
            raise fail(path, "not a mapping", "see the default spec in the README")
        name, region = cj.get("name"), cj.get("region")
        short = cj.get("short", str(name).lower()[:6] if name else None)
        for key, value in (("name", name), ("region", region), ("short", short)):
            if not isinstance(value, str) or not value:
                raise fail(f"{path}.{key}", "missing", f"give the cluster a {key}")
        assert isinstance(short, str) and isinstance(name, str) and isinstance(region, str)
        if not short.isalnum() or len(short) > 6 or short in shorts:
            raise fail(
                f"{path}.short",
                f"{short!r} must be unique, alphanumeric, at most 6 chars",
                "pick another short name",
            )
        shorts.add(short)
        dcs = []
        rack_total = 0
        for j, dj in enumerate(cj.get("datacenters") or []):
            dpath = f"{path}.datacenters[{j}]"
            if not isinstance(dj, dict) or not isinstance(dj.get("name"), str):
                raise fail(dpath, "needs a name and racks", "see the default spec in the README")
            racks = []
            for r, rj in enumerate(dj.get("racks") or []):
                rpath = f"{dpath}.racks[{r}]"
                pods = rj.get("pods", 1) if isinstance(rj, dict) else None
                if (
                    not isinstance(rj, dict)
                    or not isinstance(rj.get("name"), str)
                    or not isinstance(pods, int)
                    or not 1 <= pods <= MAX_PODS_PER_RACK
                ):
                    raise fail(
                        rpath,
                        "needs a name and pods (1 to 200)",
                        "write e.g. {name: r1, zone: east-a, pods: 2}",
                    )
                racks.append(RackSpec(name=rj["name"], zone=str(rj.get("zone", "")), pods=pods))
            rack_total += len(racks)
            dcs.append(DatacenterSpec(name=dj["name"], racks=tuple(racks)))
        if not dcs or rack_total == 0 or rack_total > MAX_RACKS:
            raise fail(
                f"{path}.datacenters",
                f"needs 1 to {MAX_RACKS} racks in all",
                "list datacenters with racks",
            )
        clusters.append(
            ClusterSpec(
                name=name,
                short=short,
                region=region,
                datacenters=tuple(dcs),
                control_plane=bool(cj.get("control_plane", False)),
                api_server=bool(cj.get("api_server", True)),
                legacy_ssl_port=bool(cj.get("legacy_ssl_port", False)),
            )
        )
    return LabSpec(clusters=tuple(clusters))


def spec_to_dict(spec: LabSpec) -> dict[str, Any]:
    return {
        "clusters": [
            {
                "name": c.name,
                "short": c.short,
                "region": c.region,
                "control_plane": c.control_plane,
                "api_server": c.api_server,
                "legacy_ssl_port": c.legacy_ssl_port,
                "datacenters": [
                    {
                        "name": d.name,
                        "racks": [
                            {"name": r.name, "zone": r.zone, "pods": r.pods} for r in d.racks
                        ],
                    }
                    for d in c.datacenters
                ],
            }
            for c in spec.clusters
        ]
    }
