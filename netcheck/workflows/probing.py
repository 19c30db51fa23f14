"""Probing and diagnosing one run: the mesh with its raw evidence, the node reads, and the
report built from them (what every workflow that probes shares)."""

from __future__ import annotations

import dataclasses
import datetime
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netcheck.agent.transport import AgentTransport
from netcheck.cassandra.collect import Collected as CassandraCollected
from netcheck.collector.evidence import (
    EvidenceOptions,
    combined,
    follow_ups,
    plan_evidence,
    refine,
)
from netcheck.collector.node_reads import READ_TIMEOUT_S, attach, plan_cql, plan_mgmt
from netcheck.collector.run import AgentProblem, Collected, collect
from netcheck.diagnosis.findings import diagnose
from netcheck.diagnosis.gossip import analyze, expected_closed, merge
from netcheck.model.evidence import CQL_LOGIN_REFUSED, login_needs_quorum
from netcheck.model.findings import Finding
from netcheck.model.outcome import Outcome
from netcheck.model.probe import FollowUp, ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.probe_table import ProbeTable
from netcheck.model.report import OutsiderProbe, PortIsolation, RunReport, TlsRow
from netcheck.model.topology import Topology
from netcheck.workflows.feedback import Feedback


async def collect_with_progress(
    topology: Topology,
    plan: Sequence[ProbeSpec],
    transport: AgentTransport,
    timeout: float,
    payload: int,
    feedback: Feedback,
    what: str = "probes",
    follow: dict[ProbeSpec, FollowUp] | None = None,
) -> Collected:
    agents = len({spec.src for spec in plan})
    label = f"{len(plan)} {what}, timeout {timeout:g}s; agents answered"
    with feedback.bars(label, agents) as bar:
        answered: set[str] = set()

        def on_progress(src: str, done: int, total: int) -> None:
            if done >= total:
                answered.add(src)
                bar(len(answered), agents)

        return await collect(
            topology,
            plan,
            transport,
            timeout_s=timeout,
            payload_bytes=payload,
            progress=on_progress,
            follow=follow,
        )


@dataclass(frozen=True, kw_only=True)
class Probed:
    results: Sequence[ProbeResult]  # the matrix (a ProbeTable), failures refined by raw evidence
    evidence: tuple[ProbeResult, ...]  # the raw second pass
    problems: tuple[AgentProblem, ...]  # agents unusable in the first pass
    later_problems: tuple[str, ...]  # agents that failed during the raw pass
    raw_skipped: tuple[str, ...]  # endpoints whose agent has no CAP_NET_RAW


async def probe_all(
    topology: Topology,
    plan: Sequence[ProbeSpec],
    transport: AgentTransport,
    timeout: float,
    payload: int,
    feedback: Feedback,
    raw: EvidenceOptions | None,
) -> Probed:
    """The mesh with (raw given) raw evidence from every agent that can send it: follow-ups
    of the mesh's probes, then a second pass for what they left out. A stalled exchange, or
    a timeout a raw SYN contradicts, is asked again before it counts (ask_again)."""
    collected = await collect_with_progress(
        topology,
        plan,
        transport,
        timeout,
        payload,
        feedback,
        follow=follow_ups(topology, plan, raw) if raw is not None else None,
    )
    collected = dataclasses.replace(
        collected,
        results=await ask_again(
            topology, plan, transport, collected.results, timeout, payload, _stalled, "stalled"
        ),
    )
    if raw is None:
        return Probed(
            results=collected.results,
            evidence=(),
            problems=collected.problems,
            later_problems=(),
            raw_skipped=(),
        )
    unusable = {p.endpoint for p in collected.problems}
    answered = {spec.src for spec in plan} - unusable
    evidence_plan = plan_evidence(
        topology, collected.results, collected.raw_capable, raw, done=collected.evidence
    )
    second = (
        await collect_with_progress(
            topology, evidence_plan, transport, raw.timeout_s, 0, feedback, "raw probes"
        )
        if evidence_plan
        else Collected(results=(), problems=())
    )
    evidence = combined(collected.evidence, tuple(second.results))
    # a connect that timed out while a raw SYN to the same port got its SYN-ACK or RST: the
    # two disagree (a peer too busy to accept, loss, or a fault that went away in between),
    # so the connect is asked again, and an answer that agrees with the raw SYN settles it
    raw_said = {
        (e.src, e.dst, e.port): e.outcome
        for e in evidence
        if e.kind is ProbeKind.SYN and e.outcome in (Outcome.OPEN, Outcome.REFUSED)
    }

    def contradicted(r: ProbeResult) -> bool:
        return r.outcome is Outcome.TIMEOUT and (r.src, r.dst, r.port) in raw_said

    def agrees(r: ProbeResult) -> bool:
        return agrees_with_raw(raw_said.get((r.src, r.dst, r.port)), r)

    results = await ask_again(
        topology,
        plan,
        transport,
        collected.results,
        timeout,
        payload,
        contradicted,
        "timed out",
        settles=agrees,
    )
    return Probed(
        results=refine(results, evidence),
        evidence=evidence,
        problems=collected.problems,
        later_problems=tuple(
            f"raw probes from {p.endpoint} not measured: {p.message}" for p in second.problems
        ),
        raw_skipped=tuple(sorted(answered - collected.raw_capable)),
    )


