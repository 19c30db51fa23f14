"""Address plan checks: pod and service CIDRs of all clusters must not overlap.

Pod networks are the CNI's where it publishes them (Calico IPPools, Cilium's pools and
CiliumNodes: discovery/cni.py), else the nodes' podCIDRs; each overlap says where both sides
were read. Service ranges come from the ServiceCIDR API (Kubernetes 1.33+); an older server
only shows the API server's own service address (the first of its range), which is checked as
the one address known to be in it, and said so.
"""

from __future__ import annotations

import heapq
import ipaddress
from itertools import combinations

from netcheck.discovery.cni import AWS_VPC_CNI, PodNetwork
from netcheck.discovery.kube import ContextDiscovery
from netcheck.model.findings import Finding, Severity

Net = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(cidrs: tuple[str, ...]) -> list[Net]:
    out = []
    for c in cidrs:
        try:
            out.append(ipaddress.ip_network(c, strict=False))
        except ValueError:
            continue
    return out


def _parsed(networks: tuple[PodNetwork, ...]) -> list[tuple[Net, str]]:
    out = []
    for n in networks:
        try:
            out.append((ipaddress.ip_network(n.cidr, strict=False), n.source))
        except ValueError:
            continue
    return out


def _overlaps(a: list[Net], b: list[Net]) -> list[tuple[Net, Net]]:
    """Every (x of a, y of b) that overlap, in a's then b's order: a sweep over the ranges
    sorted by their first address, so thousands of pools per cluster cost n log n plus the
    overlaps found, not n x m comparisons."""
    events = sorted(
        (n.version, int(n.network_address), side, i, int(n.broadcast_address))
        for side, nets in enumerate((a, b))
        for i, n in enumerate(nets)
    )
    active: tuple[list[tuple[int, int]], list[tuple[int, int]]] = ([], [])  # (last, index)
    found: list[tuple[int, int]] = []
    version = 0
    for ver, first, side, i, last in events:
        if ver != version:
            version, active = ver, ([], [])
        for s in (0, 1):
            heap = active[s]
            while heap and heap[0][0] < first:
                heapq.heappop(heap)
        found += [(i, j) if side == 0 else (j, i) for _, j in active[1 - side]]
        heapq.heappush(active[side], (last, i))
    return [(a[i], b[j]) for i, j in sorted(found)]


def _finding(
    severity: Severity,
    code: str,
    summary: str,
    src: str,
    dst: str,
    hint: str,
    *,
    pairs: int = 0,
    src_scope: str = "",
    dst_scope: str = "",
) -> Finding:
    return Finding(
        severity=severity,
        code=code,
        summary=summary,
        src_cluster=src,
        dst_cluster=dst,
        ports=(),
        affected_pairs=pairs,
        hint=hint,
        src_scope=src_scope,
        dst_scope=dst_scope,
    )


def _within(n: Net, p: Net) -> bool:
    if isinstance(n, ipaddress.IPv4Network) and isinstance(p, ipaddress.IPv4Network):
        return n.subnet_of(p)
    if isinstance(n, ipaddress.IPv6Network) and isinstance(p, ipaddress.IPv6Network):
        return n.subnet_of(p)
    return False


def _unknown(d: ContextDiscovery) -> Finding:
    if d.cni.name == AWS_VPC_CNI or d.cni.eni_subnets:
        subnets = ", ".join(d.cni.eni_subnets)
        hint = (
            f"pods take the VPC subnets' addresses (ENIConfig subnets: {subnets}): compare "
            "their CIDRs (aws ec2 describe-subnets --subnet-ids ...) with the other clusters' "
            "and pass them to `netcheck cidr plan --taken`"
            if subnets
            else "pods take the VPC subnets' addresses: compare the nodes' subnets' CIDRs "
            "with the other clusters' by hand"
        )
        return _finding(
            Severity.WARNING,
            "POD_CIDR_UNKNOWN",
            f"{d.context}: the AWS VPC CNI gives pods VPC addresses; no object gives their "
            "ranges as CIDRs, so overlap was not checked",
            d.context,
            "*",
            hint,
        )
    return _finding(
        Severity.WARNING,
        "POD_CIDR_UNKNOWN",
        f"{d.context}: neither the nodes (podCIDR) nor a CNI netcheck reads (Calico IPPools, "
        "Cilium pools) publish the pod network; overlap not checked",
        d.context,
        "*",
        "the CNI allocates pod addresses itself (e.g. cloud VPC CNI): compare the pod subnets "
        "of the clusters by hand",
    )


