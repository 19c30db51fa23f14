"""netcheck command line."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console

from netcheck import __version__
from netcheck.agent.listeners import parse_serve
from netcheck.agent.process import DEFAULT_API_PORT, AgentConfig, AgentConfigError, read_token
from netcheck.agent.server import AgentLimits
from netcheck.cassandra.collect import CollectOptions
from netcheck.cli.cassandra_cmds import cassandra_backend, gossip, lab_cassandra_group
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
from netcheck.cli.kube_cmds import (
    COMMANDS,
    kube_options,
    kubeconfig_option,
    pick_contexts,
    report_errors,
    workflow,
)
from netcheck.collector.evidence import EvidenceOptions
from netcheck.discovery.inventory import InventoryError, dump_inventory, load_inventory
from netcheck.files import FileProblem, read_text
from netcheck.kube.ca_secret import CaSecretError, SecretRef, secret_ref
from netcheck.lab import build, faults
from netcheck.lab.net import LabError
from netcheck.lab.spec import LabSpecError, spec_from_yaml
from netcheck.model.text import ascii_int
from netcheck.model.topology import Topology
from netcheck.reports import json_report, terminal
from netcheck.workflows.feedback import Feedback
from netcheck.workflows.lint import ControlPlane, lint_manifests
from netcheck.workflows.run import RunDone, RunOptions, run_inventory
from netcheck.workflows.run import run_contexts as run_contexts_workflow


@click.group()
@click.version_option(__version__, prog_name="netcheck")
def main() -> None:
    """Network connectivity verification and diagnostics for multi-region Cassandra."""


# ---------------------------------------------------------------- agent


@main.command()
@click.option("--bind", default="0.0.0.0", show_default=True, help="Address of the agent API.")
@click.option("--api-port", default=DEFAULT_API_PORT, show_default=True, type=int)
@click.option(
    "--serve-bind", default="0.0.0.0", show_default=True, help="Address the served ports listen on."
)
@click.option(
    "--token-file",
    required=True,
    type=click.Path(dir_okay=False),
    help="File holding the bearer token the API requires.",
)
@click.option(
    "--serve",
    "serve",
    multiple=True,
    metavar="PORT[:tcp|tls|http]",
    help="Serve a port in place of Cassandra (repeatable).",
)
@click.option(
    "--allow",
    "allow",
    multiple=True,
    metavar="CIDR",
    help="The only networks the agent will probe (repeatable).",
)
@click.option(
    "--allow-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File of allowed CIDRs, one per line (the ConfigMap netcheck deploy fills).",
)
@click.option("--cert", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--key", type=click.Path(dir_okay=False, exists=True), default=None)
@click.option("--name", default="", help="Name reported by the agent.")
@click.option("--max-batch", default=1024, show_default=True, type=click.IntRange(1, 100000))
@click.option(
    "--rate",
    default=200.0,
    show_default=True,
    type=click.FloatRange(0.1, 100000),
    help="Probes per second at most.",
)
@click.option("--concurrency", default=64, show_default=True, type=click.IntRange(1, 4096))
@click.option(
    "--raw/--no-raw",
    default=True,
    show_default=True,
    help="Raw-packet probes (SYN, traceroute, path MTU, latency) when CAP_NET_RAW is held.",
)
@click.option(
    "--cql-credentials",
    type=click.Path(file_okay=False),
    default=None,
    help="Directory of a mounted Secret with keys username and password (optional: without "
    "it the agent answers cql probes not_measured).",
)
@click.option("--cql-username", default=None, help="CQL user (with --cql-password-file).")
@click.option(
    "--cql-password-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="File holding the CQL password (read again for each probe).",
)
def agent(
    bind: str,
    api_port: int,
    serve_bind: str,
    token_file: str,
    serve: tuple[str, ...],
    allow: tuple[str, ...],
    allow_file: str | None,
    cert: str | None,
    key: str | None,
    name: str,
    max_batch: int,
    rate: float,
    concurrency: int,
    raw: bool,
    cql_credentials: str | None,
    cql_username: str | None,
    cql_password_file: str | None,
) -> None:
    """Run a probe agent."""
    from netcheck.agent.process import run_agent

    try:
        specs = tuple(parse_serve(s) for s in serve)
    except ValueError as exc:
        fail(str(exc))
    config = AgentConfig(
        bind=bind,
        api_port=api_port,
        serve_bind=serve_bind,
        token_file=token_file,
        serve=specs,
        allow=allow,
        allow_file=allow_file,
        cert_file=cert,
        key_file=key,
        name=name,
        limits=AgentLimits(max_batch=max_batch, rate=rate, concurrency=concurrency),
        raw=raw,
        cql_credentials_dir=cql_credentials,
        cql_username=cql_username,
        cql_password_file=cql_password_file,
    )

    async def serve_forever() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        ready = asyncio.Event()
        task = asyncio.create_task(run_agent(config, stop, ready))
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if ready.is_set():
            click.echo(f"netcheck agent {name or ''} listening on {bind}:{api_port}", err=True)
            if not allow and not allow_file:
                click.echo(
                    "netcheck agent: no --allow given: every probe will be refused", err=True
                )
        else:
            waiter.cancel()
        await task

    try:
        asyncio.run(serve_forever())
    except AgentConfigError as exc:
        fail(str(exc))


@main.command("probe-once")
@click.option("--info", "info", is_flag=True, help="Print the info document instead.")
@click.option("--batch", default=None, metavar="JSON", help="A /v1/probe request body.")
@click.option("--allow", "allow", multiple=True, metavar="CIDR", help="The only networks to probe.")
@click.option("--name", default="", help="Name reported in the info document.")
@click.option("--raw/--no-raw", default=True, show_default=True)
def probe_once_cmd(
    info: bool, batch: str | None, allow: tuple[str, ...], name: str, raw: bool
) -> None:
    """Run one batch of probes here and print the results (JSON).

    `run --context` execs this in each database pod's netcheck container, so that the probes
    of the internode ports leave from the database pod itself."""
    from netcheck.agent.once import OnceError, info_once, probe_once

    if info == (batch is not None):
        fail("give either --info or --batch")
    try:
        doc = asyncio.run(
            info_once(allow, name, raw) if batch is None else probe_once(batch, allow, name, raw)
        )
    except OnceError as exc:
        fail(str(exc))
    click.echo(json.dumps(doc))


# ---------------------------------------------------------------- run


MAX_CA_BYTES = 64 << 10
MAX_SPEC_BYTES = 1 << 20  # a lab spec is a few hundred lines


def read_ca(path: str, option: str) -> str:
    """A PEM file of CA certificates, checked to hold at least one (never a private key)."""
    from cryptography import x509

    try:
        text = read_text(path, MAX_CA_BYTES)
    except FileProblem as exc:
        fail(f"{option} {path}: {exc}; give the CA certificate's PEM, and only it")
    if "PRIVATE KEY" in text:
        fail(f"{option} {path}: holds a private key; give the CA certificate only")
    try:
        certs = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        certs = []
    if not certs:
        fail(f"{option} {path}: no PEM certificate in it; give the CA certificate")
    return text


F = TypeVar("F", bound=Callable[..., Any])


def source_options(fn: F) -> F:
    """Where the endpoints come from: an inventory, or kubeconfig contexts."""
    options: list[Callable[[Any], Any]] = [
        click.option(
            "--inventory",
            "inventory_path",
            default=None,
            type=click.Path(dir_okay=False),
            help="Inventory YAML of clusters and endpoints (or use --context).",
        ),
        kube_options,
        click.option(
            "-n", "--namespace", "namespaces", multiple=True, help="Database namespace(s)."
        ),
        click.option(
            "--token-file",
            default=None,
            type=click.Path(dir_okay=False),
            help="Agent token (default: the inventory's token_file).",
        ),
        click.option(
            "--control-plane",
            default=None,
            metavar="CONTEXT",
            help="With --context: the Mission Control control plane among them. Checks its "
            "install too: the same Helm release on every plane, each data plane registered "
            "there, and the Vector aggregator (NodePort 30600 on its nodes) from every "
            "database pod.",
        ),
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


def probe_options(fn: F) -> F:
    """How a run probes (run and serve)."""
    options: list[Callable[[Any], Any]] = [
        click.option(
            "--timeout",
            default=2.0,
            show_default=True,
            type=click.FloatRange(0.1, 30),
            help="Per-probe timeout in seconds.",
        ),
        click.option(
            "--payload-bytes",
            default=16384,
            show_default=True,
            type=click.IntRange(0, 1 << 20),
            help="Payload pushed through ports a netcheck agent serves.",
        ),
        click.option(
            "--cassandra/--no-cassandra",
            default=True,
            show_default=True,
            help="Also collect nodetool status/describecluster/gossipinfo and recent logs "
            "from every database pod (Kubernetes exec with --context; the inventory's exec "
            "backend otherwise), have the agents read each node's system tables over CQL, "
            "and cross-check them.",
        ),
        click.option(
            "--logs-since",
            default=600.0,
            show_default=True,
            type=click.FloatRange(1, 7 * 86400),
            help="Seconds of Cassandra log to read.",
        ),
        click.option(
            "--ca-file",
            type=click.Path(dir_okay=False),
            default=None,
            help="The cluster's internode CA (PEM): with --context, each node's "
            "certificate chain is verified against it.",
        ),
        click.option(
            "--client-ca-file",
            type=click.Path(dir_okay=False),
            default=None,
            help="The CA clients trust (PEM), where nodes serve client TLS on 9142: with "
            "--context, each node's client certificate chain is verified against it.",
        ),
        click.option(
            "--ca-secret",
            default=None,
            metavar="NAMESPACE/NAME",
            help="Read the internode CA from this Secret in every context (`ca.crt` of "
            "cert-manager's Certificate Secrets, or a PKCS#12 `truststore` with its "
            "`truststore-password`), as --ca-file; needs `get` on it "
            "(probes/rbac/netcheck-user.yaml).",
        ),
        click.option(
            "--client-ca-secret",
            default=None,
            metavar="NAMESPACE/NAME",
            help="Read the client CA from this Secret, as --client-ca-file.",
        ),
        raw_options,
    ]
    for opt in reversed(options):
        fn = opt(fn)
    return fn


@dataclasses.dataclass(frozen=True)
class Source:
    """A checked source of endpoints: an inventory with its token, or contexts."""

    topology: Topology | None = None
    token: str = ""
    kubeconfig: str = ""
    contexts: tuple[str, ...] = ()
    ca_pem: str = ""  # --ca-file's certificates (run --context)
    client_ca_pem: str = ""  # --client-ca-file's
    ca_secret: SecretRef | None = None  # --ca-secret: read in the contexts
    client_ca_secret: SecretRef | None = None
    control_plane: str | None = None  # --control-plane (run --context)


def checked_source(
    inventory_path: str | None,
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    token_file: str | None,
    ca_file: str | None,
    client_ca_file: str | None,
    ca_secret: str | None,
    client_ca_secret: str | None,
    control_plane: str | None = None,
) -> Source:
    """The inputs read and checked before anything is probed (bad input: exit 2)."""
    if inventory_path and (contexts or all_contexts):
        fail("give --inventory or --context/--all-contexts, not both")
    for option, given in (
        ("--ca-file", ca_file),
        ("--client-ca-file", client_ca_file),
        ("--ca-secret", ca_secret),
        ("--client-ca-secret", client_ca_secret),
    ):
        if given and inventory_path:
            fail(f"{option} goes with --context: TLS is looked at by run --context")
    if control_plane and inventory_path:
        fail("--control-plane goes with --context: the install is read through the contexts")
    if not inventory_path:
        if not (contexts or all_contexts):
            fail("say what to check: --inventory FILE, or --context NAME (repeatable)")
        # the local files first: a bad CA is said before the kubeconfig is read
        ca_pem = read_ca(ca_file, "--ca-file") if ca_file else ""
        client_ca_pem = read_ca(client_ca_file, "--client-ca-file") if client_ca_file else ""
        try:
            secret = secret_ref(ca_secret, "--ca-secret") if ca_secret else None
            client_secret = (
                secret_ref(client_ca_secret, "--client-ca-secret") if client_ca_secret else None
            )
        except CaSecretError as exc:
            fail(str(exc))
        path, _, names = pick_contexts(kubeconfig, contexts, all_contexts)
        if control_plane and control_plane not in names:
            fail(
                f"--control-plane {control_plane} is not among the chosen contexts "
                f"({', '.join(names)}); add --context {control_plane}"
            )
        return Source(
            kubeconfig=path,
            contexts=tuple(names),
            ca_pem=ca_pem,
            client_ca_pem=client_ca_pem,
            ca_secret=secret,
            client_ca_secret=client_secret,
            control_plane=control_plane,
        )
    try:
        topology = load_inventory(inventory_path)
    except InventoryError as exc:
        fail(str(exc))
    token_path = token_file or topology.token_file
    if not token_path:
        fail(
            f"{inventory_path}: no agent token: set token_file in the inventory or "
            "pass --token-file"
        )
    try:
        token = read_token(token_path)
    except AgentConfigError as exc:
        fail(str(exc))
    return Source(topology=topology, token=token)


def run_options(
    source: Source,
    *,
    timeout: float,
    payload_bytes: int,
    raw: bool,
    latency_count: int,
    cassandra: bool,
    logs_since: float,
) -> RunOptions:
    kube = source.topology is None
    return RunOptions(
        timeout=timeout,
        payload_bytes=payload_bytes,
        raw=EvidenceOptions(latency_count=latency_count) if raw else None,
        # nodetool runs in the pods, not here: more at once than the lab's 2
        cassandra=CollectOptions(logs_since_s=logs_since, concurrency=8 if kube else None)
        if cassandra
        else None,
        ca_pem=source.ca_pem,
        client_ca_pem=source.client_ca_pem,
        ca_secret=source.ca_secret,
        client_ca_secret=source.client_ca_secret,
    )


def prepared(
    inventory_path: str | None,
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    token_file: str | None,
    ca_file: str | None,
    client_ca_file: str | None,
    ca_secret: str | None,
    client_ca_secret: str | None,
    control_plane: str | None,
    **probing: Any,
) -> tuple[Source, RunOptions]:
    """run's and serve's inputs checked (checked_source) and their probe options
    (run_options' keywords)."""
    source = checked_source(
        inventory_path, kubeconfig, contexts, all_contexts, token_file, ca_file, client_ca_file,
        ca_secret, client_ca_secret, control_plane,
    )  # fmt: skip
    return source, run_options(source, **probing)


def job_for(
    source: Source,
    options: RunOptions,
    namespaces: tuple[str, ...],
    token_file: str | None,
    said: Feedback,
) -> Callable[[], Coroutine[Any, Any, RunDone]]:
    """One run of the source, as a workflow call with everything bound."""
    if source.topology is not None:
        topology = source.topology
        nodes = (
            cassandra_backend(topology)
            if options.cassandra is not None and topology.cassandra_exec
            else None
        )

        async def inventory_run() -> RunDone:
            report = await run_inventory(
                topology, source.token, options, nodes=nodes, feedback=said
            )
            return RunDone(report=report)

        return inventory_run

    async def contexts_run() -> RunDone:
        return await run_contexts_workflow(
            source.kubeconfig,
            list(source.contexts),
            options,
            namespaces=namespaces,
            token_file=token_file,
            feedback=said,
            control_plane=source.control_plane,
        )

    return contexts_run


@main.command()
@source_options
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option("--json-file", type=click.Path(dir_okay=False), default=None)
@json_options
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False), default=None)
@click.option("--prom-file", type=click.Path(dir_okay=False), default=None)
@click.option("--prom-pod-pairs", is_flag=True, help="Add pod-pair series (high cardinality).")
@click.option(
    "--html-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="One self-contained HTML page of the run (verdict, findings, heatmaps, paths).",
)
@click.option("--no-progress", is_flag=True)
@probe_options
def run(
    inventory_path: str | None,
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    namespaces: tuple[str, ...],
    token_file: str | None,
    control_plane: str | None,
    timeout: float,
    payload_bytes: int,
    output: str,
    json_file: str | None,
    json_indent: int | None,
    json_probes: str,
    junit_file: str | None,
    prom_file: str | None,
    prom_pod_pairs: bool,
    html_file: str | None,
    no_progress: bool,
    raw: bool,
    latency_count: int,
    cassandra: bool,
    logs_since: float,
    ca_file: str | None,
    client_ca_file: str | None,
    ca_secret: str | None,
    client_ca_secret: str | None,
) -> None:
    """Probe the full mesh and report the matrix and diagnosis.

    From an inventory (--inventory), or from kubeconfig contexts (--context, --all-contexts):
    the database pods cass-operator runs, probed by the agents `netcheck deploy` put there.

    Exit codes: 0 pass, 1 failures found, 2 bad input, 3 incomplete.
    """
    source, options = prepared(
        inventory_path, kubeconfig, contexts, all_contexts, token_file, ca_file, client_ca_file,
        ca_secret, client_ca_secret, control_plane, timeout=timeout,
        payload_bytes=payload_bytes, raw=raw, latency_count=latency_count, cassandra=cassandra,
        logs_since=logs_since,
    )  # fmt: skip
    job = job_for(source, options, namespaces, token_file, feedback(not no_progress))
    done = workflow(job())
    write_outputs(
        done.report, output, json_file, junit_file, prom_file, prom_pod_pairs, html_file,
        JsonForm(indent=json_indent, probes=json_probes),
    )  # fmt: skip
    report_errors(done.errors)
    sys.exit(done.report.verdict.exit_code)


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port_s = value.rpartition(":")
    port = ascii_int(port_s, 5)
    if not host or port is None or not 0 < port < 65536:
        fail(f"--listen {value!r}: write HOST:PORT, e.g. 127.0.0.1:9926 or 0.0.0.0:9926")
    return host.strip("[]"), port


