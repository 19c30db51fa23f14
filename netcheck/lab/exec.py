"""The lab's exec backend: nodetool inside a lab pod's namespace, its system.log as the logs."""

from __future__ import annotations

import asyncio
import datetime
import re
from typing import Any

from netcheck.cassandra.exec import ExecResult, ExecTarget, failure_line
from netcheck.lab import cassandra
from netcheck.lab.build import state_dir
from netcheck.lab.javac import compiled
from netcheck.lab.net import LabError
from netcheck.model.text import ascii_int

_STAMP = re.compile(r"^\S+\s+\[[^\]]*\]\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


_BEGIN, _STDERR, _END = "@@netcheck-begin ", "@@netcheck-stderr", "@@netcheck-end "


class LabExec:
    name = "lab exec"
    # every pod's JVM runs on this machine's cores: two nodetool JVMs at a time
    parallel = 2

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
        return await _run(command, timeout_s)

    async def nodetool(
        self, target: ExecTarget, commands: list[list[str]], timeout_s: float
    ) -> list[ExecResult]:
        """All the commands in one JVM (java/NodetoolBatch.java): a JVM start per command was
        most of a run's time on a lab whose pods share this machine's cores."""
        try:
            lib = cassandra.classpath(self._state["cassandra"]["lib"])
            classes = compiled(cassandra.NODETOOL_BATCH, state_dir(), lib)
            argv = cassandra.nodetool_batch_argv(self._state, target.endpoint, classes, commands)
        except (LabError, KeyError, OSError) as exc:
            return [ExecResult(ok=False, output="", error=f"nodetool batch: {exc}")] * len(commands)
        batch = await _run(argv, timeout_s)
        if not batch.ok:
            return [batch] * len(commands)
        return batch_results(batch.output, len(commands))

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


async def _run(command: list[str], timeout_s: float) -> ExecResult:
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


def batch_results(output: str, expected: int) -> list[ExecResult]:
    """The framed output of java/NodetoolBatch.java: one result per command, in order; a
    command the batch did not frame (the JVM died) fails with the reason."""
    results: list[ExecResult] = []
    out: list[str] = []
    err: list[str] = []
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(_BEGIN):
            out, err = [], []
            current = out
        elif line == _STDERR:
            current = err
        elif line.startswith(_END) and current is not None:
            code = line.removeprefix(_END).strip()
            text = "\n".join(out) + ("\n" if out else "")
            if code == "0":
                results.append(ExecResult(ok=True, output=text))
            else:
                error = failure_line(ascii_int(code), text, "\n".join(err))
                results.append(ExecResult(ok=False, output="", error=error))
            current = None
        elif current is not None:
            current.append(line)
    missing = ExecResult(ok=False, output="", error="nodetool batch ended before this command")
    return (results + [missing] * expected)[:expected]


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
