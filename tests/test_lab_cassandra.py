"""Real Apache Cassandra 5.0 in the lab: healthy, a dropped 7000 between regions, a node
without internode TLS. Each step checks what a user would: nodetool's view, the logs, and
netcheck's top finding."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from netcheck.lab import build, cassandra, faults
from netcheck.lab.spec import spec_from_yaml
from tests.lab_support import (
    lab_down_keeping_logs,
    netcheck,
    require_root,
    run_json,
    write_inventory,
)

pytestmark = pytest.mark.lab

SPEC = """
clusters:
  - name: CP_EAST
    short: cp
    region: east
    control_plane: true
    datacenters:
      - name: dc1
        racks: [{name: r1, zone: east-a, pods: 1}, {name: r2, zone: east-b, pods: 1}]
  - name: DP_WEST
    short: dp
    region: west
    datacenters:
      - name: dc2
        racks: [{name: r1, zone: west-a, pods: 1}, {name: r2, zone: west-b, pods: 1}]
"""
EAST = ("cp-dc1-r1-p0", "cp-dc1-r2-p0")
WEST = ("dp-dc2-r1-p0", "dp-dc2-r2-p0")


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    require_root()
    failed = request.session.testsfailed
    state, _ = build.lab_up(spec_from_yaml(SPEC, "test spec"), cassandra=True)
    inventory = str(tmp_path_factory.mktemp("cassandra") / "inventory.yaml")
    write_inventory(inventory)
    yield state, inventory
    lab_down_keeping_logs(request, failed)


def nodetool_status(state: dict, node: str) -> dict[str, str]:
    """address -> state, as `nodetool status` on node prints it."""
    proc = subprocess.run(
        cassandra.nodetool_argv(state, node, ["status"]),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return {
        line.split()[1]: line.split()[0]
        for line in proc.stdout.splitlines()
        if line[:2] in ("UN", "DN", "UJ", "UL", "UM", "DL", "DJ", "DM")
    }


def address(state: dict, name: str) -> str:
    return next(h["address"] for h in state["hosts"] if h["name"] == name)


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(2)
    pytest.fail(f"{what} within {timeout_s:.0f}s")


def since(t0: float) -> str:
    return str(int(time.monotonic() - t0) + 2)


def test_healthy_cluster_passes_with_every_node_up_in_every_view(lab):
    state, inventory = lab
    # no wait here: `lab up --cassandra` returned once every node took the CQL login and
    # listed all its peers (lab/cql_ready.py), so the first run must already pass
    t0 = time.monotonic()
    run = run_json(inventory, "--logs-since", since(t0))
    assert run.code == 0, (run.report["findings"], run.stderr)
    assert run.report["verdict"] == "pass"
    nodes = run.report["cassandra"]["nodes"]
    assert sorted(n["name"] for n in nodes) == sorted(EAST + WEST)
    for n in nodes:
        assert n["state"] == "UN"
        assert sorted(n["views"]) == sorted(EAST + WEST)  # every node's status listed it
        assert set(n["states"].values()) == {"UN"}
    assert {(n["name"], n["datacenter"]) for n in nodes} == {
        *((e, "dc1") for e in EAST),
        *((w, "dc2") for w in WEST),
    }
    codes = [f["code"] for f in run.report["findings"]]
    # 4.0+ without the legacy port: 7001 refused is normal and said once, not a failure
    assert "LEGACY_SSL_PORT_UNUSED" in codes
    assert not [f for f in run.report["findings"] if f["severity"] != "info"]
    assert sorted(
        (c["endpoint"], c["port"]) for c in run.report["cassandra"]["expected_closed"]
    ) == sorted((n, 7001) for n in EAST + WEST)
    # CQL: each node's own agent logged in and read its system tables
    cql = {c["node"]: c for c in run.report["cassandra"]["cql"]}
    assert sorted(cql) == sorted(EAST + WEST)
    for name, c in cql.items():
        assert c["ok"] and c["cluster_name"] == "netcheck-lab", c
        assert c["peers_table"] == "system.peers_v2"
        local = c["local"]
        assert (local["address"], local["release_version"]) == (address(state, name), "5.0.8")
        assert (local["datacenter"], local["rack"]) == ("dc1" if name in EAST else "dc2", name[7:9])
        peers = {p["address"]: p for p in c["peers"]}
        assert sorted(peers) == sorted(address(state, o) for o in EAST + WEST if o != name)
        assert {p["host_id"] for p in peers.values()} == {
            cql[o]["local"]["host_id"] for o in EAST + WEST if o != name
        }
    # the Management API on each pod's 8080: ready, and its gossip view agrees with nodetool's
    assert run.report["cassandra"]["view_sources"] == {n: "nodetool" for n in EAST + WEST}
    api = {m["node"]: m for m in run.report["cassandra"]["mgmt"]}
    assert sorted(api) == sorted(EAST + WEST)
    for m in api.values():
        assert m["ok"] and m["ready"] and m["readiness"] == "OK", m
        assert m["cluster_name"] == "netcheck-lab"
        endpoints = {e["address"]: e for e in m["endpoints"]}
        assert sorted(endpoints) == sorted(address(state, o) for o in EAST + WEST)
        for o in EAST + WEST:
            e = endpoints[address(state, o)]
            assert e["alive"] and e["status"] == "NORMAL"
            assert e["host_id"] == cql[o]["local"]["host_id"]
            assert (e["datacenter"], e["rack"]) == ("dc1" if o in EAST else "dc2", o[7:9])
    # every pod reaches every other pod's Management API (liveness)
    on_8080 = [p for p in run.report["probes"] if p["port"] == 8080 and p["kind"] == "http"]
    assert len(on_8080) == 12 and all(p["outcome"] == "open" for p in on_8080)


def test_cql_login_refused_is_named_and_the_run_is_incomplete(lab):
    _, inventory = lab
    password = Path(build.cql_secret_dir()) / "password"
    password.write_text("not-the-password\n")  # the agents read it again for each probe
    try:
        run = run_json(inventory, "--logs-since", "30")
    finally:
        password.write_text("cassandra\n")
    assert run.code == 3, run.stderr  # credentials were given and do not work: incomplete
    refused = [f for f in run.report["findings"] if f["code"] == "CQL_LOGIN_REFUSED"]
    assert len(refused) == 1 and refused[0]["affected_pairs"] == 4
    assert "Provided username cassandra and/or password are incorrect" in refused[0]["summary"]
    assert "netcheck-cql" in refused[0]["hint"]
    assert all(not c["ok"] for c in run.report["cassandra"]["cql"])
    assert any("login was refused" in p for p in run.report["problems"])
    # nodetool and the network are unaffected
    assert all(n["state"] == "UN" for n in run.report["cassandra"]["nodes"])


def test_dropping_7000_between_regions_is_the_cause_of_gossip_down(lab):
    state, inventory = lab
    t0 = time.monotonic()
    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7000)
    try:
        other = {e: {address(state, w) for w in WEST} for e in EAST}
        other.update({w: {address(state, e) for e in EAST} for w in WEST})
        # each node's failure detector convicts on its own clock: wait for every view
        wait_for(
            lambda: all(
                nodetool_status(state, node).get(a) == "DN"
                for node, peers in other.items()
                for a in peers
            ),
            120,
            "gossip did not mark the other region DN in every view",
        )
        prom = Path(inventory).with_name("drop.prom")
        run = run_json(inventory, "--logs-since", since(t0), "--prom-file", str(prom))
    finally:
        faults.clear_faults()
    assert run.code == 1
    # Prometheus: each region's views count the other region DN (2 views x 2 nodes)
    text = prom.read_text()
    check = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    views = {
        (s.labels["observer_datacenter"], s.labels["datacenter"], s.labels["state"]): s.value
        for f in text_string_to_metric_families(text)
        if f.name == "netcheck_cassandra_view_nodes"
        for s in f.samples
    }
    assert views == {
        ("dc1", "dc1", "UN"): 4,
        ("dc1", "dc2", "DN"): 4,
        ("dc2", "dc2", "UN"): 4,
        ("dc2", "dc1", "DN"): 4,
    }
    findings = run.report["findings"]
    top = findings[0]
    assert top["code"] == "FIREWALL_DROP"
    assert top["ports"] == [7000]
    assert {top["src_cluster"], top["dst_cluster"]} == {"CP_EAST", "DP_WEST"}
    assert "gossip:" in top["summary"]  # it says which gossip views it explains
    # every east view sees the west down and the reverse; all explained by the drop
    by_name = {n["name"]: n for n in run.report["cassandra"]["nodes"]}
    for w in WEST:
        for e in EAST:
            assert by_name[w]["states"][e] == "DN"
            assert by_name[e]["states"][w] == "DN"
    gossip_down = [f for f in findings if f["code"] == "GOSSIP_DOWN"]
    assert gossip_down and all("explained by FIREWALL_DROP" in f["summary"] for f in gossip_down)
    assert sum(f["affected_pairs"] for f in gossip_down) == 8  # 2 east x 2 west, both ways
    # the logs show the connect timeouts, tied to the same cause
    logged = [f for f in findings if f["code"] == "LOG_INTERNODE_CONNECT_ERRORS"]
    assert any(
        "connect timeout" in f["summary"] and "FIREWALL_DROP" in f["summary"] for f in logged
    )
    assert not [f for f in findings if f["code"] == "GOSSIP_DOWN_NETWORK_OK"]
    # the matrix agrees: 7000 filtered across regions only
    failing = {k: v for k, v in run.failing().items() if k[2] == 7000}
    assert set(failing.values()) == {"filtered"}
    assert {(s[:2], d[:2]) for s, d, _ in failing} == {("cp", "dp"), ("dp", "cp")}
    # and it heals: gossip marks everyone UP again once the fault is gone
    cassandra.wait_gossip(state, build.state_dir(), 90)


def test_prometheus_scrapes_serve_every_dashboard_query_has_data_and_a_drop_alerts(lab, tmp_path):
    """`netcheck serve` on this lab with a real Prometheus scraping it every second and
    evaluating the shipped rules: the series arrive and every query of every shipped dashboard
    returns data; 7001 dropped between the regions shows in the series within two runs of
    serve and NetcheckInternodePortFailing goes off; both clear when the fault goes."""
    from tests.prometheus_support import (
        dashboard_queries,
        get_json,
        query,
        runs,
        wait_for,
        watching,
    )

    _, inventory = lab
    faults.clear_faults()
    with watching(inventory, tmp_path) as (serve, prom):
        wait_for(
            "a passing run scraped",
            lambda: query(prom, "netcheck_serve_runs_total{result='pass'} > 0"),
            180,
        )
        assert query(prom, "netcheck_run_verdict{verdict='pass'} == 1")
        assert not query(prom, "netcheck_finding_pairs{severity='error'} > 0")
        # the rates of serve's counters need two runs in their window
        wait_for(
            "two runs scraped", lambda: query(prom, "sum(netcheck_serve_runs_total) >= 2"), 120
        )
        time.sleep(2)
        empty = [(d, t) for d, t, expr in dashboard_queries() if not query(prom, expr)]
        assert not empty, empty

        faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
        before = runs(serve)
        failing = wait_for(
            "the dropped port in the series",
            lambda: query(prom, "sum by (port) (netcheck_finding_pairs{severity='error'}) > 0"),
            120,
        )
        # within two runs of the fault (the run under way when it came, and the next)
        assert runs(serve) <= before + 2, (runs(serve), before)
        assert [r["metric"]["port"] for r in failing] == ["7001"]

        def alerting() -> list[dict[str, Any]]:
            alerts = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
            return [a for a in alerts if a["labels"]["alertname"] == "NetcheckInternodePortFailing"]

        alerts = wait_for("the alert", alerting, 30)
        assert {a["state"] for a in alerts} <= {"pending", "firing"}
        assert ("CP_EAST", "7001") in {
            (a["labels"]["src_cluster"], a["labels"]["port"]) for a in alerts
        }
        others = {
            a["labels"]["alertname"] for a in get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
        }
        assert not others & {"NetcheckNoRun", "NetcheckRunsFailing"}, others

        faults.clear_faults()
        wait_for(
            "the series clear once the fault is gone",
            lambda: not query(prom, "netcheck_finding_pairs{severity='error'} > 0"),
            120,
        )
        last = get_json(f"{serve}/report")
        (tmp_path / "last.json").write_text(json.dumps(last, indent=1))
        assert last["verdict"] == "pass", tmp_path / "last.json"


def test_node_without_internode_tls_is_found_by_its_handshake_failures(lab):
    _, inventory = lab
    node = WEST[1]
    t0 = time.monotonic()
    proc = netcheck("lab", "cassandra", "restart", node, "--internode-encryption", "none")
    assert proc.returncode == 0, proc.stderr
    # real Cassandra: its peers refuse its plaintext, it finds no seed and stops
    assert "Unable to gossip with any peers" in proc.stdout
    try:
        run = run_json(inventory, "--logs-since", since(t0))
    finally:
        restore = netcheck("lab", "cassandra", "restart", node)
    assert restore.returncode == 0 and restore.stdout.strip().endswith("started"), restore
    assert run.code == 1
    findings = run.report["findings"]
    top = findings[0]
    assert top["code"] == "INTERNODE_TLS_MISMATCH"
    assert top["dst_scope"] == node
    assert "not an SSL/TLS record" in top["summary"]
    assert "plaintext" in top["summary"]
    codes = [f["code"] for f in findings]
    assert "UNABLE_TO_GOSSIP" in codes
    # the refused 7000 on it is a consequence, ranked after the cause
    refused = [
        f
        for f in findings
        if f["dst_scope"] == node
        and 7000 in f["ports"]
        and f["code"] in ("PORT_CLOSED", "PORT_REFUSED")
    ]
    assert refused and "Cassandra is not running there" in refused[0]["summary"]
    assert codes.index(refused[0]["code"]) > codes.index("INTERNODE_TLS_MISMATCH")
    # nodetool could not run on the stopped node: said, not hidden
    assert any(node in p for p in run.report["problems"])
    # its Management API (alive, as in a real pod) says Cassandra is not ready
    not_ready = [f for f in findings if f["code"] == "CASSANDRA_NOT_READY"]
    assert [f["dst_scope"] for f in not_ready] == [node]
    assert "Internal connection to Cassandra closed" in not_ready[0]["summary"]
    api = {m["node"]: m for m in run.report["cassandra"]["mgmt"]}
    assert api[node]["ok"] and not api[node]["ready"]