@main.command()
@source_options
@probe_options
@click.option(
    "--listen",
    default="127.0.0.1:9926",
    show_default=True,
    help="HOST:PORT for /metrics, /healthz, /report and /reports (0.0.0.0:9926 in a pod).",
)
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(1, 86400),
    help="Seconds between the starts of runs (plus up to 10% jitter); runs never overlap.",
)
@click.option(
    "--keep", default=10, show_default=True, type=click.IntRange(1, 1000), help="Reports kept."
)
@click.option(
    "--max-runs",
    default=None,
    type=click.IntRange(1),
    help="Stop after this many runs (default: run until stopped).",
)
@click.option("--prom-pod-pairs", is_flag=True, help="Add pod-pair series (high cardinality).")
def serve(
    inventory_path: str | None,
    kubeconfig: str | None,
    contexts: tuple[str, ...],
    all_contexts: bool,
    namespaces: tuple[str, ...],
    token_file: str | None,
    control_plane: str | None,
    timeout: float,
    payload_bytes: int,
    cassandra: bool,
    logs_since: float,
    ca_file: str | None,
    client_ca_file: str | None,
    ca_secret: str | None,
    client_ca_secret: str | None,
    raw: bool,
    latency_count: int,
    listen: str,
    interval: float,
    keep: int,
    max_runs: int | None,
    prom_pod_pairs: bool,
) -> None:
    """Run `run` every interval and serve its last report for Prometheus: /metrics (the
    series of --prom-file plus serve's own), /healthz, /report (JSON; ?back=K for older),
    /reports.

    Stops on SIGTERM or SIGINT (exit 0), or after --max-runs.
    """
    # aiohttp's server only where it serves: every other command starts without it
    from netcheck.serve.http import serve as serve_http
    from netcheck.serve.watch import Watch, WatchOptions

    host, port = parse_listen(listen)
    source, options = prepared(
        inventory_path, kubeconfig, contexts, all_contexts, token_file, ca_file, client_ca_file,
        ca_secret, client_ca_secret, control_plane, timeout=timeout,
        payload_bytes=payload_bytes, raw=raw, latency_count=latency_count, cassandra=cassandra,
        logs_since=logs_since,
    )  # fmt: skip
    job = job_for(source, options, namespaces, token_file, Feedback(say=say))
    watch = Watch(
        job,
        WatchOptions(interval_s=interval, keep=keep, max_runs=max_runs, pod_pairs=prom_pod_pairs),
    )

    async def go() -> None:
        task = asyncio.ensure_future(serve_http(watch, host, port))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(go())
    except OSError as exc:
        fail(
            f"--listen {listen}: cannot listen there ({exc.strerror or exc}); choose another "
            "address or port"
        )


