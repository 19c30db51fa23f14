"""What the negative probes of the internode ports say (collector/outsiders.py), next to the audit.

- INTERNODE_PORTS_EXPOSED (error): a pod of the same cluster that is not a database pod reached
  7000/7001 of a database pod. Names the outsiders, their namespace, the ports and the pods;
  the hint is the NetworkPolicy to apply, filled in.
- INTERNODE_PORTS_EXPOSED_ACROSS_CLUSTERS (warning): a pod of another cluster that is not a
  database pod reached them. A NetworkPolicy knows the other cluster's pods by address only, so
  the fix is a subnet of their own for database pods and the firewall between the clusters.
- NETWORK_POLICY_AUDIT_DISAGREES: the policies refuse the agents but their probes got through
  (warning: the CNI does not enforce NetworkPolicy, a common real cause), or the policies
  admit them but the probes were blocked (info: something besides NetworkPolicy isolates).
- INTERNODE_ISOLATION_HOLDS (info) gains the probes' word when they were all blocked; without
  an audit (policies unread) the probes alone say it.

A probe "reached" the pod when it connected, or when the pod refused a port that refuses the
database pods as well (nothing listens there: the packets got in all the same). Silence, ICMP
and a refusal the database pods do not get are the isolation working.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from dataclasses import replace

from netcheck.diagnosis.findings import group_text
from netcheck.discovery.kube import CASS_CLUSTER, ContextDiscovery
from netcheck.model.findings import Finding, Severity
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.report import OutsiderProbe, PortIsolation

INTERNODE_PORTS = (7000, 7001)
CLIENT_PORTS = (8080, 9042, 9142)  # Management API, CQL, CQL over TLS: when none are declared


def judged(
    probes: tuple[OutsiderProbe, ...], mesh: Sequence[ProbeResult]
) -> tuple[OutsiderProbe, ...]:
    """Each negative probe with `reached` decided (see the module's docstring)."""
    refused: dict[tuple[str, int], list[bool]] = {}
    for r in mesh:
        if r.port in INTERNODE_PORTS and r.outcome is not Outcome.NOT_MEASURED:
            refused.setdefault((r.dst, r.port), []).append(r.outcome is Outcome.REFUSED)
    closed = {k for k, v in refused.items() if v and all(v)}
    out = []
    for p in probes:
        if p.outcome is Outcome.NOT_MEASURED:
            reached = None
        elif p.outcome.connected:
            reached = True
        else:
            reached = p.outcome is Outcome.REFUSED and (p.dst, p.port) in closed
        out.append(replace(p, reached=reached))
    return tuple(out)


def _policy(d: ContextDiscovery, namespace: str, others: list[ContextDiscovery]) -> str:
    """The guide's isolation for one database namespace, as one line of JSON for kubectl."""
    clusters = sorted(
        {dict(p.labels).get(CASS_CLUSTER, "") for p in d.database_pods if p.namespace == namespace}
        - {""}
    )
    selector = {"matchLabels": {CASS_CLUSTER: clusters[0] if clusters else "<cluster>"}}
    cidrs = _database_networks(others) or ["<other cluster pod CIDR>"]
    # every other port the database pods declare stays open to whoever reaches it now: a
    # policy that selects a pod refuses it every port it does not name
    declared = {
        port
        for p in d.database_pods
        if p.namespace == namespace
        for port in (*p.ports, *(n for _, proto, n in p.named_ports if proto.upper() == "TCP"))
    }
    open_ports = sorted(declared - set(INTERNODE_PORTS)) or list(CLIENT_PORTS)
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "cassandra-internode", "namespace": namespace},
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": selector}, *({"ipBlock": {"cidr": c}} for c in cidrs)],
                    "ports": [{"port": 7000}, {"port": 7001}],
                },
                {"ports": [{"port": p} for p in open_ports]},
            ],
        },
    }
    return json.dumps(policy, separators=(",", ":"))


def _audit_says(rows: tuple[PortIsolation, ...], ctx: str) -> str:
    """Who else the policies let in, as the audit read them (the probes tried the agents)."""
    others = sorted(
        {o for r in rows if r.context == ctx for o in r.outsiders_admitted}
        - {o for r in rows for o in r.outsiders_admitted if o.startswith("netcheck/")}
    )
    return f"; as the NetworkPolicies read, so may {', '.join(others)}" if others else ""


