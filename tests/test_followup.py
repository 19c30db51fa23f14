"""Follow-ups: raw evidence that rides with the mesh's probes (agent/followup.py).

The raw probes here are doubles (async functions shaped like the registry's raw probes) because
the subject is when follow-ups start, what cancels them and which target of a group gets them;
what real raw probes see is tested on loopback (test_raw.py) and on the lab (the scenarios,
whose every FIREWALL_DROP and black hole now comes from follow-ups).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import cast

import pytest

from netcheck.agent import followup
from netcheck.agent.wire import (
    WireError,
    result_from_json,
    result_to_json,
    target_from_json,
    target_to_json,
)
from netcheck.collector.evidence import EvidenceOptions, follow_ups, plan_evidence
from netcheck.collector.plan import plan_mesh
from netcheck.model.outcome import Outcome
from netcheck.model.probe import FollowUp, ProbeKind, ProbeResult, Target, TargetResult
from netcheck.probes.rawnet import RawNet
from tests.helpers import GOOD_RESULT, results_for, two_region_topology

RAW_TIMEOUT = 0.2
NO_SOCKETS = cast(RawNet, None)  # the doubles send nothing


def cross(s, d):
    return s.cluster != d.cluster


class RawDouble:
    """Raw probes that answer like the path the plain probe saw, and log when they start."""

    def __init__(self, answer: Outcome, delay: float = 0.0, timeout: float = RAW_TIMEOUT) -> None:
        self.answer, self.delay, self.timeout = answer, delay, timeout
        self.started: list[tuple[ProbeKind, float]] = []
        self.cancelled: list[ProbeKind] = []

    def probes(self) -> dict[ProbeKind, Callable[[RawNet, Target, float], Awaitable[TargetResult]]]:
        async def one(_: RawNet, t: Target, timeout: float) -> TargetResult:
            assert timeout == self.timeout  # the follow-up's, not the plain probe's
            self.started.append((t.kind, asyncio.get_running_loop().time()))
            try:
                await asyncio.sleep(self.delay)
            except asyncio.CancelledError:
                self.cancelled.append(t.kind)
                raise
            return TargetResult(address=t.address, port=t.port, kind=t.kind, outcome=self.answer)

        return dict.fromkeys(ProbeKind, one)


def plain_after(delay: float, target: Target, outcome: Outcome) -> Awaitable[TargetResult]:
    async def run() -> TargetResult:
        await asyncio.sleep(delay)
        return TargetResult(
            address=target.address, port=target.port, kind=target.kind, outcome=outcome
        )

    return run()


def target(port: int = 7001, address: str = "198.18.33.10", **follow) -> Target:
    f = {"timeout_s": RAW_TIMEOUT, "trace_hops": 8, "trace_group": "dc2/r1:7001"} | follow
    return Target(address=address, port=port, follow=FollowUp(**f))


async def follow(
    t: Target,
    plain: Awaitable[TargetResult],
    raw: RawDouble,
    claims: followup.BatchClaims,
    timeout: float = 1.0,
) -> TargetResult:
    return await followup.probe(plain, t, timeout, NO_SOCKETS, raw.probes(), claims)


async def test_a_probe_still_waiting_gets_its_syn_and_trace_before_it_times_out():
    t, raw = target(), RawDouble(Outcome.FILTERED, delay=RAW_TIMEOUT)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await follow(t, plain_after(1.0, t, Outcome.TIMEOUT), raw, followup.BatchClaims())
    assert r.outcome is Outcome.TIMEOUT
    assert [f.kind for f in r.followed] == [ProbeKind.SYN, ProbeKind.TRACE]
    assert all(f.outcome is Outcome.FILTERED for f in r.followed)
    # both went out while the plain connect still waited: not after its timeout
    assert [k for k, _ in raw.started] == [ProbeKind.SYN, ProbeKind.TRACE]
    assert all(at - t0 < 1.0 for _, at in raw.started)


async def test_a_fast_failure_gets_its_evidence_after_it_fails():
    t, raw = target(), RawDouble(Outcome.REFUSED)
    r = await follow(t, plain_after(0.0, t, Outcome.REFUSED), raw, followup.BatchClaims())
    assert [(f.kind, f.outcome) for f in r.followed] == [
        (ProbeKind.SYN, Outcome.REFUSED),
        (ProbeKind.TRACE, Outcome.REFUSED),
    ]


async def test_a_slow_probe_that_connects_cancels_its_raw_evidence_and_frees_the_trace():
    claims, slow = followup.BatchClaims(), target()
    raw = RawDouble(Outcome.OPEN, delay=5.0)  # would outlive the test if not cancelled
    assert followup.start_after(1.0, slow.follow) < 0.8  # type: ignore[arg-type]
    r = await asyncio.wait_for(
        follow(slow, plain_after(0.8, slow, Outcome.OPEN), raw, claims), timeout=3.0
    )
    assert r.outcome is Outcome.OPEN and r.followed == ()
    assert sorted(raw.cancelled) == [ProbeKind.SYN, ProbeKind.TRACE]
    assert claims.traces == set()  # a later failure of the group may trace
    quick = RawDouble(Outcome.FILTERED)
    later = await follow(target(), plain_after(0.0, target(), Outcome.REFUSED), quick, claims)
    assert [f.kind for f in later.followed] == [ProbeKind.SYN, ProbeKind.TRACE]


async def test_one_trace_per_group_one_latency_per_address_one_path_mtu_per_group():
    claims, raw = followup.BatchClaims(), RawDouble(Outcome.OPEN)
    ok = [target(port=p, latency_count=5, pmtu_group="dc2/r1") for p in (7000, 8080)]
    other = target(port=7000, address="198.18.33.11", latency_count=5, pmtu_group="dc2/r1")
    bad = [target(port=7001, address=a) for a in ("198.18.33.10", "198.18.33.11")]
    results = await asyncio.gather(
        *(follow(t, plain_after(0.0, t, Outcome.OPEN), raw, claims) for t in (*ok, other)),
        *(follow(t, plain_after(0.0, t, Outcome.TIMEOUT), raw, claims) for t in bad),
    )
    kinds = Counter(f.kind for r in results for f in r.followed)
    assert kinds == {
        ProbeKind.LATENCY: 2,  # one per address
        ProbeKind.PMTU: 1,  # one per group
        ProbeKind.SYN: 2,  # every failure
        ProbeKind.TRACE: 1,  # one per trace group
    }


async def test_a_probe_neither_failed_nor_connected_gets_no_evidence():
    t, raw = target(latency_count=5), RawDouble(Outcome.OPEN)
    r = await follow(t, plain_after(0.0, t, Outcome.ERROR), raw, followup.BatchClaims())
    assert r.followed == () and raw.started == []


def agent_like(results: tuple[ProbeResult, ...], topo, options) -> list[ProbeResult]:
    """What agents honouring the follow-ups send back for this matrix (the claims are the
    agent's own, one BatchClaims per source, as one batch per source)."""
    follows = follow_ups(topo, plan_mesh(topo), options)
    address = {e.name: e.address for e in topo.endpoints}
    by_key = {(r.src, r.dst, r.port): r for r in results}

    async def run() -> list[ProbeResult]:
        out: list[ProbeResult] = []
        claims: dict[str, followup.BatchClaims] = {}
        for spec, f in follows.items():
            r = by_key[(spec.src, spec.dst, spec.port)]
            t = Target(address=address[spec.dst], port=spec.port, kind=spec.kind, follow=f)
            answer = Outcome.FILTERED if r.outcome is Outcome.TIMEOUT else Outcome.OPEN
            raw = RawDouble(answer, timeout=options.timeout_s)
            c = claims.setdefault(spec.src, followup.BatchClaims())
            got = await followup.probe(
                plain_after(0.0, t, r.outcome),
                t,
                1.0,
                NO_SOCKETS,
                raw.probes(),
                c,
            )
            out.extend(
                ProbeResult(
                    src=spec.src, dst=spec.dst, port=spec.port, kind=x.kind, outcome=x.outcome
                )
                for x in got.followed
            )
        return out

    return asyncio.run(run())


def test_follow_ups_ask_what_the_second_pass_would_and_it_then_asks_nothing():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and p == 7001 else None
    )
    agents = frozenset(e.name for e in topo.endpoints)
    options = EvidenceOptions(latency_count=5)
    alone = plan_evidence(topo, results, agents, options)
    followed = agent_like(results, topo, options)
    assert Counter(e.kind for e in followed) == Counter(s.kind for s in alone)
    assert {(e.src, e.dst, e.port, e.kind) for e in followed if e.kind is ProbeKind.SYN} == {
        (s.src, s.dst, s.port, s.kind) for s in alone if s.kind is ProbeKind.SYN
    }
    assert plan_evidence(topo, results, agents, options, done=tuple(followed)) == []
    # an agent whose follow-ups did not come back: the second pass asks for its share only
    gone = "cp-dc1-r1-p0"
    rest = tuple(e for e in followed if e.src != gone)
    second = plan_evidence(topo, results, agents, options, done=rest)
    assert second and {s.src for s in second} == {gone}
    assert Counter(s.kind for s in second) == Counter(e.kind for e in followed if e.src == gone)


