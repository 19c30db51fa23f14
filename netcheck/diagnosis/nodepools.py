"""Dedicated node pools: do the database pods have their nodes to themselves?

Mission Control's guide recommends dedicated node pools (or subnets) for database pods: a
noisy neighbour takes CPU, memory and network from Cassandra, and on a shared node a
NetworkPolicy is the only thing between other workloads and the internode ports.

- DATABASE_NODES_SHARED (warning): nodes that run database pods also run other workloads
  (pods that are neither database pods, nor DaemonSet pods, nor in kube-system, nor static).
- DATABASE_NODES_UNTAINTED (info): nodes that run database pods carry no NoSchedule or
  NoExecute taint, so nothing keeps other workloads off them (the database pods tolerate the
  taint of a dedicated pool, or they could not run there).
"""

from __future__ import annotations

from netcheck.diagnosis.findings import group_text
from netcheck.discovery.kube import ContextDiscovery
from netcheck.model.findings import Finding, Severity

KEEPING_OFF = (":NoSchedule", ":NoExecute")
TAINT = "dedicated=cassandra:NoSchedule"


def node_pool_findings(discoveries: list[ContextDiscovery]) -> tuple[Finding, ...]:
    findings: list[Finding] = []
    for d in discoveries:
        db_nodes = sorted({p.node for p in d.database_pods if p.node})
        if not db_nodes:
            continue
        shared = {node: pods for node, pods in d.node_workloads or () if pods}
        if shared:
            said = "; ".join(
                f"{node}: {group_text(list(pods), 'pods')}" for node, pods in sorted(shared.items())
            )
            findings.append(
                Finding(
                    severity=Severity.WARNING,
                    code="DATABASE_NODES_SHARED",
                    summary=f"{d.context}: {len(shared)} of {len(db_nodes)} database nodes also "
                    f"run other workloads ({said})",
                    src_cluster=d.context,
                    dst_cluster=d.context,
                    ports=(),
                    affected_pairs=sum(len(p) for p in shared.values()),
                    hint=f"give the database a node pool of its own: taint its nodes "
                    f"(`kubectl taint nodes NODE {TAINT}`), add the toleration and a "
                    "nodeSelector for that pool to the datacenter's podTemplateSpec, and move "
                    "the other workloads off",
                    dst_scope=", ".join(sorted(shared)),
                )
            )
        taints = {n.name: n.taints for n in d.nodes}
        untainted = [
            n for n in db_nodes if not any(t.endswith(KEEPING_OFF) for t in taints.get(n, ()))
        ]
        if untainted:
            findings.append(
                Finding(
                    severity=Severity.INFO,
                    code="DATABASE_NODES_UNTAINTED",
                    summary=f"{d.context}: nothing keeps other workloads off "
                    f"{group_text(untainted, 'database nodes')} (no NoSchedule or NoExecute "
                    "taint)",
                    src_cluster=d.context,
                    dst_cluster=d.context,
                    ports=(),
                    affected_pairs=0,
                    hint=f"taint the database nodes (`kubectl taint nodes NODE {TAINT}`) and "
                    "tolerate it in the datacenter's podTemplateSpec",
                    dst_scope=", ".join(untainted),
                )
            )
    return tuple(findings)
