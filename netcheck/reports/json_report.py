"""The JSON contract of a run (schema: reports/netcheck-run.schema.json).

Written as it goes (write_json): a 1,000-pod mesh has four million probes, and the document
is never held whole in memory. By default `probes` lists the probes that failed or were not
measured, and `probe_counts` counts every outcome per (source rack, destination rack, port);
`probes="all"` lists every probe as well.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from typing import IO, Any

from netcheck.agent.podshell import is_shell
from netcheck.agent.wire import evidence_to_json
from netcheck.model.findings import Finding
from netcheck.model.gossip import CqlRead, GossipAnalysis, MgmtRead
from netcheck.model.paths import cluster_paths
from netcheck.model.probe import ProbeResult
from netcheck.model.probe_table import KINDS, OUTCOMES, ProbeTable
from netcheck.model.report import RunReport
from netcheck.model.topology import Endpoint

SCHEMA_VERSION = 2
PROBES_LISTED = ("failing", "all")  # failing: failed or not measured


def to_dict(report: RunReport, probes: str = "all") -> dict[str, Any]:
    """The document as one dict (small reports, tests); write_json streams the same."""
    doc: dict[str, Any] = json.loads(to_json(report, probes=probes))
    return doc


def _head(report: RunReport) -> dict[str, Any]:
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
                "probed_from": _probed_from(ep),
            }
            for ep in report.topology.endpoints
        ],
    }


def _probed_from(ep: Endpoint) -> str:
    """pod (netcheck's container in it), pod_shell (its cassandra container's bash), agent."""
    if ep.prober:
        return "pod_shell" if is_shell(ep.prober) else "pod"
    return "agent" if ep.agent else "none"


def _tail(report: RunReport) -> dict[str, Any]:
    return {
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


def probe_doc(p: ProbeResult) -> dict[str, Any]:
    return {
        "src": p.src,
        "dst": p.dst,
        "port": p.port,
        "kind": p.kind.value,
        "outcome": p.outcome.value,
        "latency_ms": p.latency_ms,
        "detail": p.detail,
    }


def probe_counts(report: RunReport) -> list[dict[str, Any]]:
    """Every probe's outcome counted per (source rack, destination rack, port)."""
    return [
        {
            "src_cluster": c.src[0],
            "src_datacenter": c.src[1],
            "src_rack": c.src[2],
            "dst_cluster": c.dst[0],
            "dst_datacenter": c.dst[1],
            "dst_rack": c.dst[2],
            "port": c.port,
            "outcomes": {o.value: n for o, n in c.outcomes},
        }
        for c in report.cells("rack")
    ]


def _listed(report: RunReport, probes: str) -> Iterator[int]:
    """The rows of the table the document lists."""
    table = report.table
    return iter(range(len(table))) if probes == "all" else table.not_open_rows()


def _compact(table: ProbeTable, rows: Iterator[int]) -> Iterator[str]:
    """probe_doc(row) as compact JSON, written from the columns: each name, kind, outcome
    and text is encoded once, not once per probe (json.dumps of a dict per probe costs
    seconds on a mesh of millions). Byte for byte what json.dumps writes."""
    dumps = json.dumps
    names = [dumps(n) for n in table.names]
    kinds = [dumps(k.value) for k in KINDS]
    outcomes = [dumps(o.value) for o in OUTCOMES]
    texts: dict[int, str] = {}
    src, dst, port, kind, outcome = table.src, table.dst, table.port, table.kind, table.outcome
    latency, detail = table.latency, table.detail
    for i in rows:
        ms = latency[i]
        d = detail[i]
        text = texts.get(d)
        if text is None:
            text = texts[d] = dumps(table.texts[d])
        yield "".join(
            (
                '{"src":',
                names[src[i]],
                ',"dst":',
                names[dst[i]],
                ',"port":',
                str(port[i]),
                ',"kind":',
                kinds[kind[i]],
                ',"outcome":',
                outcomes[outcome[i]],
                ',"latency_ms":',
                "null" if ms != ms else repr(ms) if ms - ms == 0 else dumps(ms),  # NaN: None
                ',"detail":',
                text,
                "}",
            )
        )


def write_json(
    report: RunReport, out: IO[str], *, indent: int | None = None, probes: str = "failing"
) -> None:
    """The document, written to out as it is made (compact unless indent): the listed probes
    one at a time, never the whole list as objects."""
    if probes not in PROBES_LISTED:
        raise ValueError(f"probes must be one of {PROBES_LISTED}, not {probes!r}")
    pad = "\n" + " " * indent if indent is not None else ""
    colon = ": " if indent is not None else ":"

    def value(v: Any, depth: int) -> str:
        text = json.dumps(v, indent=indent, separators=None if indent is not None else (",", ":"))
        return text.replace("\n", "\n" + " " * (indent or 0) * depth) if indent else text

    def key(k: str, first: bool = False) -> None:
        out.write(("" if first else ",") + pad + json.dumps(k) + colon)

    out.write("{")
    first = True
    for k, v in _head(report).items():
        key(k, first)
        first = False
        out.write(value(v, 1))
    key("probes_listed")
    out.write(json.dumps(probes))
    key("probes")
    out.write("[")
    inner = pad + " " * (indent or 0) if indent is not None else ""
    written = 0
    rows = _listed(report, probes)
    table = report.table
    docs = (
        _compact(table, rows)
        if indent is None
        else (value(probe_doc(table.row(i)), 2) for i in rows)
    )
    for doc in docs:
        out.write(("," if written else "") + inner + doc)
        written += 1
    out.write((pad if written else "") + "]")
    key("probe_counts")
    out.write(value(probe_counts(report), 1))
    for k, v in _tail(report).items():
        key(k)
        out.write(value(v, 1))
    out.write(("\n" if indent is not None else "") + "}\n")


def to_json(report: RunReport, *, indent: int | None = 2, probes: str = "failing") -> str:
    buf = io.StringIO()
    write_json(report, buf, indent=indent, probes=probes)
    return buf.getvalue()