def test_follow_ups_survive_the_wire_and_nonsense_is_refused():
    t = target(latency_count=10, pmtu_group="dc2/r1")
    assert target_from_json(target_to_json(t), "t") == t
    syn = TargetResult(address=t.address, port=t.port, kind=ProbeKind.SYN, outcome=Outcome.FILTERED)
    r = TargetResult(
        address=t.address, port=t.port, kind=ProbeKind.TCP, outcome=Outcome.TIMEOUT, followed=(syn,)
    )
    assert result_from_json(result_to_json(r), "r") == r


@pytest.mark.parametrize(
    ("follow", "words"),
    [
        ({"timeout_s": float("nan")}, "timeout_s"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"timeout_s": 31}, "timeout_s"),
        ({"timeout_s": 1, "trace_hops": 101}, "trace_hops"),
        ({"timeout_s": 1, "latency_count": -1}, "latency_count"),
        ({"timeout_s": 1, "pmtu_group": "x" * 201}, "pmtu_group"),
        ({"timeout_s": 1, "trace_group": ["a"]}, "trace_group"),
        ([], "not an object"),
    ],
)
def test_a_hostile_follow_up_request_is_a_wire_error(follow, words):
    with pytest.raises(WireError, match=words):
        target_from_json({"address": "127.0.0.1", "port": 7000, "follow": follow}, "t")


