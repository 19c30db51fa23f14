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


@dataclass(frozen=True, kw_only=True)
class ExecResult:
    ok: bool
    output: str
    error: str = ""  # one line: why it failed


class ExecBackend(Protocol):
    name: str

    async def run(self, target: ExecTarget, argv: list[str], timeout_s: float) -> ExecResult:
        """Run argv in the target's cassandra container."""
        ...

    async def logs(self, target: ExecTarget, since_s: float, timeout_s: float) -> ExecResult:
        """The target's Cassandra log lines of the last since_s seconds."""
        ...
