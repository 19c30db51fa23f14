"""What the commands share: the one-line error exit, the feedback of workflows on stderr
(lines and progress bars), report outputs."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from netcheck.model.report import RunReport
from netcheck.reports import html, json_report, junit, prometheus, terminal
from netcheck.workflows.feedback import Feedback

EXIT_BAD_INPUT = 2


# `-o text|json|yaml` of the commands that print a document (discover, lint)
output_option = click.option(
    "-o",
    "--output",
    type=click.Choice(["text", "json", "yaml"]),
    default="text",
    show_default=True,
)


def fail(message: str) -> NoReturn:
    click.echo(f"netcheck: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


F = TypeVar("F", bound=Callable[..., Any])


def raw_options(fn: F) -> F:
    """--raw/--no-raw and --latency-count, shared by run and preflight."""
    fn = click.option(
        "--latency-count",
        default=10,
        show_default=True,
        type=click.IntRange(1, 100),
        help="SYNs per pair for latency and loss (raw probes).",
    )(fn)
    return click.option(
        "--raw/--no-raw",
        default=True,
        show_default=True,
        help="After the mesh, ask agents holding CAP_NET_RAW for raw evidence (SYN, "
        "traceroute, path MTU, latency) that says why and where things fail.",
    )(fn)


def progress_console() -> Console:
    return Console(stderr=True)


def say(line: str) -> None:
    click.echo(f"netcheck: {line}", err=True)


def feedback(show_progress: bool) -> Feedback:
    """Workflows' lines on stderr, and their progress as transient bars when stderr is a
    terminal and the user did not ask for none."""
    show = show_progress and sys.stderr.isatty()

    @contextlib.contextmanager
    def bars(label: str, total: int | None) -> Iterator[Callable[[int, int | None], None]]:
        with progress_bar(label, show) as progress:
            task = progress.add_task(label, total=total)

            def update(done: int, total: int | None) -> None:
                progress.update(task, completed=done, total=total)

            yield update

    return Feedback(say=say, bars=bars)


def progress_bar(label: str, show: bool) -> Progress:
    """A transient bar on stderr: label, bar, done/total, elapsed."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=progress_console(),
        transient=True,
        disable=not show,
    )


def write_outputs(
    report: RunReport,
    output: str,
    json_file: str | None,
    junit_file: str | None,
    prom_file: str | None,
    prom_pod_pairs: bool,
    html_file: str | None = None,
) -> None:
    if output == "json":
        click.echo(json_report.to_json(report), nl=False)
    else:
        terminal.render(report, Console(highlight=False))
    writers: list[tuple[str | None, Callable[[], str]]] = [
        (json_file, lambda: json_report.to_json(report)),
        (junit_file, lambda: junit.to_junit(report)),
        (prom_file, lambda: prometheus.to_exposition(report, prom_pod_pairs)),
        (html_file, lambda: html.to_html(report)),
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