# ---------------------------------------------------------------- lab


@main.group()
def lab() -> None:
    """The built-in lab: two regions of real network namespaces with agents (needs root)."""


@lab.command("up")
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Lab spec YAML (default: CP_EAST and DP_WEST, 2 racks x 2 pods each).",
)
@click.option(
    "--raw/--no-raw",
    default=True,
    show_default=True,
    help="Give the agents CAP_NET_RAW (and nothing else) for raw probes.",
)
@click.option(
    "--cassandra",
    is_flag=True,
    help="Run real Apache Cassandra 5.0 in every database pod (Maven Central jars, cached; "
    "Java 17; about 500 MB of memory per node).",
)
@click.option(
    "--kubernetes",
    is_flag=True,
    help="Run a real Kubernetes control plane per cluster (kube-apiserver, etcd, "
    "controller manager, scheduler; built once from the Go module proxy); "
    "`netcheck lab kubeconfig` names its kubeconfig.",
)
def lab_up(spec_file: str | None, raw: bool, cassandra: bool, kubernetes: bool) -> None:
    """Build the lab and start its agents (idempotent)."""
    spec = None
    if spec_file:
        try:
            spec = spec_from_yaml(read_text(spec_file, MAX_SPEC_BYTES), spec_file)
        except FileProblem as exc:
            fail(f"--spec {spec_file}: {exc}; give the lab's YAML spec")
        except LabSpecError as exc:
            fail(str(exc))
    try:
        state, built = build.lab_up(spec, raw=raw, cassandra=cassandra, kubernetes=kubernetes)
    except LabError as exc:
        fail(str(exc))
    what = "built" if built else "already up"
    if state.get("cassandra"):
        c = state["cassandra"]
        what += (
            f", Cassandra {c['version']} on {len(c['nodes'])} nodes (started in {c['start_s']}s)"
        )
    if state.get("kubernetes"):
        what += f", Kubernetes control planes (kubeconfig {state['kubernetes']['kubeconfig']})"
    click.echo(
        f"lab {what}: {len(state['hosts'])} hosts in {len(state['clusters'])} clusters; "
        "`netcheck lab inventory > lab.yaml` then `netcheck run --inventory lab.yaml`"
    )


