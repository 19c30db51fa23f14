"""A batch of probes from a database pod without netcheck's container: the cassandra
container's bash (agent/podshell.py) beside netcheck's own `probe-once` (what netcheck's
container runs), each as a process started for the batch as an exec starts it, on the same
loopback target (section r of `make bench`).

Both get the same 256-target batch of TCP connects (the most one exec carries) at a 2 s
timeout; the time is the process's whole life, start included, because each batch is one
exec. The target (bench/blackbox.py's) accepts, closes and counts: only connects that reached
it count, and a round that lost more than 1 % fails the figure.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.blackbox import TARGET, _accepted, _free_ports, _process

BATCH = 256
ROUNDS = 5


def _targets(port: int) -> list[Any]:
    from netcheck.model.probe import ProbeKind, Target

    return [Target(address="127.0.0.1", port=port, kind=ProbeKind.TCP) for _ in range(BATCH)]


def _round(argv: list[str], status: int, who: str) -> float:
    before = _accepted(status)
    t0 = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    elapsed = time.monotonic() - t0
    reached = _accepted(status) - before
    if proc.returncode != 0 or reached < BATCH * 0.99:
        said = (proc.stderr or proc.stdout).strip()[-200:]
        raise SystemExit(f"{who}: {reached} of {BATCH} connects reached the target ({said})")
    return elapsed


def measure() -> dict[str, Any]:
    """Seconds per batch (median and best of ROUNDS), the shell's and probe-once's."""
    from netcheck.agent.podshell import script
    from netcheck.agent.wire import target_to_json

    target, status = _free_ports(2)
    targets = _targets(target)
    body = {"targets": [target_to_json(t) for t in targets], "timeout_s": 2, "payload_bytes": 0}
    shell = ["bash", "-c", script(targets, 2.0)]
    once = [
        sys.executable, "-m", "netcheck", "probe-once", "--allow", "127.0.0.1/32",
        "--name", "bench", "--batch", json.dumps(body, separators=(",", ":")),
    ]  # fmt: skip
    with _process([sys.executable, "-c", TARGET, str(target), str(status)], target):
        shell_s = [_round(shell, status, "bash") for _ in range(ROUNDS)]
        once_s = [_round(once, status, "probe-once") for _ in range(ROUNDS)]
    bash = subprocess.run(["bash", "--version"], capture_output=True, text=True, check=False)
    return {
        "bash": (bash.stdout.splitlines() or ["bash"])[0].split(" (")[0],
        "shell_s": statistics.median(shell_s),
        "shell_best": min(shell_s),
        "once_s": statistics.median(once_s),
        "once_best": min(once_s),
        "ratio": statistics.median(shell_s) / statistics.median(once_s),
    }


def section(r: dict[str, Any], when: str = "") -> str:
    """Section (r); `when` for a section measured alone (--only r)."""
    measured = f" (measured alone, {when})" if when else ""
    per = BATCH / r["shell_s"], BATCH / r["once_s"]
    return f"""## (r) Probes from a pod's own cassandra container: bash beside probe-once{measured}

bench/podshell.py: where netcheck's container cannot be added to a database pod, its
`cassandra` container probes with bash (agent/podshell.py). One batch of {BATCH} TCP connects
to a loopback target that accepts and counts, run as one process the way one exec runs it
(start included): the shell's script ({r["bash"]}: one `timeout` and one bash per connect,
32 at a time, at most 200 a second) beside `netcheck probe-once` (the agent's engine in
netcheck's container, at its default 200 a second).
{ROUNDS} rounds each; every connect must reach the target. A run --context makes a batch per
source pod, so this is the cost per pod per run, not a limit on the mesh.

| prober | median per batch | best | connects per second (median) |
| --- | --- | --- | --- |
| bash in the cassandra container | {r["shell_s"]:.2f} s | {r["shell_best"]:.2f} s | {per[0]:.0f} |
| netcheck probe-once | {r["once_s"]:.2f} s | {r["once_best"]:.2f} s | {per[1]:.0f} |
| ratio, medians | {r["ratio"]:.2f} x | | |
"""
