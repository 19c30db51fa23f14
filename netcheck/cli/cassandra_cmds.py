"""Cassandra commands: collection for `run`, `gossip analyze`, and the lab's Cassandra."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import click
from rich.console import Console

from netcheck.cassandra.exec import ExecBackend
from netcheck.cli.common import fail
from netcheck.discovery.inventory import InventoryError, load_inventory
from netcheck.lab import build
from netcheck.lab import cassandra as lab_cassandra
from netcheck.lab.exec import LabExec
from netcheck.lab.net import LabError
from netcheck.model.findings import Severity
from netcheck.model.gossip import GossipAnalysis
from netcheck.model.topology import Topology
from netcheck.reports import json_report, terminal
from netcheck.workflows.feedback import BadInput
from netcheck.workflows.gossip import analyze_files


def cassandra_backend(topology: Topology) -> ExecBackend:
    """The inventory's exec backend for nodetool and the logs (cassandra.exec)."""
    if topology.cassandra_exec == "lab":
        try:
            return LabExec(build.require_state())
        except LabError as exc:
            fail(f"inventory cassandra.exec lab: {exc}")
    fail(f"unknown Cassandra exec backend {topology.cassandra_exec!r}")


# ---------------------------------------------------------------- gossip analyze


@click.group("gossip")
def gossip() -> None:
    """Cassandra's own view: nodetool outputs and logs."""


@gossip.command("analyze")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--inventory",
    "inventory_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Check gossip's DCs, racks and nodes against this inventory too.",
)
@click.option(
    "-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def gossip_analyze(files: tuple[str, ...], inventory_path: str | None, output: str) -> None:
    """Saved nodetool status / describecluster / gossipinfo outputs, Cassandra logs and
    Management API endpoint answers (JSON): one file per node, or several outputs in one
    file as pasted into a ticket (prompts, comments, kubectl's own lines and cut lines are
    fine).

    Exit codes: 0 no error found, 1 errors found, 2 bad input.
    """
    topology = None
    if inventory_path:
        try:
            topology = load_inventory(inventory_path)
        except InventoryError as exc:
            fail(str(exc))
    try:
        done = analyze_files(files, topology)
    except BadInput as exc:
        fail(str(exc))
    analysis, extra = done.analysis, done.warnings
    if output == "json":
        click.echo(json.dumps(analysis_doc(analysis, extra), indent=2))
    else:
        console = Console(highlight=False)
        terminal.render_cassandra(analysis, console)
        terminal.render_findings(analysis.findings, console)
        for w in (*analysis.warnings, *extra):
            console.print(f"warning: {w}", style="yellow")
    sys.exit(1 if any(f.severity is Severity.ERROR for f in analysis.findings) else 0)


def analysis_doc(analysis: GossipAnalysis, extra_warnings: tuple[str, ...] = ()) -> dict[str, Any]:
    doc = json_report.cassandra_doc(analysis)
    doc["findings"] = [json_report.finding_doc(f) for f in analysis.findings]
    doc["warnings"] = [*doc["warnings"], *extra_warnings]
    return doc


# ---------------------------------------------------------------- lab cassandra


@click.group("cassandra")
def lab_cassandra_group() -> None:
    """The lab's Cassandra nodes (`netcheck lab up --cassandra`)."""


@lab_cassandra_group.command("restart")
@click.argument("node")
@click.option(
    "--internode-encryption",
    type=click.Choice(lab_cassandra.ENCRYPTIONS),
    default="all",
    show_default=True,
    help="none: a node without internode TLS among nodes that require it.",
)
def lab_cassandra_restart(node: str, internode_encryption: str) -> None:
    """Restart one node, optionally with other internode TLS settings."""
    try:
        state = build.require_state()
        what = lab_cassandra.restart_node(state, build.state_dir(), node, internode_encryption)
        build.save_state(state)
    except LabError as exc:
        fail(str(exc))
    click.echo(f"{node} (internode_encryption {internode_encryption}): {what}")


@lab_cassandra_group.command(
    "nodetool", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.argument("node")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def lab_cassandra_nodetool(node: str, args: tuple[str, ...]) -> None:
    """Run nodetool on a lab node: netcheck lab cassandra nodetool NODE status."""
    try:
        argv = lab_cassandra.nodetool_argv(build.require_state(), node, args)
    except LabError as exc:
        fail(str(exc))
    sys.exit(subprocess.run(argv, check=False).returncode)


@lab_cassandra_group.command("status")
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
def lab_cassandra_status(output: str) -> None:
    """The lab's Cassandra nodes: version, start-up time, TLS, running or not."""
    try:
        state = build.require_state()
    except LabError as exc:
        fail(str(exc))
    record = state.get("cassandra")
    if not record:
        fail("the lab runs no Cassandra: run `netcheck lab up --cassandra`")
    nodes = [
        {
            "name": h["name"],
            "address": h["address"],
            "datacenter": h["datacenter"],
            "rack": h["rack"],
            "internode_encryption": record["encryption"].get(h["name"], ""),
            "running": lab_cassandra.jvm_running(h["namespace"]),
        }
        for h in lab_cassandra.database_hosts(state)
    ]
    if output == "json":
        click.echo(json.dumps({**record, "nodes": nodes}, indent=2))
        return
    click.echo(f"Cassandra {record['version']}, started in {record['start_s']}s")
    for n in nodes:
        click.echo(
            f"{n['name']:<16} {n['address']:<15} {n['datacenter']}/{n['rack']:<4} "
            f"tls={n['internode_encryption']:<4} {'running' if n['running'] else 'STOPPED'}"
        )


__all__ = ["cassandra_backend", "gossip", "lab_cassandra_group"]
