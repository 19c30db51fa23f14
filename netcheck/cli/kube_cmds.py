"""Commands that work through kubeconfig contexts: contexts, discover, deploy, undeploy,
preflight, and the context half of `run`."""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import json
import sys
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import Any, NoReturn, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

from netcheck.cli.common import (
    JsonForm,
    fail,
    feedback,
    json_options,
    output_option,
    raw_options,
    say,
    write_outputs,
)
from netcheck.collector.evidence import EvidenceOptions
from netcheck.deploy.apply import NAMESPACE
from netcheck.deploy.manifests import HOST_NETWORK, RAW_PROBES, VECTOR_NODEPORT, to_yaml
from netcheck.discovery.kube import ContextDiscovery
from netcheck.kube.config import ContextEntry, kubeconfig_path, list_contexts
from netcheck.kube.errors import KubeconfigError
from netcheck.model.findings import Severity
from netcheck.reports.json_report import finding_doc
from netcheck.reports.terminal import render_findings
from netcheck.workflows.cidr import Sizing, check_cidrs, plan_cidrs
from netcheck.workflows.contexts import (
    agent_token,
    discover_all,
    server_versions,
)
from netcheck.workflows.deploy import AgentOptions, deploy, undeploy
from netcheck.workflows.feedback import BadInput
from netcheck.workflows.preflight import PreflightOptions, preflight
from netcheck.workflows.run import RunDone, RunOptions

EXIT_INCOMPLETE = 3
T = TypeVar("T")


def kubeconfig_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        default=None,
        help="Kubeconfig file (default: $KUBECONFIG, then ~/.kube/config).",
    )(f)


def kube_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option("--all-contexts", is_flag=True, help="Every context of the kubeconfig.")(f)
    f = click.option(
        "--context",
        "contexts",
        multiple=True,
        metavar="NAME",
        help="Kubeconfig context (repeatable; default: the current context).",
    )(f)
    return kubeconfig_option(f)


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


def workflow(job: Coroutine[Any, Any, T]) -> T:
    """Run a workflow; bad input it finds is the one-line error exit."""
    try:
        return asyncio.run(job)
    except BadInput as exc:
        fail(str(exc))


def report_errors(errors: Mapping[str, str] | Iterable[str]) -> None:
    """One line each on stderr: a mapping's values (context -> line), or the lines."""
    lines = errors.values() if isinstance(errors, Mapping) else errors
    for message in lines:
        click.echo(f"netcheck: error: {message}", err=True)


def exit_for_errors(errors: Mapping[str, str] | Sequence[str]) -> None:
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
    found = workflow(server_versions(path, names, errors, check=not no_check))
    table = Table(box=None, pad_edge=False)
    for col in ("CURRENT", "NAME", "CLUSTER", "AUTHINFO", "NAMESPACE", "SERVER", "PORT", "STATUS"):
        table.add_column(col)
    for e in entries:
        server, port, status = "", "", ""
        if e.name in found:
            got = found[e.name]
            if got is not None:
                server, port_number, version = got
                port = str(port_number)
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


# ---------------------------------------------------------------- discover


def _discovery_dict(d: ContextDiscovery) -> dict[str, Any]:
    out = dataclasses.asdict(d)
    out["pod_cidrs"] = list(d.pod_cidrs)
    del out["policies"]  # evaluated form of network_policies, for the audit only
    out["namespace_labels"] = {ns: dict(labels) for ns, labels in d.namespace_labels}
    out["policy_unread"] = [{"namespace": ns, "why": why} for ns, why in d.policy_unread]
    return out


@click.command("discover")
@kube_options
@click.option("-n", "--namespace", "namespaces", multiple=True, help="Database namespace(s).")
@output_option
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
    found = workflow(discover_all(path, names, namespaces, errors))
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
    for r in d.helm_releases:
        click.echo(f"  helm release {r.name} in mission-control: revision {r.revision}, {r.status}")
    click.echo(f"  netcheck agents: {sum(a.ready for a in d.agents)} ready of {len(d.agents)}")
    for w in d.warnings:
        click.echo(f"  warning: {w}")


# ---------------------------------------------------------------- deploy


