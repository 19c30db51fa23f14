"""`deploy` and `undeploy`: the agents applied to every context (and waited for), or removed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netcheck.deploy.apply import apply_all, remove_all, wait_ready
from netcheck.deploy.manifests import COMPONENTS
from netcheck.discovery.kube import discover
from netcheck.kube.client import KubeClient
from netcheck.workflows.contexts import (
    allow_list,
    api_servers,
    clients_for,
    manifests,
    per_context,
)
from netcheck.workflows.feedback import Feedback


@dataclass(frozen=True, kw_only=True)
class AgentOptions:
    """What the agents are: image (None: the manifests'), components (deploy.manifests'
    HOST_NETWORK, VECTOR_NODEPORT, RAW_PROBES), the manifests' directory, how long to wait
    for them, and API servers as the control plane reaches them (CONTEXT=HOST:PORT)."""

    image: str | None = None
    components: tuple[str, ...] = ()
    manifests: str | None = None
    timeout_s: float = 120.0
    api_server_overrides: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Deployed:
    """The manifests of each context (applied, unless a dry run), the allow list they carry,
    and the contexts that failed with why."""

    rendered: dict[str, list[dict[str, Any]]]
    allow: tuple[str, ...]
    errors: dict[str, str] = field(default_factory=dict)


async def deploy_everywhere(
    clients: dict[str, KubeClient],
    errors: dict[str, str],
    rendered: dict[str, list[dict[str, Any]]],
    timeout_s: float,
    feedback: Feedback,
) -> None:
    """Apply each context's manifests and wait until its DaemonSets are ready (one bar for
    all: the agents ready across the contexts)."""
    counts: dict[str, tuple[int, int]] = {}
    with feedback.bars("agents ready", None) as bar:

        def on_ready(ctx: str, ready: int, desired: int) -> None:
            counts[ctx] = (ready, desired)
            total = sum(d for _, d in counts.values())
            bar(sum(r for r, _ in counts.values()), total or None)

        async def one(client: KubeClient) -> None:
            objs = rendered[client.context]
            await apply_all(client, objs)
            daemonsets = [o["metadata"]["name"] for o in objs if o["kind"] == "DaemonSet"]
            await wait_ready(client, daemonsets, timeout_s=timeout_s, progress=on_ready)

        await per_context({c: clients[c] for c in rendered}, errors, one)


async def deploy(
    kubeconfig: str,
    contexts: list[str],
    token: str,
    agents: AgentOptions,
    *,
    dry_run: bool = False,
    feedback: Feedback | None = None,
) -> Deployed:
    """Render the agents' manifests for each context with an allow list derived from what
    discovery found in all of them (pod CIDRs, node addresses, API servers), and apply them
    unless dry_run.

    A dry run, like kubectl's --dry-run=client, needs no API server: a context that could not
    be discovered gets the manifests with the others' allow list, and its error becomes a line
    said to the user instead."""
    feedback = feedback or Feedback()
    errors: dict[str, str] = {}
    async with clients_for(kubeconfig, contexts, errors) as clients:
        found = await per_context(clients, errors, lambda cl: discover(cl))
        allow = allow_list(found, api_servers(found, agents.api_server_overrides))
        rendered = {
            c: manifests(agents.manifests, token, allow, agents.image, agents.components)
            for c in found
        }
        if not dry_run:
            await deploy_everywhere(clients, errors, rendered, agents.timeout_s, feedback)
    if dry_run:
        for ctx in contexts:
            if ctx not in rendered:
                feedback.say(
                    f"{errors.pop(ctx, ctx)}; rendered without its discovery: its pod "
                    "CIDRs, nodes and API server are not in the allow list (deploy adds them)"
                )
                rendered[ctx] = manifests(
                    agents.manifests, token, allow, agents.image, agents.components
                )
    return Deployed(rendered=rendered, allow=allow, errors=errors)


async def undeploy(
    kubeconfig: str,
    contexts: list[str],
    *,
    manifest_root: str | None = None,
    delete_namespace: bool = False,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Remove everything deploy applies (idempotent): the names removed per context, and the
    contexts that failed with why."""
    objs = manifests(manifest_root, "x" * 16, (), None, COMPONENTS)
    errors: dict[str, str] = {}
    async with clients_for(kubeconfig, contexts, errors) as clients:
        removed = await per_context(
            clients, errors, lambda cl: remove_all(cl, objs, delete_namespace=delete_namespace)
        )
    return removed, errors
