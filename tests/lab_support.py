"""Running netcheck against the real lab, as a user would: the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import pytest

from netcheck.discovery.inventory import dump_inventory
from netcheck.lab import build
from netcheck.lab.inventory import lab_topology
from netcheck.model.topology import Topology


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("the lab tests need root (network namespaces): run `make test`", False)


def require_agent_image() -> str:
    """The agent image id, when the one in storage was built from these sources: the lab's
    Kubernetes runs it for the agent pods (a stale one would test old code)."""
    from netcheck.lab import image

    img = image.current()
    if img is None:
        pytest.fail("the agent image is missing or older than the sources: run `make image`", False)
    return img.id


LOGS_KEPT = "/tmp/netcheck-lab-logs"


def lab_down_keeping_logs(
    request: pytest.FixtureRequest, failed_before: int, *, failed: bool = False
) -> None:
    """lab down; if a test failed while the lab was up, its logs (API servers, lab kubelets with
    each container's readiness, pods' containers, lab agents, Cassandra) are first copied under
    LOGS_KEPT and the folder is named in pytest's output: a failure in CI can be read after the
    lab is gone. failed: the fixture's own setup failed."""
    where = ""
    try:
        failed = failed or request.session.testsfailed > failed_before
        if failed and os.path.isdir(build.state_dir()):
            where = os.path.join(LOGS_KEPT, f"{request.node.name}-{time.strftime('%Y%m%dT%H%M%S')}")
            shutil.copytree(
                build.state_dir(),
                where,
                ignore=lambda d, names: [
                    n
                    for n in names
                    if not (n.endswith(".log") or os.path.isdir(os.path.join(d, n)))
                ],
                ignore_dangling_symlinks=True,
                dirs_exist_ok=True,
            )
    finally:
        build.lab_down()
    if where:
        capture = request.config.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\na test failed with the lab up: its logs are kept in {where}", flush=True)


@dataclass
class Run:
    code: int
    report: dict[str, Any]
    stderr: str

    def failing(self) -> dict[tuple[str, str, int], str]:
        return {
            (p["src"], p["dst"], p["port"]): p["outcome"]
            for p in self.report["probes"]
            if p["outcome"] != "open"
        }


def netcheck(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a user runs it. Its time limit is well above `--deploy-timeout`'s default
    (120 s) plus a run: a deploy that does not get ready ends with netcheck's own line saying
    why, not with the test killing it."""
    return subprocess.run(
        [sys.executable, "-m", "netcheck", *args],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_json(inventory: str, *extra: str) -> Run:
    proc = netcheck(
        "run", "--inventory", inventory, "-o", "json", "--json-probes", "all", "--timeout", "1",
        *extra,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(code=proc.returncode, report=json.loads(proc.stdout), stderr=proc.stderr)


def write_inventory(path: str) -> Topology:
    topo = lab_topology(build.require_state())
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump_inventory(topo))
    return topo
