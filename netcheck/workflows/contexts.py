"""Working through kubeconfig contexts: a client per context, a call on every context at once
(a context that fails is set aside with its error, the others carry on), the agents' token,
their allow list and manifests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netcheck.agent.process import AgentConfigError, read_token
from netcheck.deploy.apply import NAMESPACE
from netcheck.deploy.manifests import (
    TOKEN_SECRET,
    DeployOptions,
    ManifestError,
    default_root,
    load_manifests,
)
from netcheck.discovery.kube import ContextDiscovery, discover
from netcheck.discovery.kube_topology import resolve
from netcheck.kube.ca_secret import CaSecretError, SecretRef, read_ca_secret
from netcheck.kube.client import KubeClient
from netcheck.kube.config import Kubeconfig, connection, load_kubeconfig
from netcheck.kube.errors import Forbidden, KubeconfigError, KubeError, NotFound
from netcheck.kube.resources import KINDS
from netcheck.model.text import ascii_int, one_line
from netcheck.workflows.feedback import BadInput


@contextlib.asynccontextmanager
async def clients_for(
    path: str, contexts: list[str], errors: dict[str, str]
) -> AsyncIterator[dict[str, KubeClient]]:
    """Open a client per context; a context that cannot be loaded goes to errors, not raise."""
    async with contextlib.AsyncExitStack() as stack:
        clients = {}
        try:
            kubeconfig: str | Kubeconfig = load_kubeconfig(path)  # parsed once for every context
        except KubeError:
            kubeconfig = path  # each context then says what is wrong with the file
        for ctx in contexts:
            try:
                conn = connection(kubeconfig, ctx)
            except KubeError as exc:
                errors[ctx] = str(exc)
                continue
            clients[ctx] = await stack.enter_async_context(KubeClient(conn))
        yield clients


async def per_context(
    clients: dict[str, KubeClient],
    errors: dict[str, str],
    fn: Callable[[KubeClient], Any],
) -> dict[str, Any]:
    """Run fn on every context at once; a KubeError marks that context, the rest carry on."""

    async def one(ctx: str, client: KubeClient) -> tuple[str, Any]:
        try:
            return ctx, await fn(client)
        except KubeError as exc:
            errors[ctx] = str(exc)
            return ctx, None

    pairs = await asyncio.gather(*(one(c, cl) for c, cl in clients.items()))
    return {c: r for c, r in pairs if c not in errors}


def denied_lines(found: dict[str, ContextDiscovery]) -> list[str]:
    """The optional reads RBAC refused: the run goes on without what they would have told."""
    return [f"warning: context {ctx}: {line}" for ctx, d in found.items() for line in d.denied]


async def tokens_from_secrets(
    clients: dict[str, KubeClient], errors: dict[str, str]
) -> dict[str, str]:
    """Each context's agent token, from the Secret deploy left."""

    async def one(client: KubeClient) -> str:
        try:
            secret = await client.get(KINDS["Secret"], TOKEN_SECRET, NAMESPACE)
        except NotFound:
            # undeployed (agent pods may still be terminating): the same advice as no agents
            raise NotFound(
                client.context,
                f"no Secret {NAMESPACE}/{TOKEN_SECRET} (the agents' token); "
                f"run `netcheck deploy --context {client.context}` first",
            ) from None
        raw = (secret.get("data") or {}).get("token", "")
        try:
            return base64.b64decode(raw).decode().strip()
        except ValueError:
            raise KubeconfigError(
                client.context,
                f"Secret {NAMESPACE}/{TOKEN_SECRET} holds no readable token; "
                "run `netcheck deploy` again",
            ) from None

    return await per_context(clients, errors, one)


@dataclass(frozen=True, kw_only=True)
class CaRead:
    """The CA certificates a Secret holds, read in every context that has it: pem (the
    distinct certificates, PEM; empty when none was read), lines (why a context gave none,
    for stderr), problem (when no context gave one: the chains go unverified)."""

    pem: str = ""
    lines: tuple[str, ...] = ()
    problem: str = ""


