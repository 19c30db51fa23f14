"""What the commands share: the one-line error exit, collection with progress, report outputs."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from netcheck.agent.transport import AgentTransport
from netcheck.collector.run import Collected, collect
from netcheck.model.probe import ProbeSpec
from netcheck.model.report import RunReport
from netcheck.model.topology import Topology
from netcheck.reports import json_report, junit, prometheus, terminal

EXIT_BAD_INPUT = 2


def fail(message: str) -> NoReturn:
    click.echo(f"netcheck: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def progress_console() -> Console:
    return Console(stderr=True)


async def collect_with_progress(
    topology: Topology,
    plan: list[ProbeSpec],
    transport: AgentTransport,
    timeout: float,
    payload: int,
    show_progress: bool,
) -> Collected:
    agents = len({spec.src for spec in plan})
    progress = Progress(
        TextColumn(f"{len(plan)} probes, timeout {timeout:g}s; agents answered"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console(),
        transient=True,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("probing", total=agents)
        answered: set[str] = set()

        def on_progress(src: str, done: int, total: int) -> None:
            if done >= total:
                answered.add(src)
                progress.update(task, completed=len(answered))

        return await collect(
            topology,
            plan,
            transport,
            timeout_s=timeout,
            payload_bytes=payload,
            progress=on_progress,
        )


def write_outputs(
    report: RunReport,
    output: str,
    json_file: str | None,
    junit_file: str | None,
    prom_file: str | None,
    prom_pod_pairs: bool,
) -> None:
    if output == "json":
        click.echo(json_report.to_json(report), nl=False)
    else:
        terminal.render(report, Console(highlight=False))
    writers: list[tuple[str | None, Callable[[], str]]] = [
        (json_file, lambda: json_report.to_json(report)),
        (junit_file, lambda: junit.to_junit(report)),
        (prom_file, lambda: prometheus.to_exposition(report, prom_pod_pairs)),
    ]
    for path, text in writers:
        if path:
            try:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text())
            except OSError as exc:
                fail(
                    f"cannot write {path} ({exc.strerror}); check the directory exists "
                    "and is writable"
                )