@lab.command("kubeconfig")
def lab_kubeconfig() -> None:
    """Print the path of the lab's kubeconfig (contexts CLUSTER and CLUSTER-ci)."""
    state = build.load_state()
    if state is None or not state.get("kubernetes"):
        fail("the lab runs no Kubernetes: start it with `netcheck lab up --kubernetes`")
    click.echo(state["kubernetes"]["kubeconfig"])


@lab.command("image")
@click.option(
    "--log", "log_file", type=click.Path(dir_okay=False), default=None, help="Build output."
)
def lab_image(log_file: str | None) -> None:
    """Build the agent image from this checkout (buildah, on a debootstrap base; needs root).

    Tagged as the manifests name it, so the lab's Kubernetes runs it; nothing to do when the
    image in storage is current."""
    from netcheck.lab import image

    try:
        built = image.build(log_file)
    except LabError as exc:
        fail(str(exc))
    click.echo(f"agent image: {built.name} {built.id[:12]}")


@lab.command("down")
def lab_down() -> None:
    """Remove everything the lab made (also after a crash)."""
    try:
        removed = build.lab_down()
    except LabError as exc:
        fail(str(exc))
    click.echo(f"lab down: removed {len(removed)} namespaces/links")


@lab.command("inventory")
def lab_inventory() -> None:
    """Print the inventory of the running lab."""
    from netcheck.lab.inventory import lab_topology

    try:
        click.echo(dump_inventory(lab_topology(build.require_state())), nl=False)
    except LabError as exc:
        fail(str(exc))