async def ca_from_secrets(clients: dict[str, KubeClient], ref: SecretRef, what: str) -> CaRead:
    """The CA of Secret ref in each context (`get secrets` by name). A context where it is
    refused or unreadable is said; one where it is absent only when no context has it (a CA
    Secret need not be in every cluster). The certificates found are trusted together."""

    async def one(ctx: str, client: KubeClient) -> tuple[str, str, str]:
        """(context, PEM, why none: "absent", or the line to say)."""
        try:
            return ctx, await read_ca_secret(client, ref), ""
        except NotFound:
            return ctx, "", "absent"
        except Forbidden as exc:
            why = f"{exc.detail} (netcheck-ca-secret grants it by name: is {ref.name} listed?)"
        except KubeError as exc:
            why = exc.detail
        except CaSecretError as exc:
            why = one_line(str(exc))
        return ctx, "", f"warning: context {ctx}: {why}"

    found = await asyncio.gather(*(one(c, cl) for c, cl in sorted(clients.items())))
    pems = dict.fromkeys(
        block for _, pem, _ in found for block in pem.split("-----END CERTIFICATE-----\n") if block
    )
    lines = [why for _, _, why in found if why and why != "absent"]
    if not pems:
        absent = [c for c, _, why in found if why == "absent"]
        if absent:
            lines.append(f"warning: Secret {ref} not found in context(s) {', '.join(absent)}")
        return CaRead(
            lines=tuple(lines),
            problem=f"{what} not read from Secret {ref} in any context: chains not verified",
        )
    return CaRead(pem="".join(f"{b}-----END CERTIFICATE-----\n" for b in pems), lines=tuple(lines))


def agent_token(token_file: str | None) -> str:
    """The agents' token from a file, or a new random one."""
    if token_file:
        try:
            return read_token(token_file)
        except AgentConfigError as exc:
            raise BadInput(str(exc)) from None
    return secrets.token_hex(32)


def allow_list(
    found: dict[str, ContextDiscovery], api_servers: dict[str, tuple[str, int]]
) -> tuple[str, ...]:
    """The networks agents may probe, derived from discovery and nothing else."""
    nets: list[str] = []
    for d in found.values():
        nets.extend(d.pod_cidrs)
        nets.extend(f"{n.internal_ip}/32" for n in d.nodes if n.internal_ip)
        nets.extend(f"{p.pod_ip}/32" for p in d.database_pods if p.pod_ip)
    for host, _ in api_servers.values():
        with contextlib.suppress(ValueError):
            nets.append(str(ipaddress.ip_network(host)))
    return tuple(dict.fromkeys(nets))


def api_servers(
    found: dict[str, ContextDiscovery], overrides: tuple[str, ...]
) -> dict[str, tuple[str, int]]:
    """Each context's API server as an address and port: the kubeconfig's, or an override
    CONTEXT=HOST:PORT (where the control plane reaches it elsewhere)."""
    out: dict[str, tuple[str, int]] = {}
    for ctx, d in found.items():
        try:
            out[ctx] = (resolve(d.api_host), d.api_port)
        except OSError:
            continue  # a name the collector cannot resolve: overrides below may cover it
    for item in overrides:
        ctx, _, hostport = item.partition("=")
        host, _, port = hostport.rpartition(":")
        number = ascii_int(port, 5)
        if not ctx or not host or number is None or not 0 < number < 65536:
            raise BadInput(
                f"--api-server {item!r}: write CONTEXT=HOST:PORT, e.g. DP_WEST=10.1.0.5:6443"
            )
        try:
            out[ctx] = (resolve(host.strip("[]")), number)
        except OSError:
            raise BadInput(
                f"--api-server {item!r}: cannot resolve {host}; give an address"
            ) from None
    return out


def manifests(
    root: str | None,
    token: str,
    allow: tuple[str, ...],
    image: str | None,
    components: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The agents' manifests, rendered (root: a directory of them; default probes/kubernetes)."""
    try:
        return load_manifests(
            Path(root) if root else default_root(),
            DeployOptions(token=token, allow=allow, image=image, components=components),
        )
    except ManifestError as exc:
        raise BadInput(str(exc)) from None


async def discover_all(
    path: str, names: list[str], namespaces: tuple[str, ...], errors: dict[str, str]
) -> dict[str, ContextDiscovery]:
    """`discover`: what each context holds (database pods, nodes, CIDRs, services, policies,
    client configs, agents)."""
    async with clients_for(path, names, errors) as clients:
        return await per_context(clients, errors, lambda cl: discover(cl, namespaces=namespaces))


async def server_versions(
    path: str, names: list[str], errors: dict[str, str], *, check: bool = True
) -> dict[str, tuple[str, int, str] | None]:
    """`contexts`: each context's API server, port and version (None: not asked)."""

    async def one(client: KubeClient) -> tuple[str, int, str]:
        version = await client.version()
        return client.conn.server, client.conn.port, str(version.get("gitVersion", ""))

    async with clients_for(path, names, errors) as clients:
        if not check:
            return {c: None for c in clients}
        return await per_context(clients, errors, one)
