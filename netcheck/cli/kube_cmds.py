"""Commands that work through kubeconfig contexts: contexts, discover, deploy, undeploy,
preflight, and the context half of `run`."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import datetime
import ipaddress
import json
import secrets
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

from netcheck.agent.podexec import EXEC_SCHEME
from netcheck.agent.podproxy import PodProxyTransport
from netcheck.agent.process import AgentConfigError, read_token
from netcheck.agent.transport import AgentTransport, RoutedTransport
from netcheck.cassandra.collect import CollectOptions, collect_nodes
from netcheck.cassandra.kube_exec import KubeExec
from netcheck.cli.cassandra_cmds import kube_targets
from netcheck.cli.common import (
    Probed,
    agent_problem_lines,
    fail,
    node_reads,
    probe_all,
    raw_options,
    report_of,
    with_node_reads,
    write_outputs,
)
from netcheck.collector.evidence import EvidenceOptions
from netcheck.collector.outsiders import probe_outsiders
from netcheck.collector.plan import plan_mesh
from netcheck.collector.probers import Probers
from netcheck.collector.probers import prepare as prepare_probers
from netcheck.collector.tls_check import check_tls
from netcheck.deploy.apply import (
    NAMESPACE,
    apply_all,
    nodeport_holder,
    remove_all,
    wait_ready,
)
from netcheck.deploy.manifests import (
    COMPONENTS,
    HOST_NETWORK,
    RAW_PROBES,
    TOKEN_SECRET,
    VECTOR_NODEPORT,
    DeployOptions,
    ManifestError,
    default_root,
    load_manifests,
    to_yaml,
)
from netcheck.diagnosis.cidrs import cidr_findings
from netcheck.diagnosis.exposure import exposure_findings, judged
from netcheck.diagnosis.isolation import (
    audit,
    isolation_findings,
    prober_findings,
    refused_to_agents,
)
from netcheck.diagnosis.nodepools import node_pool_findings
from netcheck.diagnosis.tls import tls_findings, tls_rows
from netcheck.discovery.kube import ContextDiscovery, discover
from netcheck.discovery.kube_topology import (
    KubeTopology,
    preflight_topology,
    resolve,
    run_topology,
)
from netcheck.kube.agentref import AGENT_SCHEME
from netcheck.kube.client import KubeClient
from netcheck.kube.config import (
    ContextEntry,
    Kubeconfig,
    connection,
    kubeconfig_path,
    list_contexts,
    load_kubeconfig,
)
from netcheck.kube.errors import KubeconfigError, KubeError, NotFound
from netcheck.kube.resources import KINDS
from netcheck.model.findings import Finding, Severity
from netcheck.model.probe import ProbeResult
from netcheck.model.report import OutsiderProbe, PortIsolation, RunReport

EXIT_INCOMPLETE = 3
T = TypeVar("T")


def kube_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--all-contexts", is_flag=True, help="Every context of the kubeconfig.")(f)
    f = click.option(
        "--context",
        "contexts",
        multiple=True,
        metavar="NAME",
        help="Kubeconfig context (repeatable; default: the current context).",
    )(f)
    f = click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        default=None,
        help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
    )(f)
    return f


def pick_contexts(
    kubeconfig: str | None, contexts: tuple[str, ...], all_contexts: bool
) -> tuple[str, list[ContextEntry], list[str]]:
    path = kubeconfig_path(kubeconfig)
    try:
        entries = list_contexts(path)
    except KubeconfigError as exc:
        fail(str(exc).removeprefix("context -: "))
    known = [e.name for e in entries]
    if all_contexts:
        chosen = known
    elif contexts:
        unknown = [c for c in contexts if c not in known]
        if unknown:
            fail(
                f"context {unknown[0]} is not in {path} (known: {', '.join(known) or 'none'}); "
                "fix --context or see `netcheck contexts`"
            )
        chosen = list(dict.fromkeys(contexts))
    else:
        current = [e.name for e in entries if e.current]
        if not current:
            fail(f"{path} has no current-context; pass --context NAME or --all-contexts")
        chosen = current
    return path, entries, chosen


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


def say_denied(found: dict[str, ContextDiscovery]) -> None:
    """The optional reads RBAC refused: the run goes on without what they would have told."""
    for ctx, d in found.items():
        for line in d.denied:
            click.echo(f"netcheck: warning: context {ctx}: {line}", err=True)


def report_errors(errors: dict[str, str]) -> None:
    for message in errors.values():
        click.echo(f"netcheck: error: {message}", err=True)


def exit_for_errors(errors: dict[str, str]) -> None:
    if errors:
        report_errors(errors)
        sys.exit(EXIT_INCOMPLETE)
    return None


# ---------------------------------------------------------------- contexts


@click.command("contexts")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), default=None)
@click.option("--no-check", is_flag=True, help="Only list; do not call the API servers.")
def contexts_cmd(kubeconfig: str | None, no_check: bool) -> None:
    """List kubeconfig contexts and check each API server (reachable, authenticated, version).

    Exit codes: 0 every API server answered, 3 some did not, 2 bad kubeconfig.
    """
    path, entries, names = pick_contexts(kubeconfig, (), True)
    errors: dict[str, str] = {}

    async def check() -> dict[str, Any]:
        async with clients_for(path, names, errors) as clients:
            if no_check:
                return {c: None for c in clients}
            return await per_context(clients, errors, lambda cl: _server_and_version(cl))

    found = asyncio.run(check())
    table = Table(box=None, pad_edge=False)
    for col in ("CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE", "SERVER", "PORT", "STATUS"):
        table.add_column(col)
    for e in entries:
        server, port, status = "", "", ""
        if e.name in found:
            got = found[e.name]
            if got is not None:
                server, port, version = got
                status = f"ok {version}"
            else:
                status = "not checked"
        if e.name in errors:
            status = "error: " + errors[e.name].split(": ", 1)[1]
        table.add_row(
            "*" if e.current else "",
            e.name,
            e.cluster,
            e.user,
            e.namespace,
            server,
            str(port),
            status,
        )
    Console(highlight=False, width=200).print(table)
    sys.exit(EXIT_INCOMPLETE if errors else 0)


async def _server_and_version(client: KubeClient) -> tuple[str, int, str]:
    version = await client.version()
    return client.conn.server, client.conn.port, str(version.get("gitVersion", ""))


# ---------------------------------------------------------------- discover


def _discovery_dict(d: ContextDiscovery) -> dict[str, Any]:
    out = dataclasses.asdict(d)
    out["pod_cidrs"] = list(d.pod_cidrs)
    del out["policies"]  # evaluated form of network_policies, for the audit only
    out["namespace_labels"] = {ns: dict(labels) for ns, labels in d.namespace_labels}
    out["policy_unread"] = [{"namespace": ns, "why": why} for ns, why in d.policy_unread]
    return out


async def _discover_all(
    path: str, names: list[str], namespaces: tuple[str, ...], errors: dict[str, str]
) -> dict[str, ContextDiscovery]:
    async with clients_for(path, names, errors) as clients:
        return await per_context(clients, errors, lambda cl: discover(cl, namespaces=namespaces))


@click.command("discover")
@kube_options
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Database namespace(s).")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "yaml"]),
    default="text",
    show_default=True,
)
def discover_cmd(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    namespaces: tuple[str, ...],
    output: str,
) -> None:
    """Show what netcheck finds in each context: database pods, nodes, CIDRs, services,
    NetworkPolicies, Mission Control client configs (Secret names only) and agents."""
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    errors: dict[str, str] = {}
    found = asyncio.run(_discover_all(path, names, namespaces, errors))
    doc = {
        "contexts": [_discovery_dict(found[c]) for c in names if c in found],
        "errors": [errors[c] for c in names if c in errors],
    }
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    elif output == "yaml":
        click.echo(yaml.safe_dump(doc, sort_keys=False), nl=False)
    else:
        for c in names:
            if c in found:
                _print_discovery(found[c])
    exit_for_errors(errors)


def _print_discovery(d: ContextDiscovery) -> None:
    click.echo(f"context {d.context}: {d.server} (Kubernetes {d.version})")
    click.echo(f"  nodes: {len(d.nodes)}; pod CIDRs: {', '.join(d.pod_cidrs) or 'none published'}")
    click.echo(f"  database pods ({len(d.database_pods)}):")
    for p in d.database_pods:
        seed = " seed" if p.seed else ""
        click.echo(
            f"    {p.namespace}/{p.name} {p.pod_ip or '-'} dc={p.datacenter} rack={p.rack} "
            f"node={p.node}{seed} {p.node_state}"
        )
    for s in d.services:
        click.echo(f"  service {s.namespace}/{s.name} ({s.role}): {', '.join(s.endpoints) or '-'}")
    for pol in d.network_policies:
        click.echo(
            f"  networkpolicy {pol.namespace}/{pol.name} selects {pol.pod_selector}, "
            f"ingress ports {list(pol.ingress_ports) or 'any'}"
        )
    for cc in d.client_configs:
        ok = "found" if cc.secret_found else "MISSING"
        click.echo(
            f"  clientconfig {cc.name} -> context {cc.context_name}, secret {cc.secret} {ok}"
        )
    click.echo(f"  netcheck agents: {sum(a.ready for a in d.agents)} ready of {len(d.agents)}")
    for w in d.warnings:
        click.echo(f"  warning: {w}")


# ---------------------------------------------------------------- deploy


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


def _api_servers(
    found: dict[str, ContextDiscovery], overrides: tuple[str, ...]
) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for ctx, d in found.items():
        try:
            out[ctx] = (resolve(d.api_host), d.api_port)
        except OSError:
            continue  # a name the collector cannot resolve: overrides below may cover it
    for item in overrides:
        ctx, _, hostport = item.partition("=")
        host, _, port = hostport.rpartition(":")
        if not ctx or not host or not port.isdigit():
            fail(f"--api-server {item!r}: write CONTEXT=HOST:PORT, e.g. DP_WEST=10.1.0.5:6443")
        try:
            out[ctx] = (resolve(host.strip("[]")), int(port))
        except OSError:
            fail(f"--api-server {item!r}: cannot resolve {host}; give an address")
    return out


def _token(token_file: str | None) -> str:
    if token_file:
        try:
            return read_token(token_file)
        except AgentConfigError as exc:
            fail(str(exc))
    return secrets.token_hex(32)


def _manifests(
    root: str | None,
    token: str,
    allow: tuple[str, ...],
    image: str | None,
    components: tuple[str, ...],
) -> list[dict[str, Any]]:
    try:
        return load_manifests(
            Path(root) if root else default_root(),
            DeployOptions(token=token, allow=allow, image=image, components=components),
        )
    except ManifestError as exc:
        fail(str(exc))


def deploy_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option("--image", default=None, help="Agent image (default: the manifest's)."),
            click.option(
                "--token-file",
                type=click.Path(dir_okay=False),
                default=None,
                help="Agent token to put in the Secret (default: a new random one).",
            ),
            click.option("--host-network", is_flag=True, help="Also a host-network DaemonSet."),
            click.option(
                "--raw-probes",
                is_flag=True,
                help="Give the agents NET_RAW (only that) for raw probes: DROP vs REJECT, "
                "traceroute, path MTU, latency. Needs the image's python-netraw.",
            ),
            click.option(
                "--manifests",
                type=click.Path(file_okay=False),
                default=None,
                help="Manifest directory (default: probes/kubernetes).",
            ),
            click.option(
                "--deploy-timeout",
                default=120.0,
                show_default=True,
                type=click.FloatRange(1, 3600),
                help="Seconds to wait for agents to be ready.",
            ),
            click.option(
                "--api-server",
                "api_server_overrides",
                multiple=True,
                metavar="CONTEXT=HOST:PORT",
                help="API server address as the control plane reaches it "
                "(default: the kubeconfig's server URL).",
            ),
        ]
    ):
        f = opt(f)
    return f


async def _deploy_everywhere(
    clients: dict[str, KubeClient],
    errors: dict[str, str],
    manifests: dict[str, list[dict[str, Any]]],
    timeout_s: float,
    show: bool,
) -> None:
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True, disable=not show) as progress:
        tasks = {c: progress.add_task(f"{c}: agents ready", total=None) for c in manifests}

        def on_ready(ctx: str, ready: int, desired: int) -> None:
            progress.update(tasks[ctx], completed=ready, total=desired or None)

        async def one(client: KubeClient) -> None:
            objs = manifests[client.context]
            await apply_all(client, objs)
            daemonsets = [o["metadata"]["name"] for o in objs if o["kind"] == "DaemonSet"]
            await wait_ready(client, daemonsets, timeout_s=timeout_s, progress=on_ready)

        await per_context({c: clients[c] for c in manifests}, errors, one)


@click.command("deploy")
@kube_options
@deploy_options
@click.option("--dry-run", is_flag=True, help="Print the manifests instead of applying them.")
@click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml")
@click.option("--vector-nodeport", is_flag=True, help="Also the NodePort 30600 Service.")
def deploy_cmd(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    image: str | None,
    token_file: str | None,
    host_network: bool,
    raw_probes: bool,
    manifests: str | None,
    deploy_timeout: float,
    api_server_overrides: tuple[str, ...],
    dry_run: bool,
    output: str,
    vector_nodeport: bool,
) -> None:
    """Deploy the probe agents (namespace netcheck) and wait until they are ready.

    The agents may probe only what discovery found in the chosen contexts: pod CIDRs, node
    addresses and API servers.
    """
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    token = _token(token_file)
    components = (
        ((HOST_NETWORK,) if host_network else ())
        + ((VECTOR_NODEPORT,) if vector_nodeport else ())
        + ((RAW_PROBES,) if raw_probes else ())
    )
    errors: dict[str, str] = {}

    async def go() -> tuple[dict[str, list[dict[str, Any]]], tuple[str, ...]]:
        async with clients_for(path, names, errors) as clients:
            found = await per_context(clients, errors, lambda cl: discover(cl))
            allow = allow_list(found, _api_servers(found, api_server_overrides))
            rendered = {c: _manifests(manifests, token, allow, image, components) for c in found}
            if not dry_run:
                await _deploy_everywhere(
                    clients, errors, rendered, deploy_timeout, sys.stderr.isatty()
                )
            return rendered, allow

    rendered, allow = asyncio.run(go())
    if dry_run:
        # like kubectl's --dry-run=client: printing manifests needs no API server; a context
        # that could not be discovered gets them with the allow list of the others
        for ctx in names:
            if ctx not in rendered:
                click.echo(
                    f"netcheck: {errors.pop(ctx, ctx)}; rendered without its discovery: its pod "
                    "CIDRs, nodes and API server are not in the allow list (deploy adds them)",
                    err=True,
                )
                rendered[ctx] = _manifests(manifests, token, allow, image, components)
        for ctx, objs in rendered.items():
            if output == "json":
                click.echo(json.dumps({"context": ctx, "items": objs}, indent=2))
            else:
                click.echo(f"# context: {ctx}")
                click.echo(to_yaml(objs), nl=False)
    else:
        for ctx in rendered:
            if ctx not in errors:
                click.echo(f"{ctx}: agents ready in namespace {NAMESPACE}")
    exit_for_errors(errors)


@click.command("undeploy")
@kube_options
@click.option("--manifests", type=click.Path(file_okay=False), default=None)
@click.option("--delete-namespace", is_flag=True, help="Remove namespace netcheck as well.")
def undeploy_cmd(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    manifests: str | None,
    delete_namespace: bool,
) -> None:
    """Remove everything deploy applied (idempotent)."""
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    objs = _manifests(manifests, "x" * 16, (), None, COMPONENTS)
    errors: dict[str, str] = {}

    async def go() -> dict[str, list[str]]:
        async with clients_for(path, names, errors) as clients:
            return await per_context(
                clients, errors, lambda cl: remove_all(cl, objs, delete_namespace=delete_namespace)
            )

    removed = asyncio.run(go())
    for ctx, names_removed in removed.items():
        click.echo(
            f"{ctx}: removed {len(names_removed)} object(s)"
            + (f": {', '.join(names_removed)}" if names_removed else " (nothing was deployed)")
        )
    exit_for_errors(errors)


# ---------------------------------------------------------------- preflight and run


def _output_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for opt in reversed(
        [
            click.option(
                "--timeout",
                default=2.0,
                show_default=True,
                type=click.FloatRange(0.1, 30),
                help="Per-probe timeout in seconds.",
            ),
            click.option(
                "--payload-bytes", default=16384, show_default=True, type=click.IntRange(0, 1 << 20)
            ),
            click.option(
                "-o",
                "--output",
                type=click.Choice(["text", "json"]),
                default="text",
                show_default=True,
            ),
            click.option("--json-file", type=click.Path(dir_okay=False), default=None),
            click.option("--junit", "junit_file", type=click.Path(dir_okay=False), default=None),
            click.option("--prom-file", type=click.Path(dir_okay=False), default=None),
            click.option("--prom-pod-pairs", is_flag=True),
            click.option("--no-progress", is_flag=True),
        ]
    ):
        f = opt(f)
    return raw_options(f)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outputs:
    timeout: float
    payload_bytes: int
    output: str
    json_file: str | None
    junit_file: str | None
    prom_file: str | None
    prom_pod_pairs: bool
    no_progress: bool
    raw: EvidenceOptions | None = None
    cassandra: CollectOptions | None = None  # None: no nodetool and logs
    ca_pem: str = ""  # run --context: the internode CA to verify the nodes' chains with
    client_ca_pem: str = ""  # and the CA of client TLS (9142)


async def _probe_and_report(
    kt: KubeTopology,
    clients: dict[str, KubeClient],
    tokens: dict[str, str],
    outputs: Outputs,
    *,
    control_plane: str | None,
    extra_findings: tuple[Any, ...],
    problems: list[str],
    started: datetime.datetime,
    t0: float,
    isolation: tuple[PortIsolation, ...] = (),
    probers: Probers | None = None,
    discoveries: list[ContextDiscovery] | None = None,
) -> RunReport:
    """probers: database pods that probe for themselves (run --context); discoveries: the
    contexts' policies, which say where a probe from an agent is refused by design."""
    topology = kt.topology
    plan = plan_mesh(topology, control_plane)
    proxy = PodProxyTransport(clients, tokens)
    transport: AgentTransport = proxy
    if probers is not None:
        transport = RoutedTransport({AGENT_SCHEME: proxy, EXEC_SCHEME: probers.transport})
    show = not outputs.no_progress and sys.stderr.isatty()
    cassandra = outputs.cassandra if kt.pods else None

    tls_results: tuple[ProbeResult, ...] = ()

    async def network() -> tuple[Probed, tuple[ProbeResult, ...]]:
        nonlocal tls_results
        probed = await probe_all(
            topology, plan, transport, outputs.timeout, outputs.payload_bytes, show, outputs.raw
        )
        if discoveries is not None:
            results = refused_to_agents(discoveries, topology, probed.results)
            probed = dataclasses.replace(probed, results=results)
            # each node's internode TLS, looked at from a database pod that reached it
            tls_results, tls_problems = await check_tls(
                topology, probed.results, transport, ca_pem=outputs.ca_pem,
                client_ca_pem=outputs.client_ca_pem, timeout_s=max(outputs.timeout, 2.0),
            )  # fmt: skip
            for line in agent_problem_lines(tls_problems):
                click.echo(f"netcheck: TLS not looked at: {line}", err=True)
        # the agents run one batch at a time: their node reads follow the mesh
        return probed, (await node_reads(topology, transport, show) if cassandra else ())

    collected = None
    if cassandra is None:
        probed, _ = await network()
    else:
        # nodetool and the logs go through exec, not the agents: read while the mesh is probed
        # (no progress bar of their own: the terminal holds one live display at a time)
        targets = kube_targets(topology, kt.pods)
        (probed, reads), collected = await asyncio.gather(
            network(), collect_nodes(KubeExec(clients), targets, cassandra)
        )
        collected = with_node_reads(collected, reads, topology)
    tls = tls_rows(tls_results, datetime.datetime.now(datetime.UTC))
    outsider_probes: tuple[OutsiderProbe, ...] = ()
    if discoveries is not None:
        # after the node reads: an agent runs one batch at a time
        outsiders = await probe_outsiders(discoveries, topology, proxy, timeout_s=outputs.timeout)
        outsider_probes = judged(outsiders.probes, probed.results)
        unmade = [
            f"negative probes not made: {line}" for line in agent_problem_lines(outsiders.problems)
        ]
        for line in unmade:
            click.echo(f"netcheck: {line}", err=True)
        problems = [*problems, *unmade]
        extra_findings = (
            *exposure_findings(
                discoveries,
                outsider_probes,
                isolation,
                isolation_findings(discoveries, isolation),
            ),
            *tls_findings(tls, topology),
            *extra_findings,
        )
    return report_of(
        topology,
        probed,
        started,
        t0,
        tuple(extra_findings),
        (*problems, *kt.problems),
        cassandra=collected,
        isolation=isolation,
        outsider_probes=outsider_probes,
        tls=tls,
    )


