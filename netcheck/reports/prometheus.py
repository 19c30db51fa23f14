"""Prometheus exposition of a run. Rack-pair cardinality by default; pod pairs on request."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from netcheck.model.outcome import Outcome
from netcheck.model.paths import cluster_paths
from netcheck.model.probe_table import OUTCOME_CODE
from netcheck.model.report import RunReport, Verdict

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
RACK_LABELS = [
    "src_cluster",
    "src_datacenter",
    "src_rack",
    "dst_cluster",
    "dst_datacenter",
    "dst_rack",
    "port",
    "outcome",
]


class _Latency(Collector):
    """netcheck_probe_latency_seconds from the table's columns: each cluster pair and port's
    latencies sorted once and counted into the buckets (a Histogram's observe() per probe
    costs seconds on a mesh of millions)."""

    def __init__(self, report: RunReport) -> None:
        self._report = report

    def collect(self) -> Iterator[Metric]:
        table = self._report.table
        cluster = {ep.name: ep.cluster for ep in self._report.topology.endpoints}
        of = [cluster[name] for name in table.names]
        opened = OUTCOME_CODE[Outcome.OPEN]
        seconds: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for s, d, port, o, ms in zip(
            table.src, table.dst, table.port, table.outcome, table.latency, strict=True
        ):
            if o == opened and ms == ms:  # NaN: no latency
                seconds[(of[s], of[d], port)].append(ms / 1000)
        family = HistogramMetricFamily(
            "netcheck_probe_latency_seconds",
            "TCP connect latency of open probes by cluster pair and port",
            labels=["src_cluster", "dst_cluster", "port"],
        )
        for (src, dst, port), values in sorted(seconds.items()):
            values.sort()
            buckets = [(_le(le), bisect_right(values, le)) for le in LATENCY_BUCKETS]
            family.add_metric(
                [src, dst, str(port)],
                buckets=[*buckets, ("+Inf", len(values))],
                sum_value=math.fsum(values),
            )
        yield family


def _le(bound: float) -> str:
    """A bucket's bound as prometheus-client writes it (a Histogram's le label)."""
    text: str = floatToGoString(bound)  # type: ignore[no-untyped-call]
    return text


def fill_registry(registry: CollectorRegistry, report: RunReport, pod_pairs: bool = False) -> None:
    pairs = Gauge(
        "netcheck_pairs",
        "Probed pairs by rack pair, port and outcome",
        RACK_LABELS,
        registry=registry,
    )
    for cell in report.cells("rack"):
        for outcome, count in cell.outcomes:
            pairs.labels(*cell.src, *cell.dst, str(cell.port), outcome.value).set(count)
    registry.register(_Latency(report))
    verdict = Gauge(
        "netcheck_run_verdict", "1 for the verdict of the last run", ["verdict"], registry=registry
    )
    for v in Verdict:
        verdict.labels(v.value).set(1 if report.verdict is v else 0)
    Gauge("netcheck_run_duration_seconds", "Wall time of the last run", registry=registry).set(
        report.duration_s
    )
    findings = Gauge(
        "netcheck_findings",
        "Findings of the last run by severity and code",
        ["severity", "code"],
        registry=registry,
    )
    for f in report.findings:
        findings.labels(f.severity.value, f.code).inc()
    # what the alert rules gate on: diagnosed failures, not raw outcomes (7001 refused by a
    # Cassandra 4.0+ node without the legacy SSL port is no failure, and no finding)
    finding_pairs = Gauge(
        "netcheck_finding_pairs",
        "Pairs a finding of the last run covers (all its ports together), by severity, code, "
        "cluster pair and port",
        ["severity", "code", "src_cluster", "dst_cluster", "port"],
        registry=registry,
    )
    for f in report.findings:
        for port in f.ports or (0,):
            finding_pairs.labels(
                f.severity.value, f.code, f.src_cluster, f.dst_cluster, str(port)
            ).inc(f.affected_pairs)
    _paths(registry, report)
    _cassandra(registry, report)
    if pod_pairs:
        up = Gauge(
            "netcheck_pod_pair_up",
            "1 when the pod pair passed on the port, 0 otherwise (only with --prom-pod-pairs)",
            ["src", "dst", "port", "outcome"],
            registry=registry,
        )
        for p in report.probes:
            up.labels(p.src, p.dst, str(p.port), p.outcome.value).set(1 if p.outcome.passed else 0)


def _paths(registry: CollectorRegistry, report: RunReport) -> None:
    """Cluster-pair path series from raw evidence (cardinality: clusters squared)."""
    labels = ["src_cluster", "dst_cluster"]
    rtt = Gauge(
        "netcheck_path_rtt_seconds",
        "SYN round trip by cluster pair (raw probes): median of pair p50s, highest pair p99",
        # not "quantile": Prometheus reserves that label for summaries (promtool rejects it)
        [*labels, "stat"],
        registry=registry,
    )
    loss = Gauge(
        "netcheck_path_loss_ratio",
        "Share of raw SYNs without an answer by cluster pair",
        labels,
        registry=registry,
    )
    mtu = Gauge(
        "netcheck_path_mtu_bytes",
        "Smallest path MTU measured by cluster pair",
        labels,
        registry=registry,
    )
    black_hole = Gauge(
        "netcheck_path_mtu_black_hole",
        "1 when large packets vanish without fragmentation-needed on the cluster pair",
        labels,
        registry=registry,
    )
    for p in cluster_paths(report.topology, report.evidence):
        key = (p.src_cluster, p.dst_cluster)
        if p.sent:
            loss.labels(*key).set(p.loss_pct / 100)
        if p.p50_ms is not None:
            rtt.labels(*key, "p50").set(p.p50_ms / 1000)
        if p.p99_ms is not None:
            rtt.labels(*key, "p99").set(p.p99_ms / 1000)
        if p.path_mtu is not None:
            mtu.labels(*key).set(p.path_mtu)
            black_hole.labels(*key).set(1 if p.black_hole else 0)


def _cassandra(registry: CollectorRegistry, report: RunReport) -> None:
    """Gossip views by datacenter pair (cardinality: DCs squared x states), CQL and Management
    API reads (a handful of results each)."""
    if report.cassandra is None:
        return
    views = Gauge(
        "netcheck_cassandra_view_nodes",
        "Nodes as the views of one datacenter saw them (nodetool status, or the Management API "
        "where nodetool was not run), by state (UN, DN, ...)",
        ["observer_datacenter", "datacenter", "state"],
        registry=registry,
    )
    dc_of = {ep.name: ep.datacenter for ep in report.topology.endpoints}
    counts: Counter[tuple[str, str, str]] = Counter()
    for n in report.cassandra.nodes:
        for observer, state in n.states:
            counts[(dc_of.get(observer, ""), n.datacenter, state)] += 1
    for key, count in counts.items():
        views.labels(*key).set(count)
    reads = Gauge(
        "netcheck_cassandra_cql_reads",
        "Nodes whose system tables the agents read over CQL (ok) or not (the outcome)",
        ["result"],
        registry=registry,
    )
    results = Counter(
        r.failure.outcome.value if r.failure is not None else "ok" for r in report.cassandra.cql
    )
    for result, count in results.items():
        reads.labels(result).set(count)
    mgmt = Gauge(
        "netcheck_cassandra_mgmt_api_reads",
        "Nodes whose Management API the agents read: ready, not_ready, or the outcome",
        ["result"],
        registry=registry,
    )
    answers = Counter(
        r.failure.outcome.value
        if r.failure is not None
        else ("ready" if r.view is not None and r.view.ready else "not_ready")
        for r in report.cassandra.mgmt
    )
    for result, count in answers.items():
        mgmt.labels(result).set(count)


def to_exposition(report: RunReport, pod_pairs: bool = False) -> str:
    registry = CollectorRegistry()
    fill_registry(registry, report, pod_pairs)
    return generate_latest(registry).decode()
