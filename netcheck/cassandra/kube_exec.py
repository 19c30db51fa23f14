"""The Kubernetes exec backend: nodetool through the API server's exec, logs through its logs API.

nodetool runs in the pod's `cassandra` container; the log comes from cass-operator's
`server-system-logger` sidecar (it tails /var/log/cassandra/system.log to its stdout), or from
the `cassandra` container when a pod has no sidecar. Every failure is a result with one line.
"""

from __future__ import annotations

import asyncio

from netcheck.cassandra.exec import ExecResult, ExecTarget, failure_line
from netcheck.kube.client import KubeClient
from netcheck.kube.errors import KubeError


class KubeExec:
    name = "kubernetes exec"
    # nodetool's JVM starts in the pods, on their nodes' CPUs: many pods at once
    parallel = 8

    def __init__(self, clients: dict[str, KubeClient]) -> None:
        self._clients = clients

    def _client(self, target: ExecTarget) -> KubeClient | None:
        return self._clients.get(target.context)

    async def run(self, target: ExecTarget, argv: list[str], timeout_s: float) -> ExecResult:
        client = self._client(target)
        if client is None:
            return ExecResult(ok=False, output="", error=f"no client for context {target.context}")
        try:
            out = await client.exec(target.namespace, target.pod, target.container, argv, timeout_s)
        except KubeError as exc:
            return ExecResult(ok=False, output="", error=str(exc))
        if out.ok:
            return ExecResult(ok=True, output=out.stdout)
        if out.exit_code is None:
            return ExecResult(ok=False, output="", error=out.message)
        return ExecResult(
            ok=False, output="", error=failure_line(out.exit_code, out.stdout, out.stderr)
        )

    async def nodetool(
        self, target: ExecTarget, commands: list[list[str]], timeout_s: float
    ) -> list[ExecResult]:
        # one exec per command: the container's own `nodetool` script, as a user runs it
        return list(
            await asyncio.gather(*(self.run(target, ["nodetool", *c], timeout_s) for c in commands))
        )

    async def logs(self, target: ExecTarget, since_s: float, timeout_s: float) -> ExecResult:
        client = self._client(target)
        if client is None:
            return ExecResult(ok=False, output="", error=f"no client for context {target.context}")
        try:
            text = await client.logs(
                target.namespace, target.pod, target.log_container, since_s, timeout_s
            )
        except KubeError as exc:
            return ExecResult(ok=False, output="", error=str(exc))
        return ExecResult(ok=True, output=text)
