"""`netcheck serve` on the lab, scraped by a real Prometheus (Debian's) that also evaluates the
shipped alert rules: the series arrive, a port dropped in the lab shows in them within two
runs and its alert goes off, and they clear when the fault goes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from netcheck.lab import build, faults
from tests.lab_support import lab_down_keeping_logs, require_root, write_inventory
from tests.test_serve import RULES, free_port

pytestmark = pytest.mark.lab

INTERVAL = 4  # seconds between the starts of serve's runs


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:  # loopback only
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def lab(request, tmp_path_factory):
    require_root()
    failed = request.session.testsfailed
    build.lab_up()
    inventory = str(tmp_path_factory.mktemp("serve") / "inventory.yaml")
    write_inventory(inventory)
    yield inventory
    faults.clear_faults()
    lab_down_keeping_logs(request, failed)


@pytest.fixture
def watched(lab, tmp_path) -> Iterator[tuple[str, str]]:
    """serve on the lab's inventory and a Prometheus scraping it every second: their base
    URLs. Both stopped afterwards (serve by SIGTERM, which it must take as a clean stop)."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is installed by `make install` (Debian package prometheus)"
    serve_port, prom_port = free_port(), free_port()
    serve = subprocess.Popen(
        [
            sys.executable, "-m", "netcheck", "serve", "--inventory", lab,
            "--listen", f"127.0.0.1:{serve_port}", "--interval", str(INTERVAL),
            "--timeout", "1", "--no-cassandra",
        ],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "serve.log").open("w"),
    )  # fmt: skip
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "netcheck",
                        "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"]}],
                    }
                ],
            }
        )
    )
    prom = subprocess.Popen(
        [
            prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.DEVNULL, stderr=(tmp_path / "prometheus.log").open("w"),
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{serve_port}", f"http://127.0.0.1:{prom_port}"
    finally:
        prom.terminate()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        prom.wait(timeout=30)
        said = (tmp_path / "serve.log").read_text()
        assert serve.returncode == 0 and "Traceback" not in said, said


def query(prom: str, expr: str) -> list[Any]:
    url = f"{prom}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    answer = get_json(url)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def runs(serve: str) -> int:
    return int(get_json(f"{serve}/healthz")["runs"])


def wait_for(what: str, check: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            got = check()
        except OSError:
            got = None
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def test_prometheus_scrapes_serve_and_a_dropped_port_shows_and_alerts(watched):
    serve, prom = watched
    # healthy: serve's series and the report's, the verdict pass, no alert
    wait_for(
        "a run scraped", lambda: query(prom, "netcheck_serve_runs_total{result='pass'} > 0"), 90
    )
    open_pairs = query(prom, "sum(netcheck_pairs{outcome='open'})")
    assert float(open_pairs[0]["value"][1]) > 0
    assert query(prom, "netcheck_run_verdict{verdict='pass'} == 1")
    assert not query(prom, "netcheck_finding_pairs{severity='error'} > 0")

    faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
    before = runs(serve)
    failing = wait_for(
        "the dropped port in the series",
        lambda: query(prom, "sum by (port) (netcheck_finding_pairs{severity='error'}) > 0"),
        6 * INTERVAL + 30,
    )
    # within two runs of the fault (the run under way when it came, and the next)
    assert runs(serve) <= before + 2
    assert [r["metric"]["port"] for r in failing] == ["7001"]

    def alerting() -> list[Any]:
        alerts = get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "NetcheckInternodePortFailing"]

    alerts = wait_for("the alert", alerting, 30)
    assert {a["state"] for a in alerts} <= {"pending", "firing"}
    assert {(a["labels"]["src_cluster"], a["labels"]["port"]) for a in alerts} >= {
        ("CP_EAST", "7001")
    }
    names = {a["labels"]["alertname"] for a in get_json(f"{prom}/api/v1/alerts")["data"]["alerts"]}
    assert "NetcheckNoRun" not in names and "NetcheckRunsFailing" not in names

    faults.clear_faults()
    wait_for(
        "the series clear once the fault is gone",
        lambda: not query(prom, "netcheck_finding_pairs{severity='error'} > 0"),
        6 * INTERVAL + 30,
    )
    report = get_json(f"{serve}/report")
    assert report["verdict"] == "pass"
    older = get_json(f"{serve}/report?back=1")
    assert older["verdict"] in ("pass", "fail")
