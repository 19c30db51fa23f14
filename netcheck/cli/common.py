"""What the commands share: the one-line error exit, the feedback of workflows on stderr
(lines and progress bars), report outputs."""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from collections.abc import Callable, Iterator
from typing import IO, Any, NoReturn, TypeVar

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class JsonForm:
    """How the run's JSON is written: compact unless indent, the failing probes or all."""

    indent: int | None = None
    probes: str = "failing"


def fail(message: str) -> NoReturn:
    click.echo(f"netcheck: error: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


F = TypeVar("F", bound=Callable[..., Any])


def json_options(fn: F) -> F:
    """--json-indent and --json-probes, for -o json and --json-file."""
    fn = click.option(
        "--json-probes",
        type=click.Choice(json_report.PROBES_LISTED),
        default="failing",
        show_default=True,
        help="Which probes the JSON lists: those that failed or were not measured, or all. "
        "Every outcome is counted per rack pair and port either way (probe_counts).",
    )(fn)
    return click.option(
        "--json-indent",
        type=click.IntRange(0, 8),
        default=None,
        help="Indent the JSON by this many spaces, for people (compact by default).",
    )(fn)


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
    json_form: JsonForm = JsonForm(),
) -> None:
    def json_to(out: IO[str]) -> None:
        json_report.write_json(report, out, indent=json_form.indent, probes=json_form.probes)

    if output == "json":
        json_to(sys.stdout)
    else:
        terminal.render(report, Console(highlight=False))
    writers: list[tuple[str | None, Callable[[IO[str]], object]]] = [
        (json_file, json_to),
        (junit_file, lambda f: f.write(junit.to_junit(report))),
        (prom_file, lambda f: f.write(prometheus.to_exposition(report, prom_pod_pairs))),
        (html_file, lambda f: f.write(html.to_html(report))),
    ]
    for path, write in writers:
        if path:
            try:
                with open(path, "w", encoding="utf-8") as f:
                    write(f)
            except OSError as exc:
                fail(
                    f"cannot write {path} ({exc.strerror}); check the directory exists "
                    "and is writable"
                )
