"""Dispatch a plan to all agents concurrently and gather one result per planned probe."""

from __future__ import annotations

import asyncio
from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netcheck.agent.transport import AgentError, AgentInfo, AgentTransport, ProbeBatch
from netcheck.model.outcome import Outcome
from netcheck.model.probe import FollowUp, ProbeKind, ProbeResult, ProbeSpec, Target, TargetResult
from netcheck.model.probe_table import ProbeTableFill
from netcheck.model.topology import Topology


@dataclass(frozen=True, kw_only=True)
class AgentProblem:
    endpoint: str
    agent: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Collected:
    results: Sequence[ProbeResult]  # a ProbeTable: one row per planned probe, in plan order
    problems: tuple[AgentProblem, ...]
    # endpoints whose agent answered and can send raw packets (it holds CAP_NET_RAW)
    raw_capable: frozenset[str] = frozenset()
    # raw results the agents gathered as follow-ups of the probes (see agent/followup.py)
    evidence: tuple[ProbeResult, ...] = ()


ProgressFn = Callable[[str, int, int], None]  # (agent endpoint, probes done, its probes)

# targets per request, whatever more an agent takes: what the collector holds per agent in
# flight (targets, the request, the answer) stays small with a thousand agents at once, and
# an agent's rate, not the request's size, sets how long its probes take
COLLECTOR_BATCH = 256
CALLS_IN_FLIGHT = 256  # HttpAgentTransport's connections


def _result(spec: ProbeSpec, a: TargetResult) -> ProbeResult:
    return ProbeResult(
        src=spec.src,
        dst=spec.dst,
        port=spec.port,
        kind=a.kind,
        outcome=a.outcome,
        latency_ms=a.latency_ms,
        detail=a.detail,
        evidence=a.evidence,
        local_address=a.local_address,
        observed_source=a.observed_source,
    )


async def collect(
    topology: Topology,
    plan: Sequence[ProbeSpec],
    transport: AgentTransport,
    *,
    timeout_s: float,
    payload_bytes: int,
    progress: ProgressFn | None = None,
    follow: Mapping[ProbeSpec, FollowUp] | None = None,
) -> Collected:
    """follow: raw follow-ups for probes, asked of agents that hold CAP_NET_RAW.

    Each answer goes straight into the run's table at its probe's row (ProbeTableFill): the
    collector keeps no object per probe, only row numbers per agent and the batch in flight.
    """
    address = {ep.name: ep.address for ep in topology.endpoints}
    # by source and the agent that sends for it: a database pod's own netcheck container
    # (its prober) sends its mesh probes, the agent on its node its CQL and Management API reads
    by_src: dict[tuple[str, str], array[int]] = defaultdict(lambda: array("I"))
    senders: dict[tuple[str, ProbeKind], str] = {}
    for row, spec in enumerate(plan):
        sender = senders.get((spec.src, spec.kind))
        if sender is None:
            found = topology.endpoint(spec.src).source_for(spec.kind)
            assert found is not None
            sender = senders[(spec.src, spec.kind)] = found
        by_src[(spec.src, sender)].append(row)
    table = ProbeTableFill(len(plan))

    def put(row: int, s: ProbeSpec, a: TargetResult) -> None:
        table.put_fields(
            row,
            s.src,
            s.dst,
            s.port,
            a.kind,
            a.outcome,
            a.latency_ms,
            detail=a.detail,
            evidence=a.evidence,
            local_address=a.local_address,
            observed_source=a.observed_source,
        )

    def not_measured(row: int, s: ProbeSpec, why: str) -> None:
        table.put_fields(row, s.src, s.dst, s.port, s.kind, Outcome.NOT_MEASURED, None, detail=why)

    # endpoints may share an agent (database pods probed from the agent on their node), and an
    # agent runs one batch at a time
    locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    # batches made and in flight at once, whatever the number of agents: what the collector
    # holds for its calls is bounded by CALLS_IN_FLIGHT x COLLECTOR_BATCH targets
    calls = asyncio.Semaphore(CALLS_IN_FLIGHT)
    raw_capable: set[str] = set()
    followed: list[ProbeResult] = []

    async def one_agent(src: str, agent: str, rows: array[int]) -> AgentProblem | None:
        async with locks[agent]:
            return await agent_batches(src, agent, rows)

    async def agent_batches(src: str, agent: str, rows: array[int]) -> AgentProblem | None:
        done = 0
        try:
            info = await transport.info(agent)
            if info.raw_probes:
                raw_capable.add(src)
            follows = follow if follow is not None and info.raw_probes else {}
            for i in range(0, len(rows), min(info.max_batch, COLLECTOR_BATCH)):
                async with calls:
                    done += await one_batch(
                        agent, rows[i : i + min(info.max_batch, COLLECTOR_BATCH)], info, follows
                    )
                if progress:
                    progress(src, done, len(rows))
        except AgentError as exc:
            for row in rows[done:]:
                not_measured(row, plan[row], f"agent not usable: {exc}")
            if progress:
                progress(src, len(rows), len(rows))
            return AgentProblem(endpoint=src, agent=agent, message=str(exc))
        return None

    async def one_batch(
        agent: str, chunk: array[int], info: AgentInfo, follows: Mapping[ProbeSpec, FollowUp]
    ) -> int:
        """Made, asked and kept while holding one of the calls in flight."""
        specs = [plan[row] for row in chunk]
        batch = ProbeBatch(
            targets=tuple(
                Target(
                    address=address[s.dst],
                    port=s.port,
                    kind=s.kind,
                    echo=s.echo,
                    count=s.count,
                    follow=follows.get(s),
                    ca_pem=s.ca_pem,
                )
                for s in specs
            ),
            timeout_s=timeout_s,
            payload_bytes=payload_bytes,
        )
        answers = await transport.probe(agent, batch, info)
        for row, s, a in zip(chunk, specs, answers, strict=True):
            put(row, s, a)
            followed.extend(_result(s, f) for f in a.followed)
        return len(chunk)

    gathered = await asyncio.gather(*(one_agent(s, a, v) for (s, a), v in by_src.items()))
    # the last guard between a broken agent and the verdict: a probe that vanished would
    # otherwise count as nothing failed
    for row in list(table.empty()):
        not_measured(row, plan[row], "no result came back for it")
    return Collected(
        results=table.table(),
        problems=tuple(p for p in gathered if p is not None),
        raw_capable=frozenset(raw_capable),
        evidence=tuple(followed),
    )
