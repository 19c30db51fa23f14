"""A netcheck container in a running pod, added as `kubectl debug` adds one.

`PATCH /api/v1/namespaces/NS/pods/POD/ephemeralcontainers` with a strategic merge patch that
names the container (RBAC: `patch` on `pods/ephemeralcontainers`); the pod is then read back with
a field-selected list (the `list pods` discovery already holds) until its
ephemeralContainerStatuses say the container runs. An ephemeral container can be neither
changed nor removed (it goes with the pod), so it idles (`sleep infinity`, a few hundred
kilobytes) and is found again by the next run: netcheck-probe if its image is the one asked
for and it runs, else the next free name of netcheck-probe-2 ... -5.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from netcheck.kube.client import KubeClient
from netcheck.kube.errors import ApiFailed, KubeError, NotFound
from netcheck.kube.resources import KINDS

PROBE_CONTAINER = "netcheck-probe"
MAX_CONTAINERS = 5  # names tried before giving up: each try stays in the pod spec
# what a container's securityContext may carry that a pod's securityContext also sets
POD_LEVEL_KEYS = ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile", "seLinuxOptions")
POLL_S = 0.5


class EphemeralError(KubeError):
    """The container could not be added or did not start: one line with the reason."""


@dataclass(frozen=True, kw_only=True)
class ProbeContainer:
    image: str
    # the agents' container securityContext with their pod's user and seccomp fields: the same
    # user, capabilities and read-only root the user granted the agents, and nothing more
    security_context: dict[str, Any]

    def spec(self, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "image": self.image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["sleep", "infinity"],
            "securityContext": self.security_context,
            "terminationMessagePolicy": "File",
        }


def probe_container_of(
    image: str, pod_security: dict[str, Any], container_security: dict[str, Any]
) -> ProbeContainer:
    merged = {k: pod_security[k] for k in POD_LEVEL_KEYS if k in pod_security}
    merged.update(container_security)
    return ProbeContainer(image=image, security_context=merged)


def _names() -> list[str]:
    return [PROBE_CONTAINER] + [f"{PROBE_CONTAINER}-{i}" for i in range(2, MAX_CONTAINERS + 1)]


def _state(pod: dict[str, Any], name: str) -> tuple[str, str]:
    """(running | waiting | terminated | "", reason) of an ephemeral container."""
    for st in (pod.get("status") or {}).get("ephemeralContainerStatuses") or []:
        if st.get("name") == name:
            state = st.get("state") or {}
            for key in ("running", "terminated", "waiting"):
                if key in state:
                    detail = state[key] or {}
                    return key, str(detail.get("reason") or detail.get("message") or "")
    return "", ""


def pick(pod: dict[str, Any], want: ProbeContainer) -> tuple[str, bool]:
    """The container to use and whether it must be added: a running (or starting) one of the
    same image and security context (agents redeployed with raw probes need one with NET_RAW),
    else the first free name; ("", False) when every name is taken."""
    declared = {
        str(c.get("name")): c for c in (pod.get("spec") or {}).get("ephemeralContainers") or []
    }
    for name in _names():
        c = declared.get(name)
        if c is None:
            return name, True
        state, _ = _state(pod, name)
        same = (c.get("image"), c.get("securityContext") or {}) == (
            want.image,
            want.security_context,
        )
        if same and state in ("running", "waiting", ""):
            return name, False
    return "", False


async def _read(client: KubeClient, namespace: str, pod: str) -> dict[str, Any]:
    items = await client.list(KINDS["Pod"], namespace, field_selector=f"metadata.name={pod}")
    if not items:
        raise NotFound(client.context, f"pod {namespace}/{pod} is gone")
    return items[0]


async def ensure(
    client: KubeClient, namespace: str, pod: str, want: ProbeContainer, timeout_s: float
) -> str:
    """The name of a running netcheck container in the pod; EphemeralError (or another
    KubeError: Forbidden when RBAC lacks the grant) when there cannot be one."""
    current = await _read(client, namespace, pod)
    name, add = pick(current, want)
    if not name:
        raise EphemeralError(
            client.context,
            f"pod {namespace}/{pod} already holds {MAX_CONTAINERS} netcheck containers that "
            "do not run this image; restart the pod to clear them",
        )
    if add:
        body = {"spec": {"ephemeralContainers": [want.spec(name)]}}
        try:
            await _patch(client, namespace, pod, body)
        except ApiFailed as exc:
            raise EphemeralError(
                client.context, f"pod {namespace}/{pod}: no ephemeral container ({exc.detail})"
            ) from None
    deadline = time.monotonic() + timeout_s
    reason = ""
    while True:
        state, reason = _state(current, name)
        if state == "running":
            return name
        if state == "terminated":
            break
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(POLL_S)
        current = await _read(client, namespace, pod)
    status = f"{state or 'not started'}{f': {reason}' if reason else ''}"
    raise EphemeralError(
        client.context,
        f"pod {namespace}/{pod}: its ephemeral container {name} ({want.image}) is {status} "
        f"after {timeout_s:g}s; check that its node can pull the image",
    )


async def _patch(client: KubeClient, namespace: str, pod: str, body: dict[str, Any]) -> None:
    status, raw = await client.request(
        "PATCH",
        f"/api/v1/namespaces/{namespace}/pods/{pod}/ephemeralcontainers",
        verb="patch",
        resource="pods/ephemeralcontainers",
        namespace=namespace,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/strategic-merge-patch+json"},
        timeout_s=30.0,
    )
    if not 200 <= status < 300:
        raise ApiFailed(client.context, _message(raw), status)


def _message(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    return raw.decode("utf-8", "replace")[:300]
