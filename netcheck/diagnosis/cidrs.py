"""Address plan checks: pod and service CIDRs of all clusters must not overlap."""

from __future__ import annotations

import ipaddress
from itertools import combinations

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


def _overlaps(a: list[Net], b: list[Net]) -> list[tuple[Net, Net]]:
    return [(x, y) for x in a for y in b if x.version == y.version and x.overlaps(y)]


def cidr_findings(discoveries: list[ContextDiscovery]) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    for d in discoveries:
        if not d.pod_cidrs:
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="POD_CIDR_UNKNOWN",
                    summary=f"{d.context}: no node publishes a podCIDR; overlap not checked",
                    src_cluster=d.context,
                    dst_cluster="*",
                    ports=(),
                    affected_pairs=0,
                    hint="the CNI allocates pod addresses itself (e.g. cloud VPC CNI): compare "
                    "the pod subnets of the clusters by hand",
                )
            )
    for a, b in combinations(discoveries, 2):
        pairs = _overlaps(_nets(a.pod_cidrs), _nets(b.pod_cidrs))
        if pairs:
            x, y = pairs[0]
            findings.append(
                Finding(
                    severity=Severity.ERROR,
                    code="POD_CIDR_OVERLAP",
                    summary=f"pod CIDRs overlap: {a.context} {x} and {b.context} {y}"
                    + (f" (+{len(pairs) - 1} more)" if len(pairs) > 1 else ""),
                    src_cluster=a.context,
                    dst_cluster=b.context,
                    ports=(),
                    affected_pairs=len(pairs),
                    hint="pod addresses must be unique across clusters for routed pod-to-pod "
                    "traffic; plan disjoint pod CIDRs (changing them later needs downtime)",
                    src_scope=str(x),
                    dst_scope=str(y),
                )
            )
    for a in discoveries:
        for b in discoveries:
            pairs = _overlaps(_nets(a.pod_cidrs), _nets(b.service_cidrs))
            if pairs:
                x, y = pairs[0]
                findings.append(
                    Finding(
                        severity=Severity.ERROR,
                        code="SERVICE_CIDR_OVERLAP",
                        summary=f"pod CIDR {x} of {a.context} overlaps service CIDR {y} "
                        f"of {b.context}",
                        src_cluster=a.context,
                        dst_cluster=b.context,
                        ports=(),
                        affected_pairs=len(pairs),
                        hint="service and pod ranges of all clusters must be disjoint",
                        src_scope=str(x),
                        dst_scope=str(y),
                    )
                )
    return tuple(findings)
