"""`netcheck serve` without the lab: the loop's contract (one run at a time, the series of a
run replace the last run's, a failed run keeps them and says so, N reports kept) with runs
whose reports are built from the model as a real run builds them (diagnose on results), and
its HTTP side on loopback, read as Prometheus and promtool read it. With the lab and a real
Prometheus scraping it: test_serve_lab.py."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from netcheck.serve.http import serve
from netcheck.serve.watch import Watch, WatchOptions
from netcheck.workflows.run import RunDone
from tests.lab_support import netcheck
from tests.test_reports import dropped_7001, report


def families(text: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(text.decode())}


def samples(text: bytes, name: str) -> list[Any]:
    return families(text)[name].samples if name in families(text) else []


def jobs(*outcomes: object) -> Any:
    """A job that gives these runs in turn: a rule tuple (the report of results_for with
    those rules) or an exception (the run fails)."""
    queue = list(outcomes)

    async def job() -> RunDone:
        await asyncio.sleep(0)
        step = queue.pop(0)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, tuple)
        return RunDone(report=report(*step))

    return job


def test_each_run_replaces_the_series_and_a_failed_run_keeps_them_and_says_so():
    watch = Watch(
        jobs((dropped_7001,), RuntimeError("context DP_WEST: token expired"), ()),
        WatchOptions(interval_s=1),
    )

    async def go() -> list[bytes]:
        seen = []
        for _ in range(3):
            await watch.run_once()
            seen.append(watch.metrics())
        return seen

    first, failed, healed = asyncio.run(go())
    timeouts = [s for s in samples(first, "netcheck_pairs") if s.labels["outcome"] == "timeout"]
    assert timeouts and all(s.labels["port"] == "7001" for s in timeouts)
    # the failed run: the previous series stay, the run is counted as an error and said
    assert samples(failed, "netcheck_pairs") == samples(first, "netcheck_pairs")
    ok = {s.name: s.value for s in samples(failed, "netcheck_serve_last_run_ok")}
    assert ok == {"netcheck_serve_last_run_ok": 0}
    runs = {
        s.labels["result"]: s.value
        for s in samples(failed, "netcheck_serve_runs")
        if s.name.endswith("_total")
    }
    assert runs == {"pass": 0, "fail": 1, "incomplete": 0, "error": 1}
    assert watch.records[1].error == "context DP_WEST: token expired"
    # healed: the timeout series of the pairs that recovered are gone, not left at their value
    assert not [s for s in samples(healed, "netcheck_pairs") if s.labels["outcome"] == "timeout"]
    assert not [s for s in samples(healed, "netcheck_finding_pairs") if s.value]
    verdict = {s.labels["verdict"]: s.value for s in samples(healed, "netcheck_run_verdict")}
    assert verdict["pass"] == 1
    probes = {
        s.labels["outcome"]: s.value
        for s in samples(healed, "netcheck_serve_probes")
        if s.name.endswith("_total")
    }
    # probes are counted over every run that gave a report
    first_timeouts = sum(p.outcome.value == "timeout" for p in report(dropped_7001).probes)
    assert probes["timeout"] == first_timeouts > 0 and probes["open"] > 0
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make install` (Debian package prometheus)"
    check = subprocess.run(
        [promtool, "check", "metrics"], input=healed, capture_output=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_runs_never_overlap_and_the_last_n_reports_are_kept():
    running = 0
    most = 0

    async def slow() -> RunDone:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)  # longer than the interval: the next run waits for it
        running -= 1
        return RunDone(report=report())

    watch = Watch(slow, WatchOptions(interval_s=0.01, jitter=0.5, keep=2, max_runs=4))
    asyncio.run(watch.loop())
    assert (watch.runs, most, len(watch.records), watch.stopped) == (4, 1, 2, True)
    assert watch.last_report(1) is not None and watch.last_report(2) is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_http_side_answers_gets_only_and_what_it_keeps():
    """/healthz answers from the start; before the first run /report is 404, then the JSON of
    `run -o json`; a bad ?back is 400, a POST 405, an unknown path 404; the server stops with
    its loop."""
    port = free_port()
    steps: asyncio.Queue[str] = asyncio.Queue()
    ran: asyncio.Queue[int] = asyncio.Queue()

    async def gated() -> RunDone:
        await steps.get()  # each run waits for the test's word
        ran.put_nowait(1)
        return RunDone(report=report(dropped_7001))

    watch = Watch(gated, WatchOptions(interval_s=0.01, jitter=0, max_runs=2))

    async def go() -> dict[str, Any]:
        task = asyncio.ensure_future(serve(watch, "127.0.0.1", port))
        base = f"http://127.0.0.1:{port}"
        got: dict[str, Any] = {}
        async with aiohttp.ClientSession() as http:
            for _ in range(100):
                try:
                    async with http.get(f"{base}/healthz") as r:
                        got["healthz"] = (r.status, await r.json())
                        break
                except aiohttp.ClientConnectionError:
                    await asyncio.sleep(0.05)
            async with http.get(f"{base}/report") as r:
                got["before"] = r.status
            steps.put_nowait("first")
            await ran.get()
            await asyncio.sleep(0.05)  # the loop records the run
            paths = (
                "/report", "/report?back=x", "/report?back=99999", "/report?probes=all",
                "/report?probes=x", "/nope", "/reports",
            )  # fmt: skip
            for path in (*paths, "/report.html"):
                async with http.get(f"{base}{path}") as r:
                    got[path] = (r.status, await r.text())
            async with http.post(f"{base}/metrics", data=b"x" * 10_000) as r:
                got["post"] = r.status
            async with http.get(f"{base}/metrics") as r:
                got["metrics"] = (r.status, r.headers["Content-Type"], await r.read())
        steps.put_nowait("second")
        await task  # max_runs=2: the loop ends, the server with it
        return got

    got = asyncio.run(go())
    assert got["healthz"][0] == 200 and got["healthz"][1]["status"] in ("running", "waiting")
    assert got["before"] == 404
    status, text = got["/report"]
    doc = json.loads(text)
    assert status == 200 and doc["verdict"] == "fail" and doc["probes_listed"] == "failing"
    assert doc["probes"] and all(p["outcome"] != "open" for p in doc["probes"])
    every = json.loads(got["/report?probes=all"][1])
    assert (
        len(every["probes"]) > len(doc["probes"]) and every["probe_counts"] == doc["probe_counts"]
    )
    assert got["/report?back=x"][0] == 400 and got["/report?back=99999"][0] == 400
    assert got["/report?probes=x"][0] == 400
    assert got["/nope"][0] == 404 and got["post"] == 405
    status, page = got["/report.html"]
    assert status == 200 and 'id="verdict">fail<' in page and 'class="cell fail"' in page
    (row,) = json.loads(got["/reports"][1])
    assert row["result"] == "fail" and row["error"] == ""
    status, kind, body = got["metrics"]
    assert status == 200 and kind.startswith("text/plain")
    assert "netcheck_pairs" in families(body) and "netcheck_serve_runs" in families(body)
    assert watch.stopped


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--listen", "nonsense"], "--listen 'nonsense': write HOST:PORT"),
        (["--listen", "127.0.0.1:70000"], "write HOST:PORT"),
    ],
)
def test_serve_bad_input_is_one_line_and_exit_2(tmp_path, args, words):
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "clusters:\n  - name: A\n    region: r\n    endpoints:\n"
        "      - {name: a, address: 198.18.1.1, agent: 'http://198.18.1.1:9925'}\n"
    )
    token = tmp_path / "tok"
    token.write_text("x" * 32)
    proc = netcheck("serve", "--inventory", str(inventory), "--token-file", str(token), *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_on_a_port_in_use_says_so_before_any_run(tmp_path):
    """The listening socket comes before the first run: a port in use is one line, exit 2,
    and nothing is probed (the agent here would be loopback's discard port anyway)."""
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "clusters:\n  - name: A\n    region: r\n    endpoints:\n"
        "      - {name: a, address: 127.0.0.1, agent: 'http://127.0.0.1:9'}\n"
    )
    token = tmp_path / "tok"
    token.write_text("x" * 32)
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        proc = netcheck(
            "serve", "--inventory", str(inventory), "--token-file", str(token),
            "--listen", f"127.0.0.1:{port}", "--no-cassandra",
        )  # fmt: skip
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"--listen 127.0.0.1:{port}: cannot listen there" in lines[0]