def test_only_plain_probes_take_follow_ups():
    with pytest.raises(WireError, match="only tcp, tls and http"):
        target_from_json(
            {"address": "127.0.0.1", "port": 7000, "kind": "syn", "follow": {"timeout_s": 1}}, "t"
        )


@pytest.mark.parametrize(
    "followed",
    [
        [GOOD_RESULT | {"kind": "syn", "address": "127.0.0.3"}],  # another address
        [GOOD_RESULT | {"kind": "syn", "port": 7001}],  # another port
        [GOOD_RESULT],  # a plain kind
        [GOOD_RESULT | {"kind": "syn"}] * 2,  # the same kind twice
        [GOOD_RESULT | {"kind": k} for k in ("syn", "trace", "latency", "pmtu", "syn")],
        "syn",
    ],
)
def test_an_agent_answering_other_follow_ups_than_its_target_is_refused(followed):
    with pytest.raises(WireError, match="followed"):
        result_from_json(GOOD_RESULT | {"followed": followed}, "r")


def test_a_followed_result_cannot_nest_more_results():
    nested = GOOD_RESULT | {"kind": "syn", "followed": [GOOD_RESULT | {"kind": "trace"}]}
    r = result_from_json(GOOD_RESULT | {"followed": [nested]}, "r")
    assert r.followed[0].followed == ()  # ignored, never trusted as evidence


def test_silence_on_a_lossy_path_is_asked_again_with_more_syns():
    """Two silent SYNs prove little where the latency SYNs lost some: the second pass asks
    those ports again with enough SYNs that the measured loss cannot silence them all."""
    from netcheck.collector.evidence import combined, confirm_syns
    from netcheck.model.evidence import Latency
    from netcheck.model.probe import Evidence

    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and p == 7001 else None
    )
    agents = frozenset(e.name for e in topo.endpoints)
    options = EvidenceOptions(latency_count=10)
    followed = agent_like(results, topo, options)
    assert plan_evidence(topo, results, agents, options, done=tuple(followed)) == []

    def with_loss(e: ProbeResult, received: int) -> ProbeResult:
        lat = Latency(sent=10, received=received, p50_ms=0.2, p99_ms=0.4)
        return ProbeResult(
            src=e.src,
            dst=e.dst,
            port=e.port,
            kind=e.kind,
            outcome=e.outcome,
            evidence=Evidence(latency=lat),
        )

    lossy = tuple(
        with_loss(e, 7) if e.kind is ProbeKind.LATENCY and cross_names(topo, e) else e
        for e in followed
    )
    again = plan_evidence(topo, results, agents, options, done=lossy)
    assert {(s.src, s.dst, s.port) for s in again} == {
        (r.src, r.dst, r.port) for r in results if r.outcome is Outcome.TIMEOUT
    }
    assert {(s.kind, s.count) for s in again} == {(ProbeKind.SYN, confirm_syns(0.3))}
    assert confirm_syns(0.3) == 8 and confirm_syns(0.01) == 6 and confirm_syns(1.0) == 16
    # the confirmation replaces the first SYN of its port, nothing else
    answered = tuple(
        ProbeResult(src=s.src, dst=s.dst, port=s.port, kind=s.kind, outcome=Outcome.OPEN)
        for s in again
    )
    merged = combined(lossy, answered)
    syns = [e for e in merged if e.kind is ProbeKind.SYN]
    assert len(syns) == len(again) and all(e.outcome is Outcome.OPEN for e in syns)
    assert len(merged) == len(lossy)


def cross_names(topo, e: ProbeResult) -> bool:
    eps = {x.name: x for x in topo.endpoints}
    return cross(eps[e.src], eps[e.dst])