MORE_ASKS = 2  # more asks of a doubtful failure before it counts


def agrees_with_raw(raw: Outcome | None, r: ProbeResult) -> bool:
    """A connect asked again settles a timed-out one when it agrees with the raw SYN: opened
    where the SYN got a SYN-ACK (also when the exchange then stalls: that stall is the path's,
    a black hole on it, said with the other stalled pairs), refused where it got a RST."""
    return r.outcome.connected if raw is Outcome.OPEN else raw is r.outcome


def _stalled(r: ProbeResult) -> bool:
    return r.outcome is Outcome.STALLED


def _completed(r: ProbeResult) -> bool:
    """The exchange went through: open, or open through a NAT (the serving agent saw another
    source: that is the answer, and NAT_* findings come from it)."""
    return r.outcome in (Outcome.OPEN, Outcome.NAT)


async def ask_again(
    topology: Topology,
    plan: Sequence[ProbeSpec],
    transport: AgentTransport,
    results: Sequence[ProbeResult],
    timeout: float,
    payload: int,
    doubtful: Callable[[ProbeResult], bool],
    what: str,
    settles: Callable[[ProbeResult], bool] = _completed,
) -> Sequence[ProbeResult]:
    """A failure is one slow answer until it repeats. A connection that opened but whose
    exchange did not finish in time, or a connect that timed out while a raw SYN got its
    SYN-ACK: a peer busy for a second (a JVM's HTTP server warming up beside starting
    nodetools, an agent of a loaded machine with a full accept queue) looks the same as a
    policer once. Each doubtful probe is asked again, up to MORE_ASKS times; the first
    answer that settles it (the exchange went through, open or through a NAT, unless told
    otherwise) replaces it, saying so. A failure
    that repeats, or turns into another failure, stays as it was; silence no raw SYN
    contradicts is never asked again (a drop costs no more time). Only probes that did not
    pass can be doubtful: the table finds those without reading the others."""
    for ask in range(1, MORE_ASKS + 1):
        stalled = {
            (r.src, r.dst, r.port, r.kind) for r in ProbeTable.of(results).not_open() if doubtful(r)
        }
        if not stalled:
            break
        again = [s for s in plan if (s.src, s.dst, s.port, s.kind) in stalled]
        done = await collect(topology, again, transport, timeout_s=timeout, payload_bytes=payload)
        settled = {(r.src, r.dst, r.port, r.kind): r for r in done.results if settles(r)}
        table = ProbeTable.of(results)
        changed = {}
        for i in table.not_open_rows():  # only what did not pass was asked again
            r = table.row(i)
            now = settled.get((r.src, r.dst, r.port, r.kind))
            if now is not None:
                changed[i] = dataclasses.replace(
                    now, detail=f"{now.detail}; {what} {ask} time(s) before (slow, not lost)"
                )
        results = table.with_rows(changed)
    return results


