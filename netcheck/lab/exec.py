"""The lab's exec backend: nodetool inside a lab pod's namespace, its system.log as the logs."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import Any

from netcheck.cassandra.exec import ExecResult, ExecTarget, failure_line
from netcheck.lab import cassandra
from netcheck.lab.build import state_dir
from netcheck.lab.net import LabError

_STAMP = re.compile(r"^\S+\s+\[[^\]]*\]\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


class LabExec:
    name = "lab exec"

    def __init__(self, state: dict[str, Any]) -> None:
        self._state = state
        self._hosts = {h["name"]: h for h in cassandra.database_hosts(state)}

    async def run(self, target: ExecTarget, argv: list[str], timeout_s: float) -> ExecResult:
        if not argv or argv[0] != "nodetool":
            return ExecResult(
                ok=False, output="", error=f"the lab runs nodetool only, not {argv[:1]}"
            )
        try:
            command = cassandra.nodetool_argv(self._state, target.endpoint, argv[1:])
        except LabError as exc:
            return ExecResult(ok=False, output="", error=str(exc))
        proc = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return ExecResult(ok=False, output="", error=f"no answer within {timeout_s:g}s")
        if proc.returncode != 0:
            error = failure_line(
                proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
            )
            return ExecResult(ok=False, output="", error=error)
        return ExecResult(ok=True, output=out.decode(errors="replace"))

    async def logs(self, target: ExecTarget, since_s: float, timeout_s: float) -> ExecResult:
        host = self._hosts.get(target.endpoint)
        if host is None:
            return ExecResult(ok=False, output="", error="not a Cassandra node of the lab")
        path = cassandra.node_files(state_dir(), host).system_log
        try:
            text = await asyncio.to_thread(_read, path)
        except OSError as exc:
            return ExecResult(ok=False, output="", error=f"cannot read {path}: {exc.strerror}")
        return ExecResult(ok=True, output=recent(text, since_s))


def _read(path: str) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()


def recent(text: str, since_s: float, now: datetime.datetime | None = None) -> str:
    """Log lines stamped within since_s of now, with the unstamped lines that follow them
    (stack traces): what the Kubernetes logs API's sinceSeconds gives."""
    cutoff = (now or datetime.datetime.now()) - datetime.timedelta(seconds=since_s)
    keep = False
    out = []
    for line in text.splitlines():
        m = _STAMP.match(line)
        if m:
            keep = datetime.datetime.fromisoformat(m.group(1)) >= cutoff
        if keep:
            out.append(line)
    return "\n".join(out) + ("\n" if out else "")