def agents_of(
    token_file: str | None,
    image: str | None,
    manifests_dir: str | None,
    deploy_timeout: float,
    api_server_overrides: tuple[str, ...],
    *,
    host_network: bool,
    raw_probes: bool,
    vector_nodeport: bool = False,
) -> tuple[str, AgentOptions]:
    """deploy's and preflight's agents: their token (from the file, or new) and options."""
    try:
        token = agent_token(token_file)
    except BadInput as exc:
        fail(str(exc))
    components = (
        ((HOST_NETWORK,) if host_network else ())
        + ((VECTOR_NODEPORT,) if vector_nodeport else ())
        + ((RAW_PROBES,) if raw_probes else ())
    )
    return token, AgentOptions(
        image=image,
        components=components,
        manifests=manifests_dir,
        timeout_s=deploy_timeout,
        api_server_overrides=api_server_overrides,
    )


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
                "manifests_dir",
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
    manifests_dir: str | None,
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
    token, agents = agents_of(
        token_file, image, manifests_dir, deploy_timeout, api_server_overrides,
        host_network=host_network, raw_probes=raw_probes, vector_nodeport=vector_nodeport,
    )  # fmt: skip
    done = workflow(deploy(path, names, token, agents, dry_run=dry_run, feedback=feedback(True)))
    rendered, errors = dict(done.rendered), dict(done.errors)
    if dry_run:
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
@click.option("--manifests", "manifests_dir", type=click.Path(file_okay=False), default=None)
@click.option("--delete-namespace", is_flag=True, help="Remove namespace netcheck as well.")
def undeploy_cmd(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    manifests_dir: str | None,
    delete_namespace: bool,
) -> None:
    """Remove everything deploy applied (idempotent)."""
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    removed, errors = workflow(
        undeploy(path, names, manifest_root=manifests_dir, delete_namespace=delete_namespace)
    )
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
            json_options,
            click.option("--junit", "junit_file", type=click.Path(dir_okay=False), default=None),
            click.option("--prom-file", type=click.Path(dir_okay=False), default=None),
            click.option("--prom-pod-pairs", is_flag=True),
            click.option(
                "--html-file",
                type=click.Path(dir_okay=False),
                default=None,
                help="One self-contained HTML page of the run (verdict, findings, heatmaps).",
            ),
            click.option("--no-progress", is_flag=True),
        ]
    ):
        f = opt(f)
    return raw_options(f)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Outputs:
    """Where the report goes, and whether progress shows."""

    output: str
    json_file: str | None
    junit_file: str | None
    prom_file: str | None
    prom_pod_pairs: bool
    no_progress: bool
    html_file: str | None = None
    json_form: JsonForm = dataclasses.field(default_factory=JsonForm)


def _finish(done: RunDone, outputs: Outputs) -> NoReturn:
    write_outputs(
        done.report,
        outputs.output,
        outputs.json_file,
        outputs.junit_file,
        outputs.prom_file,
        outputs.prom_pod_pairs,
        outputs.html_file,
        outputs.json_form,
    )
    report_errors(done.errors)
    sys.exit(done.report.verdict.exit_code)


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
    manifests_dir: str | None,
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
    options = RunOptions(
        timeout=output_kw.pop("timeout"),
        payload_bytes=output_kw.pop("payload_bytes"),
        raw=EvidenceOptions(latency_count=latency_count) if raw else None,
        cassandra=None,
    )
    json_form = JsonForm(indent=output_kw.pop("json_indent"), probes=output_kw.pop("json_probes"))
    outputs = Outputs(**output_kw, json_form=json_form)
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    token, agents = agents_of(
        token_file, image, manifests_dir, deploy_timeout, api_server_overrides,
        host_network=host_network, raw_probes=raw_probes,
    )  # fmt: skip
    done = workflow(
        preflight(
            path,
            names,
            token,
            PreflightOptions(control_plane=control_plane, keep=keep),
            agents,
            options,
            feedback=feedback(not outputs.no_progress),
        )
    )
    _finish(done, outputs)


# ---------------------------------------------------------------- cidr plan


def _cidr(text: str, option: str) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        fail(f"{option} {text}: not a CIDR; write e.g. 10.244.0.0/16")
    if not isinstance(net, ipaddress.IPv4Network):
        fail(f"{option} {text}: IPv6 is not planned yet; give the IPv4 ranges")
    return net


@click.group("cidr")
def cidr_group() -> None:
    """Address plans across clusters."""


