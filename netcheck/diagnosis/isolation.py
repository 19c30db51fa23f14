"""The static audit of NetworkPolicy isolation of the internode ports (7000, 7001).

Mission Control's multi-region guide requires that only database pods reach the internode
ports. From the policies of the database namespaces as Kubernetes evaluates them
(discovery/netpol.py), per database pod and internode port: may the other database pods reach
it (of its own cluster, and of the other clusters, which its policies know only by address)?
May pods that are not database pods reach it (the netcheck agents, any other pod of the
database namespace, and any pod of another namespace)? And who do the policies let in, in
their own words.

Findings:
- NETWORK_POLICY_BLOCKS_INTERNODE (error): a policy refuses a database pod the internode port
  of another: Cassandra cannot gossip or stream there.
- INTERNODE_ISOLATION_MISSING (warning): pods that are not database pods may reach an internode
  port, as the policies read (whether packets do is for the probes to show).
- INTERNODE_ISOLATION_HOLDS (info): only database pods (and the addresses the policies name)
  may reach the internode ports.
- NETWORK_POLICY_UNREAD (warning): a policy could not be read or parsed: no audit there.
- DATABASE_PORTS_PROBED_FROM_AGENTS (warning): some database pods could not probe for
  themselves (collector/probers.py), so their mesh probes left from the agents; where the
  policies refuse an agent an internode port by design, its failed probe there is not a
  measure of the database's path and becomes not_measured (refused_to_agents).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from netcheck.diagnosis.findings import group_text
from netcheck.discovery.kube import AGENT_LABEL, AGENT_NAME, AgentPod, ContextDiscovery
from netcheck.discovery.netpol import Pod, admitted_peers, evaluate
from netcheck.kube.agentref import split_ref
from netcheck.model.findings import Finding, Severity
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.report import PortIsolation, ProberFallback
from netcheck.model.topology import Topology

INTERNODE_PORTS = (7000, 7001)
# A pod of a namespace no policy names and with no label: any workload of the cluster that is
# not a database pod. The agents are outsiders too, with their real labels.
ANY_POD_NAMESPACE = "any-other-namespace"


def audit(discoveries: list[ContextDiscovery]) -> tuple[PortIsolation, ...]:
    rows = []
    every_db = [(d.context, p) for d in discoveries for p in d.database_pods if p.pod_ip]
    for d in discoveries:
        cluster = d.policy_cluster()
        unread = {ns for ns, _ in d.policy_unread}
        outsiders = _outsiders(d)
        for pod in d.database_pods:
            if not pod.pod_ip or pod.namespace in unread:
                continue
            dst = pod.as_policy_pod()
            for port in INTERNODE_PORTS:
                refused = []
                for ctx, other in every_db:
                    if other is pod:
                        continue
                    same = ctx == d.context
                    v = evaluate(
                        cluster,
                        dst,
                        port,
                        src=other.as_policy_pod() if same else None,
                        src_address=other.pod_ip,
                    )
                    if not v.admitted:
                        refused.append(f"{ctx}/{other.namespace}/{other.name}")
                admitted_outsiders = [
                    name
                    for name, src in outsiders
                    if evaluate(cluster, dst, port, src=src, src_address=src.address).admitted
                ]
                rows.append(
                    PortIsolation(
                        context=d.context,
                        pod=f"{pod.namespace}/{pod.name}",
                        port=port,
                        admitted=admitted_peers(cluster, dst, port),
                        refused_database_pods=tuple(refused),
                        outsiders_admitted=tuple(admitted_outsiders),
                    )
                )
    return tuple(rows)


def _agent_pod(a: AgentPod) -> Pod:
    """An agent as the policies see it: its namespace, its labels as deployed, its address."""
    return Pod(
        namespace="netcheck",
        name=a.name,
        labels={AGENT_LABEL: AGENT_NAME},
        address=a.pod_ip,
        named_ports={},
    )


def _outsiders(d: ContextDiscovery) -> list[tuple[str, Pod]]:
    """The agents (their namespace and labels as deployed), any other pod of each database
    namespace (Reaper, Stargate: a `from: podSelector: {}` admits them), and any pod of
    another namespace."""
    out = [
        (f"netcheck/{a.name}", _agent_pod(a))
        for a in d.agents[:1]  # the agents share their labels: one stands for all
        if a.pod_ip
    ]
    for ns in sorted({p.namespace for p in d.database_pods}):
        out.append(
            (
                f"any other pod of namespace {ns}",
                Pod(namespace=ns, name="any", labels={}, address="0.0.0.0", named_ports={}),
            )
        )
    out.append(
        (
            "any pod of another namespace",
            Pod(
                namespace=ANY_POD_NAMESPACE,
                name="any",
                labels={},
                address="0.0.0.0",
                named_ports={},
            ),
        )
    )
    return out


def _where(rows: list[PortIsolation]) -> tuple[list[str], tuple[int, ...]]:
    """The pods and the ports a group of audit rows is about."""
    return sorted({r.pod for r in rows}), tuple(sorted({r.port for r in rows}))


def isolation_findings(
    discoveries: list[ContextDiscovery], rows: tuple[PortIsolation, ...] | None = None
) -> tuple[Finding, ...]:
    """rows: the audit of these discoveries when the caller has it already."""
    rows = audit(discoveries) if rows is None else rows
    findings: list[Finding] = []
    for d in discoveries:
        if d.policy_unread:
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="NETWORK_POLICY_UNREAD",
                    summary=f"{d.context}: {d.policy_unread[0][1]}; the isolation audit of "
                    f"namespace {d.policy_unread[0][0]} is not done"
                    + (f" (+{len(d.policy_unread) - 1} more)" if len(d.policy_unread) > 1 else ""),
                    src_cluster=d.context,
                    dst_cluster=d.context,
                    ports=INTERNODE_PORTS,
                    affected_pairs=0,
                    hint="grant `list networkpolicies` in the database namespaces "
                    "(probes/rbac/netcheck-user.yaml); a policy netcheck cannot parse is a bug "
                    "to report with the policy",
                )
            )
    for ctx in dict.fromkeys(r.context for r in rows):
        mine = [r for r in rows if r.context == ctx]
        blocked = [r for r in mine if r.refused_database_pods]
        if blocked:
            pods, ports = _where(blocked)
            sources = sorted({s for r in blocked for s in r.refused_database_pods})
            findings.append(
                Finding(
                    severity=Severity.ERROR,
                    code="NETWORK_POLICY_BLOCKS_INTERNODE",
                    summary=f"{ctx}: the NetworkPolicies refuse "
                    f"{group_text(sources, 'database pods')} on "
                    f"{'/'.join(map(str, ports))} of {group_text(pods, 'pods')}",
                    src_cluster="*",
                    dst_cluster=ctx,
                    ports=ports,
                    affected_pairs=sum(len(r.refused_database_pods) for r in blocked),
                    hint="admit the database pods on tcp/7000 and tcp/7001: an ingress rule from "
                    "podSelector cassandra.datastax.com/cluster=<cluster> in the database "
                    "namespace, and an ipBlock for each other cluster's pod CIDR",
                    dst_scope=", ".join(pods),
                )
            )
        exposed = [r for r in mine if r.outsiders_admitted]
        if exposed:
            pods, ports = _where(exposed)
            who = list(dict.fromkeys(o for r in exposed for o in r.outsiders_admitted))
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="INTERNODE_ISOLATION_MISSING",
                    summary=f"{ctx}: the NetworkPolicies let {', '.join(who)} reach "
                    f"{'/'.join(map(str, ports))} of {group_text(pods, 'database pods')}",
                    src_cluster=ctx,
                    dst_cluster=ctx,
                    ports=ports,
                    affected_pairs=len(exposed),
                    hint="the guide requires that only database pods reach 7000/7001: apply a "
                    "NetworkPolicy in each database namespace that selects the database pods "
                    "and admits tcp/7000 and tcp/7001 from podSelector "
                    "cassandra.datastax.com/cluster=<cluster> and from each other cluster's "
                    "pod CIDR (ipBlock), keeping 8080 and 9042 open to their clients",
                    dst_scope=", ".join(pods),
                )
            )
        elif not blocked and mine:
            admitted = sorted({a for r in mine for a in r.admitted})
            findings.append(
                Finding(
                    severity=Severity.INFO,
                    code="INTERNODE_ISOLATION_HOLDS",
                    summary=f"{ctx}: only database pods reach 7000/7001 as the NetworkPolicies "
                    f"read: {'; '.join(admitted)}",
                    src_cluster=ctx,
                    dst_cluster=ctx,
                    ports=INTERNODE_PORTS,
                    affected_pairs=0,
                    hint="nothing to do",
                )
            )
    return tuple(findings)


def refused_to_agents(
    discoveries: list[ContextDiscovery], topology: Topology, results: Sequence[ProbeResult]
) -> tuple[ProbeResult, ...]:
    """The results with each failed internode probe that left from an agent (a database pod
    without its own prober) to a database pod whose policies refuse that agent turned into
    not_measured: the policy doing its job says nothing of the database's own path. A probe
    that got through although the policies refuse it stays (the enforcement disagrees)."""
    eps = {ep.name: ep for ep in topology.endpoints}
    by_context = {d.context: d for d in discoveries}
    unread = {(d.context, ns) for d in discoveries for ns, _ in d.policy_unread}
    out = []
    for r in results:
        src, dst = eps.get(r.src), eps.get(r.dst)
        if (
            src is None
            or dst is None
            or src.prober is not None
            or src.agent is None
            or r.port not in INTERNODE_PORTS
            or not r.outcome.failed
            or (dst.cluster, dst.namespace) in unread
        ):
            out.append(r)
            continue
        ref = split_ref(src.agent)
        d_src, d_dst = by_context.get(src.cluster), by_context.get(dst.cluster)
        agent = next((a for a in d_src.agents if ref and a.name == ref[2]), None) if d_src else None
        pod = (
            next((p for p in d_dst.database_pods if p.pod_ip == dst.address), None)
            if d_dst
            else None
        )
        if agent is None or pod is None or d_src is None or d_dst is None:
            out.append(r)
            continue
        cluster = d_dst.policy_cluster()
        same = d_src is d_dst
        verdict = evaluate(
            cluster,
            pod.as_policy_pod(),
            r.port,
            src=_agent_pod(agent),
            src_address=agent.pod_ip,
            src_cluster=cluster if same else d_src.policy_cluster(),
        )
        if verdict.admitted:
            out.append(r)
            continue
        out.append(
            replace(
                r,
                outcome=Outcome.NOT_MEASURED,
                detail=f"sent by netcheck agent {agent.name}, which the NetworkPolicies of "
                f"{pod.namespace} refuse on {r.port} by design ({r.outcome.value} as expected); "
                "the pod could not probe for itself: see DATABASE_PORTS_PROBED_FROM_AGENTS",
            )
        )
    return tuple(out)


# the two ways a database pod is probed when netcheck's container cannot be added to it:
# (severity, code, how its probes left, what that does, the fix)
_FALLBACKS = {
    True: (
        Severity.INFO,
        "DATABASE_PORTS_PROBED_FROM_SHELL",
        "from the pods' own cassandra container with bash's /dev/tcp, since netcheck's "
        "container could not be added",
        "TCP connects and the Management API's liveness GET, with the pods' identity; a TLS "
        "handshake (legacy 7001), the TLS looks and raw evidence do not leave from these pods, "
        "and probes that need them are reported not_measured",
        "for every probe from the pods themselves: grant 'patch' on "
        "'pods/ephemeralcontainers' in the database namespaces (netcheck-cassandra-exec in "
        "probes/rbac/netcheck-user.yaml) and allow ephemeral containers of the agent image",
    ),
    False: (
        Severity.WARNING,
        "DATABASE_PORTS_PROBED_FROM_AGENTS",
        "from the netcheck agents on their nodes, not from the pods",
        "a NetworkPolicy that admits only database pods makes such probes fail, and those are "
        "reported not_measured",
        "let netcheck add its container to the database pods: grant 'patch' on "
        "'pods/ephemeralcontainers' and 'get, create' on 'pods/exec' in the database "
        "namespaces (netcheck-cassandra-exec in probes/rbac/netcheck-user.yaml) and allow "
        "ephemeral containers of the agent image there",
    ),
}


def prober_findings(fallbacks: tuple[ProberFallback, ...]) -> tuple[Finding, ...]:
    """One finding per way and reason the database pods could not probe from netcheck's
    container: info where their own shell probed, a warning where their agents did."""
    groups: dict[tuple[bool, str], list[str]] = {}
    for f in fallbacks:
        groups.setdefault((f.shell, f.reason), []).append(f.endpoint)
    out = []
    for (shell, reason), pods in sorted(groups.items(), key=lambda g: not g[0][0]):
        severity, code, how, means, hint = _FALLBACKS[shell]
        out.append(
            Finding(
                severity=severity,
                code=code,
                summary=f"7000/7001/8080 of {group_text(sorted(pods), 'database pods')} were "
                f"probed {how} ({reason}): {means}",
                src_cluster=_context_of(reason),
                dst_cluster="*",
                ports=(7000, 7001, 8080),
                affected_pairs=len(pods),
                hint=hint,
                src_scope=", ".join(sorted(pods)),
            )
        )
    return tuple(out)


def _context_of(reason: str) -> str:
    return (
        reason.removeprefix("context ").split(":", 1)[0] if reason.startswith("context ") else "*"
    )


__all__ = [
    "PortIsolation",
    "audit",
    "isolation_findings",
    "prober_findings",
    "refused_to_agents",
]
