"""`netcheck cidr plan`: pod and service ranges for a new cluster that overlap nothing known.

Pod and service CIDRs are fixed when a cluster is created; changing them later means stopping
the database cluster. The plan sizes the pod range as kube-controller-manager hands it out: a
block per node (`--node-cidr-mask-size`) of at least twice the pods a node runs (Kubernetes'
own rule, so addresses are not reused while pods churn: 110 pods -> /24), times the nodes
rounded up to a power of two; the service range holds the services asked for. Each is the
lowest free block of its size in the pool (RFC 1918 by default), clear of every range given
as taken (the other clusters' pod, service and node networks) and of each other. IPv4 only.

Written here rather than taken from a library: the search is a few lines over the standard
`ipaddress` module (first fit, skipping past each taken range), and no packaged allocator
plans Kubernetes' per-node blocks.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from netcheck.discovery.kube import ContextDiscovery

Net = ipaddress.IPv4Network

PRIVATE_POOLS: tuple[Net, ...] = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
)
MAX_NODES = 1 << 16
MAX_PODS_PER_NODE = 1 << 12
MAX_SERVICES = 1 << 20
MAX_TAKEN = 100_000  # bounds the search's work


class PlanError(ValueError):
    """No room, or a request that cannot be met: one line saying what to change."""


@dataclass(frozen=True, kw_only=True)
class CidrPlan:
    pods: Net
    node_mask: int  # --node-cidr-mask-size: each node's block of the pod range
    services: Net
    nodes: int
    pods_per_node: int
    avoided: tuple[Net, ...]  # the taken ranges inside the pools, merged


def known_ranges(d: ContextDiscovery) -> list[tuple[str, str]]:
    """(CIDR, what it is) of one discovered cluster: its pod CIDRs, service CIDRs and node
    addresses, each a range a new cluster's plan must stay clear of."""
    out = [(n.cidr, f"{d.context} pods ({n.source})") for n in d.pod_networks()]
    out += [(c, f"{d.context} services") for c in d.service_cidrs]
    if not d.service_cidr_api and d.api_service_ip and ":" not in d.api_service_ip:
        out.append(
            (
                f"{d.api_service_ip}/32",
                f"{d.context} services (only the API server's address is known: no "
                "ServiceCIDR API; add the range with --taken)",
            )
        )
    out += [
        (f"{n.internal_ip}/{128 if ':' in n.internal_ip else 32}", f"{d.context} node {n.name}")
        for n in d.nodes
        if n.internal_ip
    ]
    return out


def _bits_for(count: int) -> int:
    """Address bits that hold `count` addresses (a power of two at least `count`)."""
    return max(0, (count - 1).bit_length())


def plan(
    taken: Sequence[Net],
    nodes: int,
    pods_per_node: int,
    services: int = 4000,
    pools: Sequence[Net] = PRIVATE_POOLS,
) -> CidrPlan:
    if not 1 <= nodes <= MAX_NODES:
        raise PlanError(f"--nodes {nodes}: give 1 to {MAX_NODES}")
    if not 1 <= pods_per_node <= MAX_PODS_PER_NODE:
        raise PlanError(f"--pods-per-node {pods_per_node}: give 1 to {MAX_PODS_PER_NODE}")
    if not 1 <= services <= MAX_SERVICES:
        raise PlanError(f"--services {services}: give 1 to {MAX_SERVICES}")
    if len(taken) > MAX_TAKEN:
        raise PlanError(f"{len(taken)} taken ranges: give at most {MAX_TAKEN}")
    node_bits = _bits_for(2 * pods_per_node)
    pod_prefix = 32 - node_bits - _bits_for(nodes)
    service_prefix = 32 - _bits_for(services + 2)  # the network and the API server's address
    if pod_prefix < 8:
        raise PlanError(
            f"{nodes} nodes x {pods_per_node} pods need more than a /8 of pods: fewer pods "
            "per node, or fewer nodes per cluster"
        )
    avoided = tuple(ipaddress.collapse_addresses(t for t in taken if t.version == 4))
    pods = _first_free(pod_prefix, avoided, pools, "pod")
    services_net = _first_free(
        service_prefix, tuple(ipaddress.collapse_addresses([*avoided, pods])), pools, "service"
    )
    inside = tuple(t for t in avoided if any(t.overlaps(p) for p in pools))
    return CidrPlan(
        pods=pods,
        node_mask=32 - node_bits,
        services=services_net,
        nodes=nodes,
        pods_per_node=pods_per_node,
        avoided=inside,
    )


def _first_free(prefix: int, taken: tuple[Net, ...], pools: Sequence[Net], what: str) -> Net:
    """The lowest /prefix block inside a pool that overlaps no taken range. `taken` is sorted
    and merged (collapse_addresses), so the search passes each taken range at most once."""
    size = 1 << (32 - prefix)
    for pool in pools:
        if pool.prefixlen > prefix:
            continue
        start = int(pool.network_address)
        end = int(pool.broadcast_address)
        addr = start
        i = 0
        while addr + size - 1 <= end:
            while i < len(taken) and int(taken[i].broadcast_address) < addr:
                i += 1
            if i == len(taken) or int(taken[i].network_address) > addr + size - 1:
                return ipaddress.IPv4Network((addr, prefix))
            # skip past the taken range, to the next block boundary
            past = int(taken[i].broadcast_address) + 1
            addr = (past + size - 1) // size * size
    pools_text = ", ".join(map(str, pools))
    raise PlanError(
        f"no free /{prefix} for the {what} range in {pools_text}: the taken ranges fill it; "
        "give another pool with --within, or plan smaller (--nodes, --pods-per-node, "
        "--services)"
    )
