"""Apply the agent manifests to a context, wait until the agents are ready, remove them again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from netcheck.kube.client import KubeClient
from netcheck.kube.errors import Forbidden, KubeError
from netcheck.kube.resources import KINDS, kind_of
from netcheck.model.topology import VECTOR_NODEPORT

NAMESPACE = "netcheck"

ReadyFn = Callable[[str, int, int], None]  # (context, ready pods, desired pods)


class DeployError(KubeError):
    """Agents that did not become ready: names the pods and why."""


async def nodeport_holder(client: KubeClient, port: int = VECTOR_NODEPORT) -> str:
    """namespace/name of a Service (not ours) that already holds the NodePort, or ''."""
    for svc in await client.list(KINDS["Service"]):
        meta = svc.get("metadata") or {}
        if meta.get("namespace") == NAMESPACE:
            continue
        for p in (svc.get("spec") or {}).get("ports") or []:
            if p.get("nodePort") == port:
                return f"{meta.get('namespace')}/{meta.get('name')}"
    return ""


async def apply_all(client: KubeClient, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        await client.apply(kind_of(obj), obj)


def _pod_reason(pod: dict[str, Any]) -> str:
    st = pod.get("status") or {}
    for cs in st.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            return f"{waiting.get('reason', '')}: {waiting.get('message', '')}".strip(": ")
    for c in st.get("conditions") or []:
        if c.get("status") == "False" and c.get("reason"):
            return f"{c.get('reason')}: {c.get('message', '')}".strip(": ")
    return f"phase {st.get('phase', 'unknown')}, readiness probe failing"


async def wait_ready(
    client: KubeClient,
    daemonsets: list[str],
    *,
    timeout_s: float,
    progress: ReadyFn | None = None,
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        ready = desired = 0
        for name in daemonsets:
            ds = await client.get(KINDS["DaemonSet"], name, NAMESPACE)
            st = ds.get("status") or {}
            desired += int(st.get("desiredNumberScheduled") or 0)
            # a rollout in progress: only pods of the applied template count (old pods hold
            # the previous token and allow list)
            current = int(st.get("observedGeneration") or 0) >= int(
                (ds.get("metadata") or {}).get("generation") or 0
            )
            updated = int(st.get("updatedNumberScheduled") or 0) if current else 0
            ready += min(int(st.get("numberReady") or 0), updated)
        if progress:
            progress(client.context, ready, desired)
        if desired and ready >= desired:
            return
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(1.0)
    raise DeployError(client.context, await _why_not_ready(client, daemonsets, timeout_s))


async def _why_not_ready(client: KubeClient, daemonsets: list[str], timeout_s: float) -> str:
    pods = await client.list(KINDS["Pod"], NAMESPACE)
    unread = ""
    try:  # the kubelet's reasons are in events; without them, the pods' own status
        events = await client.list(KINDS["Event"], NAMESPACE)
    except Forbidden as exc:
        events, unread = [], f"; events not read: {exc.detail}"
    last_event: dict[str, str] = {}
    for ev in events:
        involved = ev.get("involvedObject") or {}
        if ev.get("type") == "Warning":
            last_event[str(involved.get("name"))] = f"{ev.get('reason')}: {ev.get('message')}"
    bad: dict[str, list[str]] = {}  # reason -> "pod on node", pods failing alike together
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if labels.get("app.kubernetes.io/name") not in daemonsets:
            continue
        conditions = (pod.get("status") or {}).get("conditions") or []
        if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
            continue
        name = str((pod.get("metadata") or {}).get("name"))
        node = (pod.get("spec") or {}).get("nodeName") or "unscheduled"
        reason = last_event.get(name) or _pod_reason(pod)
        bad.setdefault(reason, []).append(f"{name} on {node}")
    if not bad:
        return (
            f"no agent pod was created within {timeout_s:.0f}s; check the DaemonSet's events "
            "(`kubectl -n netcheck describe daemonset`): quota, admission or node selectors"
            + unread
        )
    groups = sorted(bad.items(), key=lambda kv: -len(kv[1]))
    said = [
        ", ".join(where[:4])
        + (f" and {len(where) - 4} more" if len(where) > 4 else "")
        + f" ({reason})"
        for reason, where in groups[:4]
    ]
    others = sum(len(w) for _, w in groups[4:])
    return (
        f"{sum(len(w) for w in bad.values())} agent pod(s) not ready after {timeout_s:.0f}s"
        + unread
        + ": "
        + "; ".join(said)
        + (f"; {others} more for other reasons" if others else "")
    )


async def remove_all(
    client: KubeClient, objects: list[dict[str, Any]], *, delete_namespace: bool = False
) -> list[str]:
    """Delete what deploy applied, newest first; objects already gone are fine."""
    removed = []
    for obj in reversed(objects):
        kind = kind_of(obj)
        if kind.kind == "Namespace" and not delete_namespace:
            continue  # it may hold the RoleBinding that lets the user deploy again
        meta = obj["metadata"]
        if await client.delete(kind, meta["name"], meta.get("namespace")):
            removed.append(f"{kind.kind}/{meta['name']}")
    return removed