def _database_networks(others: list[ContextDiscovery]) -> list[str]:
    """Where the other clusters' database pods are: their pod CIDRs (merged), and the address
    of any database pod outside them (host network)."""
    nets = [ipaddress.ip_network(c, strict=False) for o in others for c in o.pod_cidrs]
    for o in others:
        for p in o.database_pods:
            if p.pod_ip and not any(ipaddress.ip_address(p.pod_ip) in n for n in nets):
                nets.append(ipaddress.ip_network(p.pod_ip))
    v4 = [n for n in nets if isinstance(n, ipaddress.IPv4Network)]
    v6 = [n for n in nets if isinstance(n, ipaddress.IPv6Network)]
    merged = [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]
    return [str(n) for n in merged]


def _ports(probes: list[OutsiderProbe]) -> tuple[int, ...]:
    return tuple(sorted({p.port for p in probes}))


def _who(probes: list[OutsiderProbe]) -> str:
    return group_text(sorted({p.outsider for p in probes}), "pods")


def exposure_findings(
    discoveries: list[ContextDiscovery],
    probes: tuple[OutsiderProbe, ...],
    rows: tuple[PortIsolation, ...],
    audit_findings: tuple[Finding, ...],
) -> tuple[Finding, ...]:
    """The audit's findings (isolation_findings) merged with what the negative probes saw:
    one finding per cause and context."""
    by_context = {d.context: d for d in discoveries}
    out = list(audit_findings)
    for ctx in by_context:
        into = [p for p in probes if p.dst_context == ctx]
        same = [p for p in into if p.context == ctx]
        reached = [p for p in same if p.reached]
        across = [p for p in into if p.context != ctx and p.reached]
        d = by_context[ctx]
        if reached:
            out = [
                f
                for f in out
                # the audit's word on isolation gives way to what the packets did
                if not (
                    f.code in ("INTERNODE_ISOLATION_MISSING", "INTERNODE_ISOLATION_HOLDS")
                    and f.dst_cluster == ctx
                )
            ]
            pods = sorted({p.dst for p in reached})
            namespaces = sorted(
                {
                    x.namespace
                    for x in d.database_pods
                    if x.name in {p.rsplit("/", 1)[-1] for p in pods}
                }
            ) or ["<database namespace>"]
            others = [o for o in discoveries if o.context != ctx]
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    code="INTERNODE_PORTS_EXPOSED",
                    summary=f"{ctx}: {_who(reached)} (not database pods, namespace "
                    f"{', '.join(sorted({p.outsider.split('/', 1)[0] for p in reached}))}) "
                    f"reached {'/'.join(map(str, _ports(reached)))} of "
                    f"{group_text(pods, 'database pods')}; the guide requires that only "
                    f"database pods reach the internode ports{_audit_says(rows, ctx)}",
                    src_cluster=ctx,
                    dst_cluster=ctx,
                    ports=_ports(reached),
                    affected_pairs=len(reached),
                    hint=f"apply in namespace {namespaces[0]} (and each database namespace): "
                    f"kubectl apply -f - <<< '{_policy(d, namespaces[0], others)}'",
                    src_scope=", ".join(sorted({p.outsider for p in reached})),
                    dst_scope=", ".join(pods),
                    outcome="open",
                )
            )
        if across:
            pods = sorted({p.dst for p in across})
            sources = sorted({p.context for p in across})
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    code="INTERNODE_PORTS_EXPOSED_ACROSS_CLUSTERS",
                    summary=f"{ctx}: pods of {', '.join(sources)} that are not database pods "
                    f"({_who(across)}) reached {'/'.join(map(str, _ports(across)))} of "
                    f"{group_text(pods, 'database pods')}; NetworkPolicy knows the other "
                    "cluster's pods by address only",
                    src_cluster=", ".join(sources),
                    dst_cluster=ctx,
                    ports=_ports(across),
                    affected_pairs=len(across),
                    hint="give the database pods a subnet of their own (a dedicated node pool "
                    "with its own pod CIDR or IP pool), and admit only that subnet on tcp/7000 "
                    "and tcp/7001 in the policies' ipBlocks and in the firewall between the "
                    "clusters' pod CIDRs",
                    src_scope=", ".join(sorted({p.outsider for p in across})),
                    dst_scope=", ".join(pods),
                    outcome="open",
                )
            )
        out = _with_audit(out, ctx, same, rows)
    return tuple(out)


