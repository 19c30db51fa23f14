"""netcheck's Grafana dashboards, built with the Grafana Foundation SDK (its Python builders
for Grafana 10.1 and later) and written as JSON next to this file: `make dashboards`.

Every query reads serve's /metrics (reports/prometheus.py and serve/watch.py). Queries that
would give no data while all is well (no failing pair, no node down) add the same selection
times zero, so a panel shows 0 rather than "No data"; tests/test_serve_lab.py runs every
query against a real Prometheus scraping serve on the lab and requires data from each.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DatasourceVariable,
    QueryVariable,
    Row,
)
from grafana_foundation_sdk.builders.prometheus import Dataquery
from grafana_foundation_sdk.builders.stat import Panel as Stat
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as Timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import (
    DashboardCursorSync,
    DataSourceRef,
    DataTransformerConfig,
    VariableRefresh,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

HERE = Path(__file__).parent
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
CLUSTER = 'src_cluster=~"$cluster"'


def query(expr: str, legend: str = "", *, table: bool = False) -> Dataquery:
    q = Dataquery().expr(expr).datasource(DATASOURCE)
    if legend:
        q = q.legend_format(legend)
    if table:
        q = q.instant().format(PromQueryFormat.TABLE)
    return q


def or_zero(expr: str, by: str, of: str) -> str:
    """expr, or 0 for every group of `by` in the series `of` where expr has none."""
    return f"{expr} or (sum by ({by}) ({of}) * 0)"


def base(title: str, uid: str, description: str) -> Dashboard:
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["netcheck", "cassandra", "network"])
        .refresh("1m")
        .time("now-6h", "now")
        .tooltip(DashboardCursorSync.CROSSHAIR)
        .with_variable(DatasourceVariable("datasource").label("Prometheus").type("prometheus"))
        .with_variable(
            QueryVariable("cluster")
            .label("Source cluster")
            .datasource(DATASOURCE)
            .query("label_values(netcheck_pairs, src_cluster)")
            .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
            .multi(True)
            .include_all(True)
            .all_value(".*")
        )
    )


def overview() -> Dashboard:
    return (
        base(
            "netcheck / Overview",
            "netcheck-overview",
            "The verdict of netcheck's runs, the pairs that fail by cluster pair and port, the "
            "findings by code, and serve's own health.",
        )
        .with_row(Row("Verdict"))
        .with_panel(
            Stat()
            .title("Verdict of the last run")
            .description("1 for the verdict of the last run (pass, fail, incomplete)")
            .span(8)
            .with_target(query("netcheck_run_verdict == 1", "{{verdict}}"))
        )
        .with_panel(
            Stat()
            .title("Runs by result")
            .span(8)
            .with_target(query("sum by (result) (netcheck_serve_runs_total)", "{{result}}"))
        )
        .with_panel(
            Stat()
            .title("Seconds since the last run")
            .unit("s")
            .span(8)
            .with_target(query("time() - netcheck_serve_last_run_timestamp_seconds"))
        )
        .with_row(Row("Failing pairs"))
        .with_panel(
            Timeseries()
            .title("Pairs failing, by cluster pair and port (diagnosed)")
            .description(
                "Pairs that error findings cover: refusals by design (7001 on Cassandra 4.0+ "
                "without the legacy SSL port) are not failures"
            )
            .span(12)
            .with_target(
                query(
                    or_zero(
                        "sum by (src_cluster, dst_cluster, port) "
                        f'(netcheck_finding_pairs{{severity="error", {CLUSTER}}})',
                        "src_cluster, dst_cluster, port",
                        f"netcheck_pairs{{{CLUSTER}}}",
                    ),
                    "{{src_cluster}} → {{dst_cluster}} :{{port}}",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("Probed pairs by outcome")
            .span(12)
            .with_target(query(f"sum by (outcome) (netcheck_pairs{{{CLUSTER}}})", "{{outcome}}"))
        )
        .with_row(Row("Findings"))
        .with_panel(
            Table()
            .title("Findings of the last run by code")
            .span(24)
            .with_target(query("sum by (severity, code) (netcheck_findings)", table=True))
        )
        .with_row(Row("serve"))
        .with_panel(
            Timeseries()
            .title("Run duration (p50, p95)")
            .unit("s")
            .span(12)
            .with_target(
                query(
                    "histogram_quantile(0.5, sum by (le) "
                    "(rate(netcheck_serve_run_duration_seconds_bucket[$__rate_interval])))",
                    "p50",
                )
            )
            .with_target(
                query(
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(netcheck_serve_run_duration_seconds_bucket[$__rate_interval])))",
                    "p95",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("Probes per second by outcome")
            .span(12)
            .with_target(
                query(
                    "sum by (outcome) (rate(netcheck_serve_probes_total[$__rate_interval]))",
                    "{{outcome}}",
                )
            )
        )
    )


def rack_heatmap() -> Dashboard:
    """A source rack × destination rack matrix per port: the share of pairs that did not
    pass, colour-graded (a table grouped to a matrix: Grafana's heatmap panel is for time
    buckets)."""
    port_variable = (
        QueryVariable("port")
        .label("Port")
        .datasource(DATASOURCE)
        .query("label_values(netcheck_pairs, port)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .multi(False)
        .include_all(False)
    )
    selection = f'{CLUSTER}, port="$port"'
    share = (
        "sum by (src_cluster, src_rack, dst_cluster, dst_rack) "
        f'(netcheck_pairs{{{selection}, outcome!="open"}})'
        f" / sum by (src_cluster, src_rack, dst_cluster, dst_rack) (netcheck_pairs{{{selection}}})"
    )
    return (
        base(
            "netcheck / Rack pairs",
            "netcheck-rack-pairs",
            "Per port: the share of probed pairs that did not pass, source rack × destination "
            "rack.",
        )
        .with_variable(port_variable)
        .with_panel(
            Table()
            .title("Share of pairs not passing on $port: source rack (rows) × destination rack")
            .span(24)
            .height(14)
            .unit("percentunit")
            .min(0)
            .max(1)
            .with_target(
                query(
                    # rows and columns named cluster/rack (racks are named alike in every
                    # datacenter)
                    "label_join(label_join("
                    + or_zero(
                        share,
                        "src_cluster, src_rack, dst_cluster, dst_rack",
                        f"netcheck_pairs{{{selection}}}",
                    )
                    + ', "source", "/", "src_cluster", "src_rack"), '
                    '"destination", "/", "dst_cluster", "dst_rack")',
                    table=True,
                )
            )
            .with_transformation(
                DataTransformerConfig(
                    id_val="groupingToMatrix",
                    options={
                        "columnField": "destination",
                        "rowField": "source",
                        "valueField": "Value",
                    },
                )
            )
        )
    )


def paths() -> Dashboard:
    return (
        base(
            "netcheck / Paths",
            "netcheck-paths",
            "Round trip, loss and path MTU between the clusters, from the agents' raw probes.",
        )
        .with_panel(
            Timeseries()
            .title("SYN round trip by cluster pair")
            .unit("s")
            .span(12)
            .with_target(
                query(
                    f"netcheck_path_rtt_seconds{{{CLUSTER}}}",
                    "{{src_cluster}} → {{dst_cluster}} {{stat}}",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("Loss by cluster pair")
            .unit("percentunit")
            .span(12)
            .with_target(
                query(
                    f"netcheck_path_loss_ratio{{{CLUSTER}}}",
                    "{{src_cluster}} → {{dst_cluster}}",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("Path MTU by cluster pair")
            .unit("bytes")
            .span(12)
            .with_target(
                query(
                    f"netcheck_path_mtu_bytes{{{CLUSTER}}}",
                    "{{src_cluster}} → {{dst_cluster}}",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("Path MTU black holes")
            .span(12)
            .with_target(
                query(
                    f"netcheck_path_mtu_black_hole{{{CLUSTER}}}",
                    "{{src_cluster}} → {{dst_cluster}}",
                )
            )
        )
    )


def cassandra() -> Dashboard:
    views = "netcheck_cassandra_view_nodes"
    return (
        base(
            "netcheck / Cassandra",
            "netcheck-cassandra",
            "Cassandra's own views next to the network: nodes down per observing datacenter, "
            "and the agents' CQL and Management API reads.",
        )
        .with_panel(
            Timeseries()
            .title("Nodes seen down, by observing datacenter")
            .span(12)
            .with_target(
                query(
                    or_zero(
                        f'sum by (observer_datacenter, datacenter) ({views}{{state=~"D."}})',
                        "observer_datacenter, datacenter",
                        views,
                    ),
                    "{{observer_datacenter}} sees {{datacenter}}",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("Nodes by state, by observing datacenter")
            .span(12)
            .with_target(
                query(
                    f"sum by (observer_datacenter, state) ({views})",
                    "{{observer_datacenter}}: {{state}}",
                )
            )
        )
        .with_panel(
            Timeseries()
            .title("CQL reads of each node's system tables")
            .span(12)
            .with_target(query("netcheck_cassandra_cql_reads", "{{result}}"))
        )
        .with_panel(
            Timeseries()
            .title("Management API reads")
            .span(12)
            .with_target(query("netcheck_cassandra_mgmt_api_reads", "{{result}}"))
        )
    )


DASHBOARDS = {
    "netcheck-overview.json": overview,
    "netcheck-rack-pairs.json": rack_heatmap,
    "netcheck-paths.json": paths,
    "netcheck-cassandra.json": cassandra,
}


def _ref_ids(doc: dict[str, Any]) -> dict[str, Any]:
    """Each panel's queries named A, B, ... (the builders leave refId empty)."""
    for panel in doc.get("panels") or []:
        for i, target in enumerate(panel.get("targets") or []):
            target["refId"] = target.get("refId") or chr(ord("A") + i)
    return doc


def rendered() -> dict[str, str]:
    encoder = JSONEncoder(sort_keys=True, indent=2)
    out = {}
    for name, make in DASHBOARDS.items():
        doc = _ref_ids(json.loads(encoder.encode(make().build())))
        out[name] = json.dumps(doc, sort_keys=True, indent=2) + "\n"
    return out


def main() -> None:
    for name, text in rendered().items():
        (HERE / name).write_text(text, encoding="utf-8")
        json.loads(text)
    print(f"wrote {len(DASHBOARDS)} dashboards to {HERE}", file=sys.stderr)


if __name__ == "__main__":
    main()