@lab.group("fault")
def lab_fault() -> None:
    """Inject, list and clear network faults."""


@lab_fault.command("add")
@click.argument("kind", type=click.Choice(faults.KINDS))
@click.option("--src", default=None, help="CLUSTER, CLUSTER/RACK or a host name.")
@click.option("--dst", default=None, help="CLUSTER, CLUSTER/RACK or a host name.")
@click.option("--port", type=click.IntRange(1, 65535), default=None)
@click.option("--one-way", is_flag=True, help="Only src -> dst (default: both directions).")
@click.option("--mtu", type=int, default=1200, show_default=True)
@click.option(
    "--with",
    "reject_with",
    default="icmp-admin-prohibited",
    show_default=True,
    type=click.Choice(faults.REJECT_WITH),
)
@click.option(
    "--allow-frag-needed",
    is_flag=True,
    help="mtu: let ICMP fragmentation-needed through (PMTU discovery works).",
)
@click.option(
    "--percent",
    type=click.FloatRange(0, 100, min_open=True, max_open=True),
    default=10.0,
    show_default=True,
    help="loss: the share of TCP packets dropped at random.",
)
def lab_fault_add(
    kind: str,
    src: str | None,
    dst: str | None,
    port: int | None,
    one_way: bool,
    mtu: int,
    reject_with: str,
    allow_frag_needed: bool,
    percent: float,
) -> None:
    """Add a fault: drop, reject, blackhole, mtu, masquerade, route or loss."""
    try:
        fault = faults.add_fault(
            kind,
            src=src,
            dst=dst,
            port=port,
            both=not one_way,
            mtu=mtu,
            reject_with=reject_with,
            allow_frag_needed=allow_frag_needed,
            percent=percent,
        )
    except LabError as exc:
        fail(str(exc))
    click.echo(f"fault {fault['id']}: {_describe_fault(fault)}")


