"""The exec seam: run a command in a database pod's `cassandra` container, read its logs.

Backends: the lab (lab/exec.py: `ip netns exec` into the pod's namespace) and, for real
clusters, Kubernetes exec and the logs API. Failures are results, never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, kw_only=True)
class ExecTarget:
    endpoint: str  # the topology endpoint (pod) name
    address: str
    namespace: str = ""  # Kubernetes namespace ("" in the lab)
    container: str = "cassandra"
    context: str = ""  # kubeconfig context ("" in the lab)
    pod: str = ""  # Kubernetes pod name ("" in the lab)
    log_container: str = "server-system-logger"  # cass-operator's sidecar tailing system.log


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    ok: bool
    output: str
    error: str = ""  # one line: why it failed


class ExecBackend(Protocol):
    name: str
    parallel: int  # how many pods' commands at once suit this backend

    async def run(self, target: ExecTarget, argv: list[str], timeout_s: float) -> ExecResult:
        """Run argv in the target's cassandra container."""
        ...

    async def nodetool(
        self, target: ExecTarget, commands: list[list[str]], timeout_s: float
    ) -> list[ExecResult]:
        """Several nodetool commands (argv without "nodetool") in the target's container, one
        result each, in order; a backend may run them in one JVM."""
        ...

    async def logs(self, target: ExecTarget, since_s: float, timeout_s: float) -> ExecResult:
        """The target's Cassandra log lines of the last since_s seconds."""
        ...


def failure_line(code: int | None, stdout: str, stderr: str) -> str:
    """One line for a command that failed: its first error line, else its last line."""
    lines = [ln.strip() for ln in (stderr or stdout).strip().splitlines() if ln.strip()]
    why = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "")
    head = f"exit {code}" if code is not None else "failed"
    return f"{head}: {why[:160]}" if why else head
