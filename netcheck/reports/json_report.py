"""The JSON contract of a run (schema: reports/netcheck-run.schema.json)."""

from __future__ import annotations

import json
from typing import Any

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
        "findings": [
            {
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
            }
            for f in report.findings
        ],
    }


def to_json(report: RunReport) -> str:
    return json.dumps(to_dict(report), indent=2) + "\n"