def _finish(report: RunReport, outputs: Outputs, errors: dict[str, str]) -> NoReturn:
    write_outputs(
        report,
        outputs.output,
        outputs.json_file,
        outputs.junit_file,
        outputs.prom_file,
        outputs.prom_pod_pairs,
    )
    report_errors(errors)
    sys.exit(report.verdict.exit_code)


async def _tokens_from_secrets(
    clients: dict[str, KubeClient], errors: dict[str, str]
) -> dict[str, str]:
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


def run_contexts(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    namespaces: tuple[str, ...],
    token_file: str | None,
    outputs: Outputs,
) -> NoReturn:
    """`netcheck run --context ...`: the discovered database pods, probed by deployed agents."""
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    errors: dict[str, str] = {}
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()

    async def go() -> RunReport:
        async with clients_for(path, names, errors) as clients:
            found = await per_context(
                clients, errors, lambda cl: discover(cl, namespaces=namespaces)
            )
            say_denied(found)
            selector = "cassandra.datastax.com/cluster"
            where = f"namespace(s) {', '.join(namespaces)}" if namespaces else "all namespaces"
            for ctx, d in list(found.items()):
                if not d.database_pods:
                    errors[ctx] = (
                        f"context {ctx}: no database pods found with label selector "
                        f"'{selector}' in {where}; check --namespace and that cass-operator "
                        "created the datacenter"
                    )
                    del found[ctx]
                elif not d.agents:
                    errors[ctx] = (
                        f"context {ctx}: no netcheck agents in namespace {NAMESPACE}; "
                        f"run `netcheck deploy --context {ctx}` first"
                    )
                    del found[ctx]
            live = {c: clients[c] for c in found}
            if token_file:
                tokens = {c: _token(token_file) for c in live}
            else:
                tokens = await _tokens_from_secrets(live, errors)
            used = [found[c] for c in names if c in found and c in tokens]
            kt = run_topology(used)
            rows = audit(used)
            probers = await prepare_probers(kt, used, live)
            for reason in dict.fromkeys(f.reason for f in probers.fallbacks):
                click.echo(
                    f"netcheck: warning: {reason}; the database pods it names are probed from "
                    "the agents instead",
                    err=True,
                )
            return await _probe_and_report(
                probers.kube,
                live,
                tokens,
                outputs,
                control_plane=None,
                extra_findings=(
                    *cidr_findings(list(found.values())),
                    *prober_findings(probers.fallbacks),
                    *node_pool_findings(list(found.values())),
                ),
                problems=[errors[c] for c in names if c in errors],
                started=started,
                t0=t0,
                isolation=rows,
                probers=probers,
                discoveries=used,
            )

    report = asyncio.run(go())
    _finish(report, outputs, errors)