@cidr_group.command("plan")
@kube_options
@click.option("--nodes", type=int, required=True, help="Nodes the new cluster will have.")
@click.option(
    "--pods-per-node", type=int, default=110, show_default=True, help="Pods a node may run."
)
@click.option("--services", type=int, default=4000, show_default=True, help="Services to hold.")
@click.option(
    "--taken",
    multiple=True,
    metavar="CIDR",
    help="A range in use elsewhere (repeatable): VPCs, VPNs, clusters not in the kubeconfig.",
)
@click.option(
    "--within",
    multiple=True,
    metavar="CIDR",
    help="Where to plan (repeatable; default: 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16).",
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def cidr_plan_cmd(
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    nodes: int,
    pods_per_node: int,
    services: int,
    taken: tuple[str, ...],
    within: tuple[str, ...],
    output: str,
) -> None:
    """Pod and service CIDRs for a new cluster that overlap no range of the clusters given
    (--context: their pod CIDRs, service CIDRs and node addresses, as discover reads them) nor
    any --taken range. Contexts are read only when named.

    Exit codes: 0 a plan, 2 bad input or no room (the line says what to change).
    """
    path, names = "", list[str]()
    if contexts or all_contexts:
        path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    done = workflow(
        plan_cidrs(
            Sizing(nodes=nodes, pods_per_node=pods_per_node, services=services),
            taken=[_cidr(t, "--taken") for t in taken],
            within=[_cidr(w, "--within") for w in within],
            kubeconfig=path or None,
            contexts=names,
        )
    )
    for line in done.not_planned_around:
        say(f"warning: not planned around {line}")
    if done.plan is None:
        report_errors(done.errors)
        fail(done.no_room)
    proposal = done.plan
    listed = [a for a in done.avoided if a.net.prefixlen != 32]
    node_addresses = sum(1 for a in done.avoided if a.net.prefixlen == 32)
    doc = {
        "pod_cidr": str(proposal.pods),
        "node_cidr_mask_size": proposal.node_mask,
        "service_cidr": str(proposal.services),
        "nodes": nodes,
        "pods_per_node": pods_per_node,
        "avoided": [{"cidr": str(a.net), "what": a.what} for a in listed],
        "node_addresses_avoided": node_addresses,
        "not_planned_around": list(done.not_planned_around),
        "errors": list(done.errors),
    }
    if output == "json":
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(
            f"pod CIDR      {proposal.pods}  (--cluster-cidr; --node-cidr-mask-size "
            f"{proposal.node_mask}: {nodes} nodes x {pods_per_node} pods)"
        )
        click.echo(f"service CIDR  {proposal.services}  (--service-cluster-ip-range)")
        for a in listed:
            click.echo(f"  clear of {a.net} ({a.what})")
        if node_addresses:
            click.echo(f"  clear of {node_addresses} node addresses")
    exit_for_errors(done.errors)


@cidr_group.command("check")
@kube_options
@output_option
def cidr_check_cmd(
    kubeconfig: str | None, contexts: tuple[str, ...], all_contexts: bool, output: str
) -> None:
    """Each cluster's pod networks (the CNI's where it publishes them: Calico IPPools,
    Cilium's pools and CiliumNodes; else the nodes' podCIDRs), service CIDRs and node count,
    and every overlap between them. No agent is deployed: discovery reads only.

    Exit codes: 0 no overlap, 1 an overlap, 3 a context or its CNI's pools could not be read
    (and no overlap was found in what was read).
    """
    path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
    done = workflow(check_cidrs(path, names))
    for line in done.denied:
        say(line)
    findings = done.findings
    clusters: list[dict[str, Any]] = [
        {
            "context": d.context,
            "cni": d.cni.name,
            "pod_networks": [{"cidr": n.cidr, "source": n.source} for n in d.pod_networks()],
            "service_cidrs": list(d.service_cidrs),
            "service_cidr_api": d.service_cidr_api,
            "api_service_ip": d.api_service_ip,
            "eni_subnets": list(d.cni.eni_subnets),
            "overlay": dataclasses.asdict(d.overlay),
            "nodes": len(d.nodes),
        }
        for d in done.clusters
    ]
    if output in ("json", "yaml"):
        doc = {
            "clusters": clusters,
            "findings": [finding_doc(f) for f in findings],
            "errors": list(done.errors),
            "problems": list(done.problems),
        }
        click.echo(
            json.dumps(doc, indent=2)
            if output == "json"
            else yaml.safe_dump(doc, sort_keys=False, width=100),
            nl=output == "json",
        )
    else:
        for c in clusters:
            cni = f" ({c['cni']})" if c["cni"] else ""
            click.echo(f"{c['context']}{cni}: {c['nodes']} nodes")
            for n in c["pod_networks"]:
                click.echo(f"  pods      {n['cidr']}  ({n['source']})")
            for sc in c["service_cidrs"]:
                click.echo(f"  services  {sc}")
        render_findings(findings, Console(highlight=False))
    for line in done.problems:
        say(f"error: {line}")
    report_errors(done.errors)
    if any(f.severity is Severity.ERROR for f in findings):
        sys.exit(1)  # an overlap found is a failure, whatever could not be read besides
    sys.exit(EXIT_INCOMPLETE if done.errors or done.problems else 0)


COMMANDS = (contexts_cmd, discover_cmd, deploy_cmd, undeploy_cmd, preflight_cmd, cidr_group)
__all__ = [
    "COMMANDS",
    "EXIT_INCOMPLETE",
    "kube_options",
    "kubeconfig_option",
    "pick_contexts",
    "report_errors",
    "workflow",
]
