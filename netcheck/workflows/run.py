"""`run`: the full mesh, probed and diagnosed, from an inventory or from kubeconfig contexts.

run_inventory: the inventory's endpoints, probed by its agents over HTTP (the lab's, or agents
run by hand). run_contexts: the database pods cass-operator runs in each context, probing from
their own network namespaces (collector/probers.py), their node reads, the internode and
client TLS of each node, the agents' negative probes of 7000/7001 and the NetworkPolicy audit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from dataclasses import dataclass, field
from typing import Any

from netcheck.agent.podexec import EXEC_SCHEME
from netcheck.agent.podproxy import PodProxyTransport
from netcheck.agent.podshell import SHELL_SCHEME
from netcheck.agent.transport import AgentTransport, HttpAgentTransport, RoutedTransport
from netcheck.cassandra.collect import Collected as CassandraCollected
from netcheck.cassandra.collect import CollectOptions, collect_nodes
from netcheck.cassandra.exec import ExecBackend, ExecTarget
from netcheck.cassandra.kube_exec import KubeExec
from netcheck.collector.evidence import EvidenceOptions
from netcheck.collector.outsiders import probe_outsiders
from netcheck.collector.plan import plan_mesh
from netcheck.collector.probers import Probers
from netcheck.collector.probers import prepare as prepare_probers
from netcheck.collector.tls_check import check_tls
from netcheck.deploy.apply import NAMESPACE
from netcheck.diagnosis.cidrs import cidr_findings, cidr_problems
from netcheck.diagnosis.exposure import exposure_findings, judged
from netcheck.diagnosis.install import InstallCheck, install_check
from netcheck.diagnosis.isolation import (
    audit,
    isolation_findings,
    prober_findings,
    refused_to_agents,
)
from netcheck.diagnosis.nodepools import node_pool_findings
from netcheck.diagnosis.overlay import fold, nat_by_design, overlay_findings
from netcheck.diagnosis.tls import tls_findings, tls_rows
from netcheck.discovery.kube import ContextDiscovery, discover
from netcheck.discovery.kube_topology import KubeTopology, PodRef, run_topology
from netcheck.kube.agentref import AGENT_SCHEME
from netcheck.kube.ca_secret import SecretRef
from netcheck.kube.client import KubeClient
from netcheck.model.probe import ProbeResult
from netcheck.model.report import OutsiderProbe, PortIsolation, RunReport
from netcheck.model.topology import Role, Topology
from netcheck.probes.tls_facts import MAX_CA_PEM
from netcheck.workflows.contexts import (
    agent_token,
    ca_from_secrets,
    clients_for,
    denied_lines,
    per_context,
    tokens_from_secrets,
)
from netcheck.workflows.feedback import Feedback
from netcheck.workflows.probing import (
    Probed,
    agent_problem_lines,
    node_reads,
    probe_all,
    report_of,
    with_node_reads,
)

LOG_CONTAINER = "server-system-logger"
CASS_CLUSTER = "cassandra.datastax.com/cluster"


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """How a run probes. raw: the raw evidence pass (None: none); cassandra: nodetool, logs
    and the agents' node reads (None: none); ca_pem, client_ca_pem: the CAs the nodes'
    internode and client TLS chains are verified with (run_contexts); ca_secret,
    client_ca_secret: Secrets those CAs are read from, in every context (cert-manager's
    `ca.crt`, K8ssandra's truststore: kube/ca_secret.py)."""

    timeout: float = 2.0
    payload_bytes: int = 16384
    raw: EvidenceOptions | None = field(default_factory=EvidenceOptions)
    cassandra: CollectOptions | None = field(default_factory=CollectOptions)
    ca_pem: str = ""
    client_ca_pem: str = ""
    # read in the contexts (run_contexts) and added to ca_pem / client_ca_pem
    ca_secret: SecretRef | None = None
    client_ca_secret: SecretRef | None = None


@dataclass(frozen=True, kw_only=True)
class RunDone:
    """The run's report, and the contexts it could not use with why (the run is incomplete
    when there are any)."""

    report: RunReport
    errors: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- from an inventory


def inventory_targets(topology: Topology) -> list[ExecTarget]:
    return [
        ExecTarget(endpoint=ep.name, address=ep.address, namespace=ep.namespace)
        for ep in topology.endpoints
        if ep.role is Role.DATABASE
    ]


async def run_inventory(
    topology: Topology,
    token: str,
    options: RunOptions,
    *,
    nodes: ExecBackend | None = None,
    feedback: Feedback | None = None,
) -> RunReport:
    """The inventory's mesh through its agents (HTTP, with the token). nodes: where nodetool
    and the logs are read (the inventory's cassandra.exec backend); None: not read."""
    feedback = feedback or Feedback()
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    with_cassandra = options.cassandra is not None and nodes is not None

    async def network() -> tuple[Probed, tuple[ProbeResult, ...]]:
        async with HttpAgentTransport(token) as transport:
            probed = await probe_all(
                topology,
                plan_mesh(topology),
                transport,
                options.timeout,
                options.payload_bytes,
                feedback,
                options.raw,
            )
            # the agents run one batch at a time: their node reads follow the mesh
            reads = await node_reads(topology, transport, feedback) if with_cassandra else ()
            return probed, reads

    collected: CassandraCollected | None = None
    if with_cassandra:
        assert nodes is not None and options.cassandra is not None
        # nodetool and the logs need no agent: they are read while the mesh is probed
        (probed, reads), read = await asyncio.gather(
            network(), collect_nodes(nodes, inventory_targets(topology), options.cassandra)
        )
        collected = with_node_reads(read, reads, topology)
    else:
        probed, _ = await network()
    return report_of(topology, probed, started, t0, cassandra=collected, feedback=feedback)


# ---------------------------------------------------------------- from kubeconfig contexts


def kube_targets(topology: Topology, pods: tuple[PodRef, ...]) -> list[ExecTarget]:
    """The database pods to exec into: `cassandra` for nodetool, the logger sidecar for logs."""
    address = {ep.name: ep.address for ep in topology.endpoints}
    return [
        ExecTarget(
            endpoint=p.endpoint,
            address=address.get(p.endpoint, ""),
            namespace=p.namespace,
            context=p.context,
            pod=p.pod,
            log_container=LOG_CONTAINER if LOG_CONTAINER in p.containers else "cassandra",
        )
        for p in pods
    ]


@dataclass(frozen=True, kw_only=True)
class Probing:
    """One run's probing through kubeconfig contexts (run_contexts and preflight)."""

    kt: KubeTopology
    clients: dict[str, KubeClient]
    tokens: dict[str, str]
    options: RunOptions
    feedback: Feedback
    control_plane: str | None = None
    extra_findings: tuple[Any, ...] = ()
    problems: tuple[str, ...] = ()
    started: datetime.datetime
    t0: float
    isolation: tuple[PortIsolation, ...] = ()
    probers: Probers | None = None  # database pods that probe for themselves (run_contexts)
    # the contexts' policies, which say where a probe from an agent is refused by design
    discoveries: list[ContextDiscovery] | None = None


async def probe_and_report(p: Probing) -> RunReport:
    """The mesh (and raw evidence), the TLS looks, the node reads with nodetool and the logs
    beside them, the negative probes; then the diagnosis and the report."""
    topology, options, say = p.kt.topology, p.options, p.feedback.say
    plan = plan_mesh(topology, p.control_plane)
    proxy = PodProxyTransport(p.clients, p.tokens)
    transport: AgentTransport = proxy
    if p.probers is not None:
        transport = RoutedTransport(
            {
                AGENT_SCHEME: proxy,
                EXEC_SCHEME: p.probers.transport,
                SHELL_SCHEME: p.probers.shell,
            }
        )
    cassandra = options.cassandra if p.kt.pods else None
    discoveries = p.discoveries
    tls_results: tuple[ProbeResult, ...] = ()

    async def network() -> tuple[Probed, tuple[ProbeResult, ...]]:
        nonlocal tls_results
        probed = await probe_all(
            topology, plan, transport, options.timeout, options.payload_bytes, p.feedback,
            options.raw,
        )  # fmt: skip
        if discoveries is not None:
            results = refused_to_agents(discoveries, topology, probed.results)
            probed = dataclasses.replace(probed, results=results)
            # each node's TLS, looked at from a database pod that reached it
            tls_results, tls_problems = await check_tls(
                topology, probed.results, transport, ca_pem=options.ca_pem,
                client_ca_pem=options.client_ca_pem, timeout_s=max(options.timeout, 2.0),
            )  # fmt: skip
            for line in agent_problem_lines(tls_problems):
                say(f"TLS not looked at: {line}")
        # the agents run one batch at a time: their node reads follow the mesh
        return probed, (await node_reads(topology, transport, p.feedback) if cassandra else ())

    collected = None
    if cassandra is None:
        probed, _ = await network()
    else:
        # nodetool and the logs go through exec, not the agents: read while the mesh is probed
        # (no progress bar of their own: the terminal holds one live display at a time)
        targets = kube_targets(topology, p.kt.pods)
        (probed, reads), collected = await asyncio.gather(
            network(), collect_nodes(KubeExec(p.clients), targets, cassandra)
        )
        collected = with_node_reads(collected, reads, topology)
    tls = tls_rows(tls_results, datetime.datetime.now(datetime.UTC))
    outsider_probes: tuple[OutsiderProbe, ...] = ()
    problems = p.problems
    extra_findings = p.extra_findings
    if discoveries is not None:
        # after the node reads: an agent runs one batch at a time
        outsiders = await probe_outsiders(discoveries, topology, proxy, timeout_s=options.timeout)
        outsider_probes = judged(outsiders.probes, probed.results)
        unmade = [
            f"negative probes not made: {line}" for line in agent_problem_lines(outsiders.problems)
        ]
        for line in unmade:
            say(line)
        problems = (*problems, *unmade)
        extra_findings = (
            *exposure_findings(
                discoveries,
                outsider_probes,
                p.isolation,
                isolation_findings(discoveries, p.isolation),
            ),
            *tls_findings(tls, topology),
            *extra_findings,
        )
    return report_of(
        topology,
        probed,
        p.started,
        p.t0,
        tuple(extra_findings),
        (*problems, *p.kt.problems),
        cassandra=collected,
        isolation=p.isolation,
        outsider_probes=outsider_probes,
        tls=tls,
        feedback=p.feedback,
    )


async def _cas_read(
    clients: dict[str, KubeClient], options: RunOptions, feedback: Feedback
) -> tuple[RunOptions, tuple[str, ...]]:
    """options with the CAs of its Secrets added to ca_pem and client_ca_pem, and a problem
    for each Secret no context gave (its chains unverified: the run is incomplete)."""
    problems: list[str] = []

    async def added(given: str, ref: SecretRef | None, what: str) -> str:
        if ref is None:
            return given
        read = await ca_from_secrets(clients, ref, what)
        for line in read.lines:
            feedback.say(line)
        pem = f"{given.rstrip()}\n{read.pem}" if given.strip() else read.pem
        if read.problem:
            problems.append(read.problem)
        elif len(pem) > MAX_CA_PEM:
            problems.append(f"{what}: more than {MAX_CA_PEM} bytes of certificates; not used")
        else:
            return pem
        return given

    ca = await added(options.ca_pem, options.ca_secret, "the internode CA")
    client_ca = await added(options.client_ca_pem, options.client_ca_secret, "the client CA")
    return dataclasses.replace(options, ca_pem=ca, client_ca_pem=client_ca), tuple(problems)


def _usable(
    found: dict[str, ContextDiscovery],
    namespaces: tuple[str, ...],
    errors: dict[str, str],
    control_plane: str | None = None,
) -> None:
    """Set aside the contexts without database pods or without agents, saying why (a
    control plane without database pods is set aside silently: it holds none to probe)."""
    where = f"namespace(s) {', '.join(namespaces)}" if namespaces else "all namespaces"
    for ctx, d in list(found.items()):
        if not d.database_pods and ctx == control_plane:
            del found[ctx]
        elif not d.database_pods:
            errors[ctx] = (
                f"context {ctx}: no database pods found with label selector "
                f"'{CASS_CLUSTER}' in {where}; check --namespace and that cass-operator "
                "created the datacenter"
            )
            del found[ctx]
        elif not d.agents:
            errors[ctx] = (
                f"context {ctx}: no netcheck agents in namespace {NAMESPACE}; "
                f"run `netcheck deploy --context {ctx}` first"
            )
            del found[ctx]


async def run_contexts(
    kubeconfig: str,
    contexts: list[str],
    options: RunOptions,
    *,
    namespaces: tuple[str, ...] = (),
    token_file: str | None = None,
    feedback: Feedback | None = None,
    control_plane: str | None = None,
) -> RunDone:
    """The discovered database pods of each context, probed by the agents `netcheck deploy`
    put there (token from their Secret, or token_file) and from the pods themselves.
    control_plane: Mission Control's control-plane context (one of contexts): its install is
    checked too, and the Vector aggregator's NodePort on its nodes probed."""
    feedback = feedback or Feedback()
    errors: dict[str, str] = {}
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    async with clients_for(kubeconfig, contexts, errors) as clients:
        found = await per_context(clients, errors, lambda cl: discover(cl, namespaces=namespaces))
        for line in denied_lines(found):
            feedback.say(line)
        installed = (
            install_check(list(found.values()), control_plane, installing=False)
            if control_plane
            else InstallCheck(findings=(), problems=())
        )
        cp = found.get(control_plane or "")
        _usable(found, namespaces, errors, control_plane)
        live = {c: clients[c] for c in found}
        if token_file:
            token = agent_token(token_file)
            tokens = {c: token for c in live}
        else:
            tokens = await tokens_from_secrets(live, errors)
        options, ca_problems = await _cas_read(live, options, feedback)
        used = [found[c] for c in contexts if c in found and c in tokens]
        kt = run_topology(used, cp)
        rows = audit(used)
        probers = await prepare_probers(kt, used, live)
        for reason, shell in dict.fromkeys((f.reason, f.shell) for f in probers.fallbacks):
            instead = (
                "their cassandra container's shell (connects and the liveness GET only)"
                if shell
                else "the agents"
            )
            feedback.say(f"warning: {reason}; the database pods it names are probed from {instead}")
        report = await probe_and_report(
            Probing(
                kt=probers.kube,
                clients=live,
                tokens=tokens,
                options=options,
                feedback=feedback,
                control_plane=control_plane,
                extra_findings=(
                    *installed.findings,
                    *overlay_findings(list(found.values())),
                    *cidr_findings(list(found.values())),
                    *prober_findings(probers.fallbacks),
                    *node_pool_findings(list(found.values())),
                ),
                problems=(
                    *(errors[c] for c in contexts if c in errors),
                    *installed.problems,
                    *cidr_problems(list(found.values())),
                    *ca_problems,
                ),
                started=started,
                t0=t0,
                isolation=rows,
                probers=probers,
                discoveries=used,
            )
        )
    # the control plane's overlay too where it holds no database pods (the aggregator's side)
    overlaid = [*used, *([cp] if cp is not None and all(cp is not d for d in used) else [])]
    report = dataclasses.replace(
        report, findings=fold(report.findings, overlaid), nat_by_design=nat_by_design(overlaid)
    )
    return RunDone(report=report, errors=errors)
