"""The collector asking a thousand agents at once (section q of `make bench`): its time and
peak memory from the plan to the run's table.

One process hosts every agent: real agent APIs (agent/server.py: build_api and ProbeRunner)
on loopback ports, each with its own token check, wire parsing and answers. Their allow list
is 127.0.0.1/32 and the mesh's addresses are the lab's (bench/meshes.py, 198.18.0.0/15), so
each agent answers every target `not_measured` by its own allow check and no packet is sent:
the answers are real answers, one per probe, of the size a run gets back; the probing itself is
sections b, g and p. The collector (collector/run.py: collect, through HttpAgentTransport) runs
in this process, whose peak resident memory is read before and after.

`python -m bench.collector PODS` prints one JSON line.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any

from bench import meshes
from bench.blackbox import _free_ports

TOKEN = "c" * 40
HOST = """
import asyncio, ipaddress, sys
from aiohttp import web
from netcheck.agent.listeners import AcceptLog
from netcheck.agent.server import AgentLimits, AgentSettings, ProbeRunner, build_api
from netcheck.probes.dialer import StreamDialer

async def main(ports):
    settings = AgentSettings(
        token=sys.argv[2], allow=(ipaddress.ip_network("127.0.0.1/32"),),
        limits=AgentLimits(max_batch=1024, rate=1e6, concurrency=64),
    )
    runners = []
    for port in ports:
        app = build_api(settings, ProbeRunner(settings, StreamDialer()), AcceptLog())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, backlog=64).start()
        runners.append(runner)
    print("ready", flush=True)
    await asyncio.Event().wait()

asyncio.run(main([int(p) for p in sys.argv[1].split(",")]))
"""


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _collect(pods: int, ports: list[int]) -> dict[str, Any]:
    from netcheck.agent.transport import HttpAgentTransport
    from netcheck.collector.plan import plan_mesh
    from netcheck.collector.run import collect
    from netcheck.model.outcome import Outcome
    from netcheck.model.probe_table import ProbeTable

    topo = meshes.topology(pods)
    agents = iter(ports)
    topo = dataclasses.replace(
        topo,
        endpoints=tuple(
            dataclasses.replace(ep, agent=f"http://127.0.0.1:{next(agents)}")
            if ep.has_agent
            else ep
            for ep in topo.endpoints
        ),
    )
    plan = plan_mesh(topo)
    before = _peak_mib()
    cpu, wall = time.process_time(), time.monotonic()
    async with HttpAgentTransport(TOKEN) as transport:
        got = await collect(topo, plan, transport, timeout_s=2.0, payload_bytes=0)
    cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    answered = ProbeTable.of(got.results).counts().get(Outcome.NOT_MEASURED, 0)
    refused = sum(1 for r in got.results[:1000] if "outside its --allow list" in r.detail)
    if got.problems or answered != len(plan) or refused != min(1000, len(plan)):
        raise SystemExit(
            f"collector: {len(got.problems)} agents failed, {answered} of {len(plan)} answered "
            f"({got.problems[0].message if got.problems else ''})"
        )
    return {
        "agents": len(ports),
        "probes": len(plan),
        "cpu_s": cpu,
        "wall_s": wall,
        "before_mib": before,
        "peak_mib": _peak_mib(),
    }


def measure(pods: int) -> dict[str, Any]:
    agents = sum(1 for ep in meshes.topology(pods).endpoints if ep.has_agent)
    ports = _free_ports(agents)
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "host.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(HOST)
        host = subprocess.Popen(
            [sys.executable, script, ",".join(map(str, ports)), TOKEN],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
        )
        try:
            assert host.stdout is not None
            if host.stdout.readline().strip() != "ready":
                raise SystemExit("the agents' host did not start")
            return asyncio.run(_collect(pods, ports))
        finally:
            host.terminate()
            host.wait(timeout=30)


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]))))
