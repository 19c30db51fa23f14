"""Checks on what each node's Management API said (asked by the agent next to it on 8080).

Its readiness is cass-operator's readiness probe: a node that is not ready is left out of the
Service and the datacenter stays unready. Its endpoint states are the node's gossip view; they
feed the same views as nodetool status (see Observation.status_rows), so a cluster where the
collector may not exec into pods still gets every node's view.
"""

from __future__ import annotations

from collections import defaultdict

from netcheck.diagnosis.findings import group_text
from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import MGMT_API_PORT, Observation, ReadFailure
from netcheck.model.outcome import Outcome


def mgmt_findings(obs: list[Observation]) -> list[Finding]:
    out: list[Finding] = []
    failing: dict[ReadFailure, list[str]] = defaultdict(list)
    skipped: dict[str, list[str]] = defaultdict(list)
    for o in obs:
        if o.mgmt is not None and not o.mgmt.ready:
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    code="CASSANDRA_NOT_READY",
                    summary=f"{o.observer}: the Management API answers, but Cassandra is not "
                    f"ready ({o.mgmt.readiness})",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(MGMT_API_PORT,),
                    affected_pairs=1,
                    hint="cass-operator keeps the pod NotReady and clients cannot use it: read "
                    "its log (`kubectl logs POD -c server-system-logger`); the Management API "
                    "starts Cassandra, so a node stopped by hand stays down until it is "
                    "started again",
                    dst_scope=o.observer,
                    location="the node",
                )
            )
        failure = o.mgmt_failure
        if failure is None:
            continue
        if failure.outcome is Outcome.NOT_MEASURED:
            skipped[failure.detail].append(o.observer)
        else:
            failing[failure].append(o.observer)
    for failure, names in failing.items():
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="MGMT_API_UNAVAILABLE",
                summary=f"the Management API on {MGMT_API_PORT} of {group_text(names, 'nodes')} "
                f"does not answer the agent on its own node ({failure})",
                src_cluster="*",
                dst_cluster="*",
                ports=(MGMT_API_PORT,),
                affected_pairs=len(names),
                hint="cass-operator drives the node through it (start, readiness): check the "
                "cassandra container runs and listens on 8080, and that no NetworkPolicy admits "
                "only the operator to 8080; an API that requires mutual TLS (managementApiAuth "
                "manual) is not read by the agents",
                dst_scope=", ".join(sorted(names)),
                outcome=failure.outcome.value,
            )
        )
    for why, names in skipped.items():
        out.append(
            Finding(
                severity=Severity.INFO,
                code="MGMT_API_NOT_CHECKED",
                summary=f"Management API not asked on {group_text(names, 'nodes')}: {why}",
                src_cluster="*",
                dst_cluster="*",
                ports=(MGMT_API_PORT,),
                affected_pairs=len(names),
                hint="the agents ask it on 8080 of the database pods on their node",
            )
        )
    return out
