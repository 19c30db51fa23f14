"""TCP connect probes per second: one netcheck agent beside Debian's
prometheus-blackbox-exporter (module tcp_connect), on the same loopback target, each driven as
hard as it goes (section p of `make bench`).

The target is one process of its own that accepts and closes (both probers pay the same for
it) and counts what it accepted: only probes that connected count. The agent
is asked through its API in batches, as the collector asks it; the exporter answers one HTTP
request per probe (that is its API: Prometheus scrapes /probe once per target), so ab keeps
`CONCURRENCY` requests in flight over kept-alive connections.
Both run in processes of their own; the machine's CPUs are shared by prober, driver and target
alike, as they would be on a node.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

EXPORTER = "prometheus-blackbox-exporter"
PROBES = 4000
ROUNDS = 3
CONCURRENCY = 128  # probes in flight: the agent's --concurrency, the exporter's driver's requests
TOKEN = "b" * 40

# accepts and closes in a blocking loop (cheaper than an event loop: the target must not be
# what limits either prober); a connection to the second port reads how many it accepted
TARGET = """
import socket, sys, threading
accepted = 0
probed = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=4096)
asked = socket.create_server(("127.0.0.1", int(sys.argv[2])))
def count():
    global accepted
    while True:
        c, _ = probed.accept()
        c.close()
        accepted += 1
threading.Thread(target=count, daemon=True).start()
while True:
    c, _ = asked.accept()
    c.sendall(b"%d\\n" % accepted)
    c.close()
"""

CONFIG = """modules:
  tcp_connect:
    prober: tcp
    timeout: 2s
    tcp:
      preferred_ip_protocol: ip4
      ip_protocol_fallback: false
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _wait_port(port: int, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port} after {deadline_s:g} s")


@contextlib.contextmanager
def _process(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_port(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _agent_rates(api: int, target: int) -> list[float]:
    from netcheck.agent.transport import HttpAgentTransport, ProbeBatch
    from netcheck.model.outcome import Outcome
    from netcheck.model.probe import ProbeKind, Target

    url = f"http://127.0.0.1:{api}"
    rates = []
    targets = tuple(
        Target(address="127.0.0.1", port=target, kind=ProbeKind.TCP, echo=False)
        for _ in range(PROBES)
    )
    async with HttpAgentTransport(TOKEN) as t:
        info = await t.info(url)
        for _ in range(ROUNDS):
            t0 = time.monotonic()
            results = await t.probe(
                url, ProbeBatch(targets=targets, timeout_s=2, payload_bytes=0), info
            )
            elapsed = time.monotonic() - t0
            opened = sum(1 for r in results if r.outcome is Outcome.OPEN)
            _enough("agent", opened)
            rates.append(opened / elapsed)  # connects that succeeded, per second
    return rates


def _enough(who: str, connected: int) -> None:
    """A probe or two lost on a loaded machine is no reason to drop the figure (only the
    connects that succeeded count in it); more than 1 % is a broken measurement."""
    if connected < PROBES * 0.99:
        raise SystemExit(f"{who}: only {connected} of {PROBES} probes connected")


def _accepted(status: int) -> int:
    with socket.create_connection(("127.0.0.1", status), 2) as c:
        return int(c.makefile().readline())


def _exporter_rates(port: int, target: int, status: int) -> list[float]:
    """ab (Apache's load generator, C) keeps CONCURRENCY requests in flight: a Python driver
    would be the bottleneck, not the exporter. The target counts the probes that reached it."""
    url = f"http://127.0.0.1:{port}/probe?module=tcp_connect&target=127.0.0.1:{target}"
    rates = []
    for _ in range(ROUNDS):
        before = _accepted(status)
        proc = subprocess.run(
            ["ab", "-q", "-k", "-n", str(PROBES), "-c", str(CONCURRENCY), url],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        rate = re.search(r"Requests per second:\s+([0-9.]+)", proc.stdout)
        if proc.returncode != 0 or rate is None:
            raise SystemExit(f"ab failed: {(proc.stderr or proc.stdout).strip()[-200:]}")
        reached = min(PROBES, _accepted(status) - before)
        _enough(EXPORTER, reached)
        rates.append(float(rate.group(1)) * reached / PROBES)
    return rates


def measure() -> dict[str, Any]:
    """Both probers' TCP connects per second (median and best of ROUNDS rounds of PROBES)."""
    exporter = shutil.which(EXPORTER)
    if exporter is None:
        raise SystemExit(f"{EXPORTER} is not installed: run `make bench-deps`")
    said = subprocess.run([exporter, "--version"], capture_output=True, text=True, check=False)
    version = ((said.stdout + said.stderr).strip().splitlines() or ["version unknown"])[0]
    if shutil.which("ab") is None:
        raise SystemExit("ab (apache2-utils) is not installed: run `make bench-deps`")
    target, status, api, exporter_port = _free_ports(4)
    with tempfile.TemporaryDirectory() as tmp:
        token = os.path.join(tmp, "token")
        with open(token, "w", encoding="utf-8") as f:
            f.write(TOKEN)
        config = os.path.join(tmp, "blackbox.yml")
        with open(config, "w", encoding="utf-8") as f:
            f.write(CONFIG)
        agent = [
            sys.executable, "-m", "netcheck", "agent", "--bind", "127.0.0.1",
            "--api-port", str(api), "--token-file", token, "--allow", "127.0.0.0/8",
            "--rate", "100000", "--concurrency", str(CONCURRENCY), "--max-batch", str(PROBES),
        ]  # fmt: skip
        box = [
            exporter, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{exporter_port}",
            "--log.level=error",
        ]  # fmt: skip
        with _process([sys.executable, "-c", TARGET, str(target), str(status)], target):
            with _process(agent, api):
                before = _accepted(status)
                agent_rates = asyncio.run(_agent_rates(api, target))
                if _accepted(status) - before < PROBES * ROUNDS:
                    raise SystemExit("agent: not every probe reached the target")
            with _process(box, exporter_port):
                box_rates = _exporter_rates(exporter_port, target, status)
    a, b = statistics.median(agent_rates), statistics.median(box_rates)
    return {
        "agent": a,
        "agent_best": max(agent_rates),
        "exporter": b,
        "exporter_best": max(box_rates),
        "ratio": a / b,
        "version": version,
    }
