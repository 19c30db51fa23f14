"""Probes that leave from a database pod itself: `netcheck probe-once` exec'd in its netcheck
container (an ephemeral container of the agent image that `run --context` adds: kube/ephemeral.py).

A prober is named kube-exec://CONTEXT/NAMESPACE/POD/CONTAINER. Each call is one exec through
the API server (`pods/exec`): /v1/info becomes `probe-once --info`, /v1/probe becomes
`probe-once --batch BODY`; stdout is the document the HTTP API would answer, so the parsing and
its strictness are the agent transport's (agent/transport.py).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from netcheck.agent.once import MAX_BATCH
from netcheck.agent.transport import (
    AgentError,
    AgentInfo,
    JsonAgentTransport,
    first_line,
    json_answer,
)
from netcheck.kube.client import KubeClient
from netcheck.kube.errors import KubeError

EXEC_SCHEME = "kube-exec://"
PROBE_ONCE = ("netcheck", "probe-once")


def prober_ref(context: str, namespace: str, pod: str, container: str) -> str:
    return f"{EXEC_SCHEME}{context}/{namespace}/{pod}/{container}"


def split_prober_ref(ref: str, scheme: str = EXEC_SCHEME) -> tuple[str, str, str, str] | None:
    """(context, namespace, pod, container) of SCHEME://CONTEXT/NAMESPACE/POD/CONTAINER."""
    if not ref.startswith(scheme) or ref.count("/") < 5:
        return None
    context, namespace, pod, container = ref[len(scheme) :].rsplit("/", 3)
    return context, namespace, pod, container


def prober_client(
    clients: Mapping[str, KubeClient], agent: str, scheme: str
) -> tuple[KubeClient, str, str, str]:
    """(client of its context, namespace, pod, container) of a prober; AgentError when it is
    not one, or its context has no connection."""
    parts = split_prober_ref(agent, scheme)
    if parts is None:
        raise AgentError(f"prober {agent}: not a {scheme}CONTEXT/NAMESPACE/POD/CONTAINER")
    context, namespace, pod, container = parts
    client = clients.get(context)
    if client is None:
        raise AgentError(f"prober {agent}: no connection to context {context}")
    return client, namespace, pod, container


def exec_where(namespace: str, pod: str, container: str) -> str:
    """How an error of a prober starts."""
    return f"probes from pod {namespace}/{pod} container {container}: "


class PodExecTransport(JsonAgentTransport):
    """programs: per prober, the argv that starts probe-once there (the agents' own interpreter:
    python-netraw where the agents hold NET_RAW); allow: the networks it may probe."""

    def __init__(
        self,
        clients: Mapping[str, KubeClient],
        programs: Mapping[str, tuple[str, ...]],
        allow: tuple[str, ...],
    ) -> None:
        self._clients = clients
        self._programs = programs
        self._allow = tuple(a for cidr in allow for a in ("--allow", cidr))
        self._infos: dict[str, AgentInfo] = {}
        self.info_timeout_s = self.start_s = 60.0

    async def info(self, agent: str) -> AgentInfo:
        """Asked once per prober and run: each exec starts a process in the pod, and on a node
        busy with Cassandra (nodetool's JVMs start beside the mesh) that alone takes seconds."""
        if agent not in self._infos:
            self._infos[agent] = await super().info(agent)
        return self._infos[agent]

    async def _call(
        self, agent: str, method: str, path: str, total: float, body: Any, max_bytes: int
    ) -> Any:
        """max_bytes: the exec's streams are bounded already (kube/podexec.py: MAX_OUTPUT)."""
        client, namespace, pod, container = prober_client(self._clients, agent, EXEC_SCHEME)
        if body is not None and len(body.get("targets", ())) > MAX_BATCH:
            raise AgentError(f"prober {agent}: a batch above {MAX_BATCH} targets")  # a bug here
        argv = [*self._programs.get(agent, PROBE_ONCE), *self._allow, "--name", pod]
        argv += ["--info"] if body is None else ["--batch", json.dumps(body, separators=(",", ":"))]
        where = exec_where(namespace, pod, container)
        try:
            out = await client.exec(namespace, pod, container, argv, total)
        except KubeError as exc:
            raise AgentError(f"{where}{exc}") from None
        if out.exit_code is None:
            raise AgentError(f"{where}{out.message}")
        if not out.ok:
            said = first_line(out.stderr) or first_line(out.stdout) or "no output"
            raise AgentError(f"{where}probe-once exited {out.exit_code}: {said}")
        return json_answer(agent, path, out.stdout, "check the image of its netcheck container")