# ---------------------------------------------------------------- alert rules and manifests

ROOT = Path(__file__).parent.parent
RULES = ROOT / "reports" / "prometheus" / "netcheck-rules.yaml"
SERVE = ROOT / "probes" / "serve"


def test_the_alert_rules_pass_promtool_and_their_unit_tests():
    """Each alert fires on its cause and stays quiet without it (7001 refused by design is an
    info finding: no alert), with its runbook text (netcheck-rules.test.yaml)."""
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed by `make install` (Debian package prometheus)"
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0 and "SUCCESS: 6 rules found" in check.stdout, check.stderr
    unit = subprocess.run(
        [promtool, "test", "rules", "netcheck-rules.test.yaml"],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert unit.returncode == 0 and "SUCCESS" in unit.stdout, unit.stdout + unit.stderr
    rules = yaml.safe_load(RULES.read_text())["groups"][0]["rules"]
    assert all(r["annotations"]["runbook"] for r in rules)


def test_the_prometheus_rule_is_the_rules_file_and_serve_runs_unprivileged():
    docs = [d for f in sorted(SERVE.glob("*.yaml")) for d in yaml.safe_load_all(f.read_text())]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"Deployment", "Service", "ServiceMonitor", "PrometheusRule"}
    assert kinds["PrometheusRule"]["spec"] == yaml.safe_load(RULES.read_text())
    pod = kinds["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert kinds["ServiceMonitor"]["spec"]["endpoints"][0]["port"] == "metrics"
    # the Deployment's command line is one serve takes: without its kubeconfig Secret mounted
    # it stops at the kubeconfig, in one line
    args = [a for a in container["args"] if not a.startswith("--kubeconfig")]
    proc = netcheck(*container["command"][1:], "--kubeconfig", "/nonexistent/kubeconfig", *args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and "/nonexistent/kubeconfig" in lines[0]


# ---------------------------------------------------------------- Grafana dashboards

GRAFANA = ROOT / "reports" / "grafana"


def test_the_dashboards_are_what_their_builder_makes_with_the_grafana_sdk():
    """The JSON shipped is the Grafana Foundation SDK's output of reports/grafana/dashboards.py
    (`make dashboards`), typed by the SDK's models; each has the datasource and cluster
    variables, every query goes to the chosen datasource with a refId of its own, and every
    series a query names is one serve exports. That each query returns data is proven against
    a real Prometheus in test_lab_cassandra.py."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dashboards", GRAFANA / "dashboards.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.rendered()
    shipped = {p.name: p.read_text() for p in GRAFANA.glob("*.json")}
    assert built == shipped, "run `make dashboards` and commit the JSON"
    exported = {
        name
        for source in ("netcheck/reports/prometheus.py", "netcheck/serve/watch.py")
        for name in re.findall(r'"(netcheck_[a-z_]+)"', (ROOT / source).read_text())
    }
    for name, text in shipped.items():
        doc = json.loads(text)
        variables = {v["name"]: v for v in doc["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and "cluster" in variables
        for panel in doc["panels"]:
            targets = panel.get("targets") or []
            assert len({t["refId"] for t in targets}) == len(targets), (name, panel["title"])
            for t in targets:
                assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                named = set(re.findall(r"\b(netcheck_[a-z_]+)", t["expr"]))
                unknown = {n for n in named if n.removesuffix("_total").removesuffix("_bucket")
                           not in exported}  # fmt: skip
                assert not unknown, (name, panel["title"], unknown)
