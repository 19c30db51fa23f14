"""Database pods that probe for themselves: a netcheck container in each (kube/ephemeral.py),
driven through exec (agent/podexec.py).

Probed from an agent pod, 7000/7001 fail exactly where the guide's NetworkPolicy works: it
admits database pods only. So after install the mesh leaves from each database pod's own
network namespace. The container copies the agents' image, user and security context (with
NET_RAW only where the agents hold it, for the raw evidence), so it holds nothing the user has
not granted the agents already. Where it cannot run (RBAC without `patch` on
`pods/ephemeralcontainers`, ephemeral containers refused, the image not pulled), the pod's own
`cassandra` container probes with bash (agent/podshell.py: connects and the Management API's
liveness GET, still with the pod's identity; the rest of its probes not measured). Where that
fails too (no `pods/exec`, no bash), the pod is probed from the agent on its node and the run
says so, with what a NetworkPolicy will then do to the result (DATABASE_PORTS_PROBED_FROM_AGENTS
in diagnosis/isolation.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace

from netcheck.agent.podexec import PROBE_ONCE, PodExecTransport, exec_where, prober_ref
from netcheck.agent.podshell import CONTAINER, PodShellTransport, shell_reason, shell_ref
from netcheck.agent.transport import AgentError
from netcheck.discovery.kube import AgentPod, ContextDiscovery
from netcheck.discovery.kube_topology import KubeTopology, PodRef
from netcheck.kube.client import KubeClient
from netcheck.kube.ephemeral import ProbeContainer, ensure, probe_container_of
from netcheck.kube.errors import KubeError
from netcheck.model.report import ProberFallback
from netcheck.model.topology import Role

PARALLEL = 8  # pods set up at once per run: each is a PATCH and a few reads
START_TIMEOUT_S = 60.0


@dataclass(frozen=True, kw_only=True)
class Probers:
    kube: KubeTopology  # endpoints with their prober where one runs
    transport: PodExecTransport  # to the probers in netcheck's container
    shell: PodShellTransport  # to the probers in the cassandra container (bash)
    fallbacks: tuple[ProberFallback, ...]  # endpoints not probed from netcheck's container


def _template(d: ContextDiscovery) -> AgentPod | None:
    return next((a for a in d.agents if a.ready and a.image), None)


def probe_program(agent: AgentPod) -> tuple[str, ...]:
    """The agents' own interpreter (python-netraw where they hold NET_RAW) for probe-once."""
    if agent.command and agent.command[-1] == "agent":
        return (*agent.command[:-1], "probe-once")
    return PROBE_ONCE


async def prepare(
    kt: KubeTopology,
    discoveries: list[ContextDiscovery],
    clients: Mapping[str, KubeClient],
    timeout_s: float = START_TIMEOUT_S,
) -> Probers:
    """A prober in every database pod that can have one, each asked for its info once (so a
    refused exec or an image without probe-once falls back here, not in the middle of the
    mesh). The probers may probe the database pods' addresses only, and the control plane's
    nodes where the topology has them (the Vector aggregator's NodePort)."""
    templates = {d.context: _template(d) for d in discoveries}
    programs: dict[str, tuple[str, ...]] = {}
    addresses = {p.pod_ip for d in discoveries for p in d.database_pods if p.pod_ip} | {
        ep.address for ep in kt.topology.endpoints if ep.role is Role.CONTROL_PLANE_NODE
    }
    allow = tuple(sorted(f"{a}/{32 if ':' not in a else 128}" for a in addresses))
    transport = PodExecTransport(clients, programs, allow)
    shell = PodShellTransport(clients, allow)
    gate = asyncio.Semaphore(PARALLEL)

    async def own(ref: PodRef) -> tuple[str, str]:
        """(prober in netcheck's container, "") or ("", why not)."""
        agent = templates.get(ref.context)
        client = clients.get(ref.context)
        if agent is None or client is None:
            return "", f"context {ref.context}: no ready netcheck agent to copy"
        want: ProbeContainer = probe_container_of(agent.image, agent.pod_security, agent.security)
        name = ""
        try:
            name = await ensure(client, ref.namespace, ref.pod, want, timeout_s)
            prober = prober_ref(ref.context, ref.namespace, ref.pod, name)
            programs[prober] = probe_program(agent)
            await transport.info(prober)
        except KubeError as exc:
            return "", str(exc)
        except AgentError as exc:
            # the finding names the pods: the reason alone groups them
            return "", str(exc).removeprefix(exec_where(ref.namespace, ref.pod, name))
        return prober, ""

    async def one(endpoint: str) -> tuple[str, str, ProberFallback | None]:
        """(endpoint, prober, None), or the fallback: the cassandra container's shell, else
        ("" and) the agent."""
        ref = next(p for p in kt.pods if p.endpoint == endpoint)
        async with gate:
            prober, why = await own(ref)
            if prober:
                return endpoint, prober, None
            if CONTAINER in ref.containers:
                bash = shell_ref(ref.context, ref.namespace, ref.pod)
                try:
                    await shell.info(bash)
                    return endpoint, bash, ProberFallback(endpoint=endpoint, reason=why, shell=True)
                except AgentError as exc:
                    why = f"{why}; and {shell_reason(exc, ref.namespace, ref.pod)}"
        return endpoint, "", ProberFallback(endpoint=endpoint, reason=why)

    by_name = {ep.name: ep for ep in kt.topology.endpoints}
    wanted = [p.endpoint for p in kt.pods if by_name.get(p.endpoint) and by_name[p.endpoint].agent]
    done = await asyncio.gather(*(one(e) for e in wanted))
    probers = {e: p for e, p, _ in done if p}
    endpoints = tuple(
        replace(ep, prober=probers[ep.name]) if ep.name in probers else ep
        for ep in kt.topology.endpoints
    )
    return Probers(
        kube=replace(kt, topology=replace(kt.topology, endpoints=endpoints)),
        transport=transport,
        shell=shell,
        fallbacks=tuple(f for _, _, f in done if f is not None),
    )
