"""Agents reached through the Kubernetes API server's pod proxy: works wherever kubectl works.

The API server drops the Authorization header before proxying, so the agent token travels in
X-Netcheck-Token. One KubeClient per context; agents are named kube://CONTEXT/NAMESPACE/POD.
"""

from __future__ import annotations

import json
from typing import Any

from netcheck.agent.process import DEFAULT_API_PORT
from netcheck.agent.server import TOKEN_HEADER
from netcheck.agent.transport import AgentError, JsonAgentTransport, first_line, json_answer
from netcheck.kube.agentref import split_ref
from netcheck.kube.client import KubeClient
from netcheck.kube.errors import Forbidden, KubeError, NotFound


class PodProxyTransport(JsonAgentTransport):
    def __init__(
        self, clients: dict[str, KubeClient], tokens: dict[str, str], port: int = DEFAULT_API_PORT
    ) -> None:
        self._clients = clients
        self._tokens = tokens  # per context: each cluster's Secret may hold its own token
        self._port = port

    async def _call(
        self, agent: str, method: str, path: str, total: float, body: Any, max_bytes: int
    ) -> Any:
        parts = split_ref(agent)
        if parts is None:
            raise AgentError(f"agent {agent}: not a kube://CONTEXT/NAMESPACE/POD reference")
        context, namespace, pod = parts
        client = self._clients.get(context)
        if client is None or context not in self._tokens:
            raise AgentError(f"agent {agent}: no connection to context {context}")
        proxy = f"/api/v1/namespaces/{namespace}/pods/{pod}:{self._port}/proxy{path}"
        try:
            status, raw = await client.request(
                method,
                proxy,
                verb="get" if method == "GET" else "create",
                resource="pods/proxy",
                namespace=namespace,
                data=json.dumps(body).encode() if body is not None else None,
                headers={TOKEN_HEADER: self._tokens[context], "Content-Type": "application/json"},
                timeout_s=total,
                max_bytes=max_bytes,
            )
        except Forbidden as exc:
            raise AgentError(f"agent {agent}: {exc}") from None
        except NotFound:
            raise AgentError(
                f"agent {agent}: pod not found (it was replaced or removed); run again"
            ) from None
        except KubeError as exc:
            raise AgentError(f"agent {agent}: {exc}") from None
        text = raw.decode("utf-8", "replace")
        if status == 401:
            raise AgentError(
                f"agent {agent} rejected the token (HTTP 401); the Secret netcheck-agent-token "
                f"in namespace {namespace} and the agent disagree: run `netcheck deploy` again"
            )
        if status in (502, 503) and "error trying to reach service" in text:
            why = first_line(_message(text))
            raise AgentError(
                f"agent {agent}: the API server cannot reach the pod ({why}); "
                "the pod proxy is disabled or the control plane has no path to pods "
                "(private cluster without konnectivity): open that path or run the collector "
                "inside the cluster"
            )
        if status != 200:
            raise AgentError(
                f"agent {agent} answered HTTP {status} to {path}: {first_line(_message(text))}"
            )
        return json_answer(agent, path, text, "check that the pod runs a netcheck agent")


def _message(text: str) -> str:
    try:
        doc = json.loads(text)
        if isinstance(doc, dict):
            return str(doc.get("message") or doc.get("error") or text)
    except ValueError:
        pass
    return text
