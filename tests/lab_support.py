"""Running netcheck against the real lab, as a user would: the CLI in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
    return subprocess.run(
        [sys.executable, "-m", "netcheck", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
        check=False,
    )


def run_json(inventory: str, *extra: str) -> Run:
    proc = netcheck("run", "--inventory", inventory, "-o", "json", "--timeout", "1", *extra)
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(code=proc.returncode, report=json.loads(proc.stdout), stderr=proc.stderr)


def write_inventory(path: str) -> Topology:
    topo = lab_topology(build.require_state())
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump_inventory(topo))
    return topo


def wait_peer_rows(state: dict[str, Any], timeout_s: float = 60.0) -> None:
    """Until every lab node's system.peers_v2 lists all the others (through its agent's CQL).

    Cassandra writes a peer's row some time after gossip marks it UP, so a lab that has just
    started (every view UN) can still lack rows for a few seconds."""
    import asyncio
    import time

    from netcheck.agent.process import read_token
    from netcheck.agent.transport import HttpAgentTransport
    from netcheck.collector.node_reads import READ_TIMEOUT_S, plan_cql
    from netcheck.collector.run import collect

    topology = lab_topology(state)
    plan = plan_cql(topology)

    async def complete() -> bool:
        async with HttpAgentTransport(read_token(state["token_file"])) as transport:
            done = await collect(
                topology, plan, transport, timeout_s=READ_TIMEOUT_S, payload_bytes=0
            )
        views = [r.evidence.cql for r in done.results]
        return all(v is not None and len(v.peers) == len(plan) - 1 for v in views)

    deadline = time.monotonic() + timeout_s
    while not asyncio.run(complete()):
        if time.monotonic() > deadline:
            pytest.fail(f"system.peers_v2 still incomplete after {timeout_s:.0f}s")
        time.sleep(1)