@click.command("preflight")
@kube_options
@deploy_options
@click.option(
    "--control-plane",
    required=True,
    metavar="CONTEXT",
    help="The Mission Control control-plane context (serves NodePort 30600).",
)
@click.option("--keep", is_flag=True, help="Leave the agents deployed afterwards.")
@_output_options
def preflight_cmd(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    image: str | None,
    token_file: str | None,
    host_network: bool,
    raw_probes: bool,
    manifests: str | None,
    deploy_timeout: float,
    api_server_overrides: tuple[str, ...],
    control_plane: str,
    keep: bool,
    **output_kw: Any,
) -> None:
    """Before installing Mission Control: deploy agents, prove pod-to-pod on 7000/7001/8080
    across clusters, data planes to the control plane's NodePort 30600, the control plane to
    every data-plane API server, and disjoint pod CIDRs; then remove the agents.

    Exit codes: 0 pass, 1 failures found, 2 bad input, 3 incomplete.
    """
    raw, latency_count = output_kw.pop("raw"), output_kw.pop("latency_count")
    outputs = Outputs(
        **output_kw, raw=EvidenceOptions(latency_count=latency_count) if raw else None
    )
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    if control_plane not in names:
        fail(
            f"--control-plane {control_plane} is not among the chosen contexts "
            f"({', '.join(names)}); add --context {control_plane}"
        )
    token = _token(token_file)
    errors: dict[str, str] = {}
    started = datetime.datetime.now(datetime.UTC)
    t0 = time.monotonic()
    notes: list[Finding] = []

    async def go() -> RunReport:
        async with clients_for(path, names, errors) as clients:
            found = await per_context(clients, errors, lambda cl: discover(cl))
            say_denied(found)
            api_servers = _api_servers(found, api_server_overrides)
            allow = allow_list(found, api_servers)
            rendered: dict[str, list[dict[str, Any]]] = {}
            # who holds NodePort 30600 (list services): a context that may not ask is a problem
            holders = await per_context(
                {c: clients[c] for c in found if c == control_plane}, errors, nodeport_holder
            )
            for ctx in found:
                comps: tuple[str, ...] = ((HOST_NETWORK,) if host_network else ()) + (
                    (RAW_PROBES,) if raw_probes else ()
                )
                if ctx in errors:
                    continue
                if ctx == control_plane:
                    holder = holders[ctx]
                    if holder:
                        notes.append(
                            Finding(
                                severity=Severity.INFO,
                                code="NODEPORT_TAKEN",
                                summary=f"{ctx}: NodePort 30600 is taken by service {holder}; "
                                "netcheck did not put its own in front of the agents",
                                src_cluster=ctx,
                                dst_cluster=ctx,
                                ports=(30600,),
                                affected_pairs=0,
                                hint="if that is Mission Control's Vector aggregator, the "
                                "30600 probes check the real service as it is",
                            )
                        )
                    else:
                        comps += (VECTOR_NODEPORT,)
                rendered[ctx] = _manifests(manifests, token, allow, image, comps)
            try:
                await _deploy_everywhere(
                    clients, errors, rendered, deploy_timeout, sys.stderr.isatty()
                )
                live = {c: clients[c] for c in found if c not in errors}
                agents = await per_context(live, errors, lambda cl: discover(cl))
                kt = preflight_topology(
                    [agents[c] for c in names if c in agents],
                    control_plane=control_plane,
                    api_servers={c: a for c, a in api_servers.items() if c != control_plane},
                )
                return await _probe_and_report(
                    kt,
                    {c: clients[c] for c in agents},
                    {c: token for c in agents},
                    outputs,
                    control_plane=control_plane,
                    extra_findings=(*notes, *cidr_findings(list(found.values()))),
                    problems=[errors[c] for c in names if c in errors],
                    started=started,
                    t0=t0,
                )
            finally:
                if not keep:
                    every = _manifests(manifests, token, (), None, COMPONENTS)
                    # a failed clean-up is said, not swallowed: agents would stay behind
                    left: dict[str, str] = {}
                    await per_context(
                        {c: clients[c] for c in rendered}, left, lambda cl: remove_all(cl, every)
                    )
                    for message in left.values():
                        click.echo(
                            f"netcheck: error: agents not removed: {message}; "
                            "run `netcheck undeploy`",
                            err=True,
                        )

    report = asyncio.run(go())
    _finish(report, outputs, errors)


COMMANDS = (contexts_cmd, discover_cmd, deploy_cmd, undeploy_cmd, preflight_cmd)
__all__ = ["COMMANDS", "Outputs", "kube_options", "run_contexts"]
