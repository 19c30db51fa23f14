"""The JSON contract of a run (schema: reports/netcheck-run.schema.json)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from netcheck.agent.wire import evidence_to_json
from netcheck.model.findings import Finding
from netcheck.model.gossip import CqlRead, GossipAnalysis, MgmtRead
from netcheck.model.paths import cluster_paths
from netcheck.model.report import RunReport

SCHEMA_VERSION = 1


def to_dict(report: RunReport) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "verdict": report.verdict.value,
        "started_at": report.started_at,
        "duration_s": round(report.duration_s, 3),
        "endpoints": [
            {
                "name": ep.name,
                "cluster": ep.cluster,
                "region": ep.region,
                "datacenter": ep.datacenter,
                "rack": ep.rack,
                "zone": ep.zone,
                "role": ep.role.value,
                "address": ep.address,
                "namespace": ep.namespace,
                "node": ep.node,
                "probed_from": "pod" if ep.prober else "agent" if ep.agent else "none",
            }
            for ep in report.topology.endpoints
        ],
        "probes": [
            {
                "src": p.src,
                "dst": p.dst,
                "port": p.port,
                "kind": p.kind.value,
                "outcome": p.outcome.value,
                "latency_ms": p.latency_ms,
                "detail": p.detail,
            }
            for p in report.probes
        ],
        "problems": list(report.problems),
        "findings": [finding_doc(f) for f in report.findings],
        "cassandra": cassandra_doc(report.cassandra) if report.cassandra else None,
        "network_policy": [
            {
                "context": r.context,
                "pod": r.pod,
                "port": r.port,
                "admitted": list(r.admitted),
                "refused_database_pods": list(r.refused_database_pods),
                "outsiders_admitted": list(r.outsiders_admitted),
            }
            for r in report.isolation
        ],
        "tls": [
            {
                "node": t.node,
                "port": t.port,
                "handshake": t.handshake,
                "protocol": t.protocol,
                "issuer": t.issuer,
                "subject": t.subject,
                "sans": list(t.sans),
                "not_after": t.not_after,
                "days_left": t.days_left,
                "chain_verified": t.chain_verified,
                "client_auth_required": t.client_auth_required,
                "plaintext_accepted": t.plaintext_accepted,
                "error": t.error,
            }
            for t in report.tls
        ],
        "isolation_probes": [
            {
                "context": o.context,
                "outsider": o.outsider,
                "dst": o.dst,
                "dst_context": o.dst_context,
                "port": o.port,
                "outcome": o.outcome.value,
                "reached": o.reached,
                "detail": o.detail,
            }
            for o in report.outsider_probes
        ],
        "evidence": [
            {
                "src": e.src,
                "dst": e.dst,
                "port": e.port,
                "kind": e.kind.value,
                "outcome": e.outcome.value,
                "detail": e.detail,
                **evidence_to_json(e.evidence),
            }
            for e in report.evidence
        ],
        "paths": [
            {
                "src_cluster": p.src_cluster,
                "dst_cluster": p.dst_cluster,
                "pairs": p.pairs,
                "sent": p.sent,
                "received": p.received,
                "loss_pct": p.loss_pct,
                "p50_ms": p.p50_ms,
                "p99_ms": p.p99_ms,
                "path_mtu": p.path_mtu,
                "local_mtu": p.local_mtu,
                "black_hole": p.black_hole,
                "frag_needed_from": p.frag_needed_from,
            }
            for p in cluster_paths(report.topology, report.evidence)
        ],
    }


def finding_doc(f: Finding) -> dict[str, Any]:
    return {
        "severity": f.severity.value,
        "code": f.code,
        "summary": f.summary,
        "src_cluster": f.src_cluster,
        "dst_cluster": f.dst_cluster,
        "ports": list(f.ports),
        "affected_pairs": f.affected_pairs,
        "hint": f.hint,
        "src_scope": f.src_scope,
        "dst_scope": f.dst_scope,
        "outcome": f.outcome,
        "location": f.location,
        "asymmetric": f.asymmetric,
    }


def cassandra_doc(analysis: GossipAnalysis) -> dict[str, Any]:
    """Nodes as gossip saw them (the findings live with the run's findings)."""
    return {
        "nodes": [
            {
                "address": n.address,
                "name": n.name,
                "datacenter": n.datacenter,
                "rack": n.rack,
                "state": n.state,
                "views": list(n.views),
                "states": {observer: state for observer, state in n.states},
            }
            for n in analysis.nodes
        ],
        "warnings": list(analysis.warnings),
        "expected_closed": [{"endpoint": e, "port": p} for e, p in analysis.expected_closed],
        "cql": [cql_doc(r) for r in analysis.cql],
        "mgmt": [mgmt_doc(r) for r in analysis.mgmt],
        "view_sources": dict(analysis.view_sources),
    }


def mgmt_doc(r: MgmtRead) -> dict[str, Any]:
    """One node's Management API readiness and endpoint states as its agent read them, or why
    it could not."""
    if r.view is None:
        return {"node": r.node, "ok": False, "error": str(r.failure or "not read")}
    return {
        "node": r.node,
        "ok": True,
        "ready": r.view.ready,
        "readiness": r.view.readiness,
        "cluster_name": r.view.cluster_name,
        "endpoints": [dataclasses.asdict(e) for e in r.view.endpoints],
    }


def cql_doc(r: CqlRead) -> dict[str, Any]:
    """One node's system.local and peers as its agent read them, or why it could not."""
    if r.view is None:
        return {"node": r.node, "ok": False, "error": str(r.failure or "not read")}
    return {
        "node": r.node,
        "ok": True,
        "cluster_name": r.view.cluster_name,
        "peers_table": r.view.peers_table,
        "local": dataclasses.asdict(r.view.local),
        "peers": [dataclasses.asdict(p) for p in r.view.peers],
    }


def to_json(report: RunReport) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"
