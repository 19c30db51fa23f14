"""Every node's nodetool status / describecluster / gossipinfo and recent log, at once."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from netcheck.cassandra.exec import ExecBackend, ExecResult, ExecTarget
from netcheck.model.gossip import Observation
from netcheck.nodetool.observe import Output, observe

COMMANDS = (
    ("status", ["nodetool", "status"]),
    ("describecluster", ["nodetool", "describecluster"]),
    ("gossipinfo", ["nodetool", "gossipinfo"]),
)


@dataclass(frozen=True, kw_only=True)
class CollectOptions:
    logs_since_s: float = 600.0
    timeout_s: float = 60.0
    concurrency: int | None = None  # pods at once; None: what the backend suits (its parallel)


@dataclass(frozen=True, kw_only=True)
class Collected:
    observations: tuple[Observation, ...]
    problems: tuple[str, ...]  # one line per output that could not be had


async def collect_nodes(
    backend: ExecBackend,
    targets: list[ExecTarget],
    options: CollectOptions,
) -> Collected:
    gate = asyncio.Semaphore(options.concurrency or backend.parallel)

    async def nodetool(target: ExecTarget) -> list[ExecResult]:
        async with gate:
            return await backend.nodetool(
                target, [argv[1:] for _, argv in COMMANDS], options.timeout_s
            )

    async def node(target: ExecTarget) -> tuple[Observation, list[tuple[str, str, str]]]:
        jobs: list[tuple[str, list[str] | None]] = [*COMMANDS, ("logs", None)]
        commands, log = await asyncio.gather(
            nodetool(target), backend.logs(target, options.logs_since_s, options.timeout_s)
        )
        results = [*commands, log]
        outputs, problems = [], []
        for (kind, argv), result in zip(jobs, results, strict=True):
            if result.ok:
                outputs.append(Output(kind=kind, text=result.output, where=target.endpoint))
            else:
                what = " ".join(argv) if argv else "the log"
                problems.append((result.error, what, target.endpoint))
        return observe(target.endpoint, outputs, target.address), problems

    done = await asyncio.gather(*(node(t) for t in targets))
    return Collected(
        observations=tuple(o for o, _ in done),
        problems=_grouped([p for _, ps in done for p in ps], backend.name),
    )


def _grouped(problems: list[tuple[str, str, str]], backend: str) -> tuple[str, ...]:
    """One line per distinct error (RBAC denied on 12 pods is one line, not 36)."""
    by_error: dict[str, tuple[list[str], list[str]]] = {}
    for error, what, endpoint in problems:
        whats, endpoints = by_error.setdefault(error, ([], []))
        if what not in whats:
            whats.append(what)
        if endpoint not in endpoints:
            endpoints.append(endpoint)
    return tuple(
        f"{', '.join(whats)} on {_first(endpoints)} ({backend}): {error}"
        for error, (whats, endpoints) in by_error.items()
    )


def _first(names: list[str], shown: int = 6) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
