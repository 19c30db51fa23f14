"""`netcheck serve` on a lab inventory with a real Prometheus (Debian's) scraping it every
second and evaluating the shipped alert rules; used by test_lab_cassandra.py, whose lab has
Cassandra, so every series and every dashboard query has something to show."""

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
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from tests.test_serve import RULES, free_port

DASHBOARDS = Path(__file__).parent.parent / "reports" / "grafana"

INTERVAL = 4  # seconds between the starts of serve's runs


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:  # loopback only
        return json.loads(answer.read())


@contextmanager
def watching(inventory: str, tmp_path: Path, *serve_args: str) -> Iterator[tuple[str, str]]:
    """serve on the lab's inventory and a Prometheus scraping it every second: their base
    URLs. Both stopped afterwards (serve by SIGTERM, which it must take as a clean stop)."""
    prometheus = shutil.which("prometheus")
    assert prometheus, "prometheus is installed by `make install` (Debian package prometheus)"
    serve_port, prom_port = free_port(), free_port()
    serve_log = (tmp_path / "serve.log").open("w")
    prom_log = (tmp_path / "prometheus.log").open("w")
    serve = subprocess.Popen(
        [
            sys.executable, "-m", "netcheck", "serve", "--inventory", inventory,
            "--listen", f"127.0.0.1:{serve_port}", "--interval", str(INTERVAL),
            "--timeout", "1", *serve_args,
        ],
        stdout=subprocess.DEVNULL, stderr=serve_log,
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
        stdout=subprocess.DEVNULL, stderr=prom_log,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{serve_port}", f"http://127.0.0.1:{prom_port}"
    finally:
        prom.terminate()
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)
        prom.wait(timeout=30)
        serve_log.close()
        prom_log.close()
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


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel, expr) of every query of every shipped dashboard, its variables
    filled as a user's first look fills them: every cluster, the first port."""
    out = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        doc = json.loads(path.read_text())
        for panel in doc["panels"]:
            for target in panel.get("targets") or []:
                expr = (
                    target["expr"]
                    .replace("$cluster", ".*")
                    .replace("$port", "7000")
                    .replace("$__rate_interval", "1m")
                )
                out.append((path.name, panel["title"], expr))
    return out