def _with_audit(
    findings: list[Finding], ctx: str, same: list[OutsiderProbe], rows: tuple[PortIsolation, ...]
) -> list[Finding]:
    """Where the audit and the agents' probes of their own cluster disagree, say so; where
    they agree that isolation holds, the HOLDS finding says the probes agree."""
    mine = {(r.pod.rsplit("/", 1)[-1], r.port): r for r in rows if r.context == ctx}
    measured = [p for p in same if p.reached is not None]
    if not measured:
        return findings
    not_enforced, beyond = [], []
    for p in measured:
        row = mine.get((p.dst.rsplit("/", 1)[-1], p.port))
        if row is None:
            continue
        admits_agents = any(o.startswith("netcheck/") for o in row.outsiders_admitted)
        if p.reached and not admits_agents:
            not_enforced.append(p)
        elif not p.reached and admits_agents:
            beyond.append(p)
    if not_enforced:
        findings.append(
            _disagreement(
                ctx,
                not_enforced,
                Severity.WARNING,
                f"the NetworkPolicies refuse {_who(not_enforced)} on "
                f"{'/'.join(map(str, _ports(not_enforced)))} of "
                f"{group_text(sorted({p.dst for p in not_enforced}), 'database pods')}, but "
                "their probes got through: NetworkPolicy is not enforced there",
                "check that the cluster's CNI enforces NetworkPolicy (flannel and "
                "kubenet alone do not; Calico, Cilium, Antrea and the cloud CNIs' policy "
                "options do) and that its policy agent runs on the database nodes",
            )
        )
    if beyond:
        findings.append(
            _disagreement(
                ctx,
                beyond,
                Severity.INFO,
                f"the NetworkPolicies admit {_who(beyond)} on "
                f"{'/'.join(map(str, _ports(beyond)))}, yet their probes were blocked: "
                "something besides NetworkPolicy isolates the internode ports",
                "nothing to do if that is meant (a CNI's own policies, a firewall); "
                "netcheck reads only networking.k8s.io NetworkPolicies",
            )
        )
    if all(not p.reached for p in measured):
        unmeasured = len(same) - len(measured)
        blocked = f"{len(measured)} probes from {_who(measured)} were all blocked" + (
            f" ({unmeasured} more not made)" if unmeasured else ""
        )
        holds = [
            i
            for i, f in enumerate(findings)
            if f.code == "INTERNODE_ISOLATION_HOLDS" and f.dst_cluster == ctx
        ]
        for i in holds:
            findings[i] = replace(
                findings[i], summary=f"{findings[i].summary}; the negative probes agree: {blocked}"
            )
        if not holds and not any(
            f.code == "INTERNODE_ISOLATION_MISSING" and f.dst_cluster == ctx for f in findings
        ):
            findings.append(
                Finding(
                    severity=Severity.INFO,
                    code="INTERNODE_ISOLATION_HOLDS",
                    summary=f"{ctx}: no pod that is not a database pod reached 7000/7001: "
                    f"{blocked}",
                    src_cluster=ctx,
                    dst_cluster=ctx,
                    ports=INTERNODE_PORTS,
                    affected_pairs=0,
                    hint="nothing to do",
                )
            )
    return findings


def _disagreement(
    ctx: str, probes: list[OutsiderProbe], severity: Severity, what: str, hint: str
) -> Finding:
    return Finding(
        severity=severity,
        code="NETWORK_POLICY_AUDIT_DISAGREES",
        summary=f"{ctx}: {what}",
        src_cluster=ctx,
        dst_cluster=ctx,
        ports=_ports(probes),
        affected_pairs=len(probes),
        hint=hint,
    )