def _describe_fault(f: dict[str, object]) -> str:
    parts = [str(f["kind"])]
    for key in ("src", "dst", "port", "mtu", "reject_with", "percent"):
        if f.get(key) is not None:
            parts.append(f"{key}={f[key]}")
    if f["kind"] in ("drop", "reject", "route", "masquerade", "loss"):
        parts.append(f"direction={f['direction']}")
    return " ".join(parts)


@lab_fault.command("list")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def lab_fault_list(output: str) -> None:
    """List active faults."""
    try:
        active = faults.list_faults()
    except LabError as exc:
        fail(str(exc))
    if output == "json":
        click.echo(
            json.dumps([{k: v for k, v in f.items() if k != "undo"} for f in active], indent=2)
        )
        return
    if not active:
        click.echo("no faults")
    for f in active:
        click.echo(f"{f['id']}: {_describe_fault(f)}")


@lab_fault.command("clear")
def lab_fault_clear() -> None:
    """Remove every fault."""
    try:
        n = faults.clear_faults()
    except LabError as exc:
        fail(str(exc))
    click.echo(f"cleared {n} faults")


for _command in (*COMMANDS, gossip):
    main.add_command(_command)
lab.add_command(lab_cassandra_group)


# ---------------------------------------------------------------- lint


@main.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@kubeconfig_option
@click.option(
    "--context",
    "control_plane",
    default=None,
    metavar="NAME",
    help="The control plane's context: check each k8sContext's registration there, and "
    "where each datacenter lands (storage class, racks' zones) in the contexts of your "
    "kubeconfig.",
)
@output_option
def lint_cmd(
    files: tuple[str, ...], kubeconfig: str | None, control_plane: str | None, output: str
) -> None:
    """MissionControlCluster manifests checked before you apply them: schema, unique
    datacenter names, internode encryption, racks and zones, internode ports, heap against
    memory, stopped datacenters (offline); with --context CONTROL_PLANE, every datacenter's
    k8sContext registered there (a ClientConfig and its Secret in mission-control) and a
    context of your kubeconfig, and in the cluster it lands on its storage class and a node in
    each rack's zone. Each finding names the field and its line.

    Exit codes: 0 no error found, 1 errors found, 2 a file could not be read, 3 the control
    plane, a cluster a datacenter lands on or its storage classes could not be read (the
    findings gathered are printed first).
    """
    cp = None
    if control_plane is not None:
        path, entries, _ = pick_contexts(kubeconfig, (control_plane,), False)
        cp = ControlPlane(path, control_plane, frozenset(e.name for e in entries))
    done = workflow(lint_manifests(files, cp))
    linted, findings = done.linted, done.findings
    if output in ("json", "yaml"):
        doc = {
            "clusters": [{"name": one.cluster, "file": one.source} for one in linted],
            "findings": [json_report.finding_doc(f) for f in findings],
            "unread": list(done.unread),
            "errors": list(done.errors),
        }
        click.echo(
            json.dumps(doc, indent=2)
            if output == "json"
            else yaml.safe_dump(doc, sort_keys=False, width=100)
        )
    elif linted:
        console = Console(highlight=False)
        for one in linted:
            console.print(f"{one.cluster or '(no name)'} ({one.source})", style="bold")
        terminal.render_findings(findings, console, with_location=True)
    report_errors((*done.unread, *done.errors))
    sys.exit(done.exit_code)