async def node_reads(
    topology: Topology, transport: AgentTransport, feedback: Feedback
) -> tuple[ProbeResult, ...]:
    """Each database pod's agent reads its own node's system tables over CQL and asks its
    Management API (where the pod declares 8080)."""
    plan = plan_cql(topology) + plan_mgmt(topology)
    if not plan:
        return ()
    done = await collect_with_progress(
        topology, plan, transport, READ_TIMEOUT_S, 0, feedback, "node reads"
    )
    return tuple(done.results)


def with_node_reads(
    cassandra: CassandraCollected, cql: tuple[ProbeResult, ...], topology: Topology
) -> CassandraCollected:
    """Each node's CQL and Management API reads on its observation; a refused CQL login is a
    problem too (credentials were given and do not work), while an agent without credentials
    only gets an INFO."""
    refused = sorted(
        r.dst
        for r in cql
        if r.kind is ProbeKind.CQL
        and r.detail.startswith(CQL_LOGIN_REFUSED)
        and not login_needs_quorum(r.detail)  # the network findings say why
    )
    problems = cassandra.problems
    if refused:
        problems = (
            *problems,
            f"CQL on {', '.join(refused)}: the agents' login was refused; check Secret "
            "netcheck-cql in namespace netcheck (keys username and password)",
        )
    return dataclasses.replace(
        cassandra,
        observations=attach(cassandra.observations, cql, topology),
        problems=problems,
    )


def agent_problem_lines(problems: tuple[AgentProblem, ...], named: int = 3) -> list[str]:
    """One line per distinct problem: agents that fail the same way (a pod proxy RBAC denies
    every agent of a context) are one line naming the first few, not a line each."""
    groups: dict[str, list[AgentProblem]] = {}
    for p in problems:
        groups.setdefault(p.message.removeprefix(f"agent {p.agent}: "), []).append(p)
    lines = []
    for rest, same in groups.items():
        if len(same) == 1:
            lines.append(same[0].message)
            continue
        names = ", ".join(p.agent for p in same[:named])
        more = f" and {len(same) - named} more" if len(same) > named else ""
        lines.append(f"{len(same)} agents ({names}{more}): {rest}")
    return lines


def report_of(
    topology: Topology,
    probed: Probed,
    started: datetime.datetime,
    t0: float,
    extra_findings: tuple[Finding, ...] = (),
    problems: tuple[str, ...] = (),
    cassandra: CassandraCollected | None = None,
    isolation: tuple[PortIsolation, ...] = (),
    outsider_probes: tuple[OutsiderProbe, ...] = (),
    tls: tuple[TlsRow, ...] = (),
    feedback: Feedback | None = None,
) -> RunReport:
    """Say each agent problem once, diagnose, and build the run's report.

    cassandra: what nodetool and the logs said, checked and merged with the network findings.
    """
    feedback = feedback or Feedback()
    for line in agent_problem_lines(probed.problems):
        feedback.say(line)
    for line in probed.later_problems:
        feedback.say(line)
    closed: set[tuple[str, int]] = set()
    if cassandra is not None:
        closed = set(expected_closed(cassandra.observations, topology, probed.results))
    findings = diagnose(
        topology,
        # refusals by design (7001 on Cassandra 4.0+) are said once by the Cassandra layer
        tuple(p for p in probed.results if (p.dst, p.port) not in closed)
        if closed
        else probed.results,
        tuple((p.endpoint, p.message) for p in probed.problems),
        probed.evidence,
        probed.raw_skipped,
    )
    analysis = None
    if cassandra is not None:
        for line in cassandra.problems:
            feedback.say(line)
        analysis = analyze(cassandra.observations, topology, probed.results, findings, tls)
        findings = merge(topology, findings, analysis)
        problems = (*problems, *cassandra.problems)
    return RunReport(
        topology=topology,
        probes=probed.results,
        findings=(*extra_findings, *findings),
        started_at=started.isoformat(timespec="seconds"),
        duration_s=time.monotonic() - t0,
        problems=(*problems, *probed.later_problems),
        evidence=probed.evidence,
        cassandra=analysis,
        isolation=isolation,
        outsider_probes=outsider_probes,
        tls=tls,
    )
