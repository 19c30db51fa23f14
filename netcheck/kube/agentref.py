"""How an endpoint names the agent pod that probes for it: kube://CONTEXT/NAMESPACE/POD."""

from __future__ import annotations

AGENT_SCHEME = "kube://"


def agent_ref(context: str, namespace: str, pod: str) -> str:
    return f"{AGENT_SCHEME}{context}/{namespace}/{pod}"


def split_ref(ref: str) -> tuple[str, str, str] | None:
    if not ref.startswith(AGENT_SCHEME) or ref.count("/") < 4:
        return None
    context, namespace, pod = ref[len(AGENT_SCHEME) :].rsplit("/", 2)
    return context, namespace, pod