def _cni_not_nodes(d: ContextDiscovery) -> Finding | None:
    """The CNI's pools where they are not what the nodes' podCIDRs say: which one counts."""
    nodes = _nets(d.node_pod_cidrs)
    pools = _parsed(d.cni.pod_networks)
    if not nodes or not pools:
        return None
    outside = [n for n in nodes if not any(_within(n, p) for p, _ in pools)]
    if not outside:
        return None
    return _finding(
        Severity.INFO,
        "POD_CIDR_FROM_CNI",
        f"{d.context}: pods take addresses from "
        + ", ".join(f"{p} ({src})" for p, src in pools[:4])
        + f", not from the nodes' podCIDRs ({', '.join(str(n) for n in outside[:4])}"
        + (" ..." if len(outside) > 4 else "")
        + "): netcheck checks the CNI's ranges",
        d.context,
        d.context,
        "the nodes' podCIDRs are kube-controller-manager's; the CNI's IPAM does not use them",
    )


def cidr_findings(discoveries: list[ContextDiscovery]) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    for d in discoveries:
        if not d.pod_cidrs:
            findings.append(_unknown(d))
        elif mixed := _cni_not_nodes(d):
            findings.append(mixed)
        if not d.service_cidr_api:
            findings.append(
                _finding(
                    Severity.INFO,
                    "SERVICE_CIDR_UNKNOWN",
                    f"{d.context}: the ServiceCIDR API is not served (Kubernetes before 1.33), "
                    "so its service range is not known"
                    + (
                        f"; only the API server's service address {d.api_service_ip}, the "
                        "first of it, is checked"
                        if d.api_service_ip
                        else ""
                    ),
                    d.context,
                    "*",
                    "its range is kube-apiserver's --service-cluster-ip-range: give it to "
                    "`netcheck cidr plan --taken` and compare it with the other clusters' pod "
                    "ranges by hand",
                )
            )
    pods = {d.context: _parsed(d.pod_networks()) for d in discoveries}
    for a, b in combinations(discoveries, 2):
        pa, pb = pods[a.context], pods[b.context]
        source = {id(n): src for n, src in (*pa, *pb)}
        pairs = _overlaps([n for n, _ in pa], [n for n, _ in pb])
        if pairs:
            x, y = pairs[0]
            sx, sy = source[id(x)], source[id(y)]
            findings.append(
                _finding(
                    Severity.ERROR,
                    "POD_CIDR_OVERLAP",
                    f"pod CIDRs overlap: {a.context} {x} ({sx}) and {b.context} {y} ({sy})"
                    + (f" (+{len(pairs) - 1} more)" if len(pairs) > 1 else ""),
                    a.context,
                    b.context,
                    "pod addresses must be unique across clusters for routed pod-to-pod "
                    "traffic; plan disjoint pod CIDRs (changing them later needs downtime)",
                    pairs=len(pairs),
                    src_scope=str(x),
                    dst_scope=str(y),
                )
            )
    for a in discoveries:
        for b in discoveries:
            services = b.service_cidrs or (
                (f"{b.api_service_ip}/{128 if ':' in b.api_service_ip else 32}",)
                if b.api_service_ip and not b.service_cidr_api
                else ()
            )
            hits = _overlaps([n for n, _ in pods[a.context]], _nets(services))
            if hits:
                x, y = hits[0]
                what = (
                    f"service CIDR {y}"
                    if b.service_cidrs
                    else f"the service address {y.network_address} (API server)"
                )
                findings.append(
                    _finding(
                        Severity.ERROR,
                        "SERVICE_CIDR_OVERLAP",
                        f"pod CIDR {x} of {a.context} overlaps {what} of {b.context}",
                        a.context,
                        b.context,
                        "service and pod ranges of all clusters must be disjoint",
                        pairs=len(hits),
                        src_scope=str(x),
                        dst_scope=str(y),
                    )
                )
    return tuple(findings)


def cidr_problems(discoveries: list[ContextDiscovery]) -> tuple[str, ...]:
    """What leaves the CIDR check incomplete: a cluster whose CNI objects could not be read
    (RBAC refused them, or the server failed). Its pods may take addresses from pools the
    check did not see, so no overlap found there is not a pass."""
    out = []
    for d in discoveries:
        if not d.cni_unread:
            continue
        what = ", ".join(line.split(":", 1)[0] for line in d.cni_unread)
        used = "the CNI's other objects" if d.cni.pod_networks else "the nodes' podCIDRs"
        out.append(
            f"context {d.context}: the CIDR check is incomplete: {what} could not be read, so "
            f"the pod networks came from {used} and may miss the pools pods take addresses "
            "from; grant the reads probes/rbac/netcheck-user.yaml lists"
        )
    return tuple(out)
