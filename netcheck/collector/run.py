"""Dispatch a plan to all agents concurrently and gather one result per planned probe."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from netcheck.agent.transport import AgentError, AgentTransport, ProbeBatch
from netcheck.model.outcome import Outcome
from netcheck.model.probe import FollowUp, ProbeKind, ProbeResult, ProbeSpec, Target, TargetResult
from netcheck.model.probe_table import ProbeTable, ProbeTableBuilder
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


def _not_measured(spec: ProbeSpec, why: str) -> ProbeResult:
    return ProbeResult(
        src=spec.src,
        dst=spec.dst,
        port=spec.port,
        kind=spec.kind,
        outcome=Outcome.NOT_MEASURED,
        detail=why,
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
    """follow: raw follow-ups for probes, asked of agents that hold CAP_NET_RAW."""
    address = {ep.name: ep.address for ep in topology.endpoints}
    # by source and the agent that sends for it: a database pod's own netcheck container
    # (its prober) sends its mesh probes, the agent on its node its CQL and Management API reads
    by_src: dict[tuple[str, str], list[ProbeSpec]] = defaultdict(list)
    for spec in plan:
        sender = topology.endpoint(spec.src).source_for(spec.kind)
        assert sender is not None
        by_src[(spec.src, sender)].append(spec)

    # endpoints may share an agent (database pods probed from the agent on their node), and an
    # agent runs one batch at a time
    locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
    raw_capable: set[str] = set()
    followed: list[ProbeResult] = []

    async def one_agent(
        src: str, agent: str, specs: list[ProbeSpec]
    ) -> tuple[list[ProbeResult], AgentProblem | None]:
        async with locks[agent]:
            return await agent_batches(src, agent, specs)

    async def agent_batches(
        src: str, agent: str, specs: list[ProbeSpec]
    ) -> tuple[list[ProbeResult], AgentProblem | None]:
        out: list[ProbeResult] = []
        try:
            info = await transport.info(agent)
            if info.raw_probes:
                raw_capable.add(src)
            follows = follow if follow is not None and info.raw_probes else {}
            for i in range(0, len(specs), info.max_batch):
                chunk = specs[i : i + info.max_batch]
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
                        for s in chunk
                    ),
                    timeout_s=timeout_s,
                    payload_bytes=payload_bytes,
                )
                answers = await transport.probe(agent, batch, info)
                out.extend(_result(s, a) for s, a in zip(chunk, answers, strict=True))
                followed.extend(
                    _result(s, f) for s, a in zip(chunk, answers, strict=True) for f in a.followed
                )
                if progress:
                    progress(src, len(out), len(specs))
        except AgentError as exc:
            out.extend(_not_measured(s, f"agent not usable: {exc}") for s in specs[len(out) :])
            if progress:
                progress(src, len(out), len(specs))
            return out, AgentProblem(endpoint=src, agent=agent, message=str(exc))
        return out, None

    gathered = await asyncio.gather(*(one_agent(s, a, v) for (s, a), v in by_src.items()))
    results = [r for rs, _ in gathered for r in rs]
    problems = [p for _, p in gathered if p is not None]
    return Collected(
        results=accounted(plan, results),
        problems=tuple(problems),
        raw_capable=frozenset(raw_capable),
        evidence=tuple(followed),
    )


def accounted(plan: Sequence[ProbeSpec], results: list[ProbeResult]) -> ProbeTable:
    """Exactly one result per planned probe: whatever an agent left out is not measured.

    The last guard between a broken agent and the verdict: a probe that vanished would
    otherwise count as nothing failed. The results are kept in columns (ProbeTable).
    """
    by_key: dict[tuple[str, str, int, ProbeKind], list[ProbeResult]] = defaultdict(list)
    for r in results:
        by_key[(r.src, r.dst, r.port, r.kind)].append(r)
    out = ProbeTableBuilder()
    for spec in plan:
        got = by_key.get((spec.src, spec.dst, spec.port, spec.kind))
        out.add(got.pop(0) if got else _not_measured(spec, "no result came back for it"))
    return out.table()
