from netcheck.model.findings import Finding, Severity
from netcheck.model.outcome import Outcome
from netcheck.model.report import Verdict, verdict_of
from tests.helpers import results_for, two_region_topology


def test_only_open_passes_and_not_measured_is_not_a_failure():
    assert [o for o in Outcome if o.passed] == [Outcome.OPEN]
    assert not Outcome.NOT_MEASURED.passed
    assert not Outcome.NOT_MEASURED.failed
    assert all(o.failed for o in Outcome if o not in (Outcome.OPEN, Outcome.NOT_MEASURED))


def test_verdicts():
    topo = two_region_topology()
    clean = results_for(topo)
    assert verdict_of(clean, ()) is Verdict.PASS
    one_unknown = results_for(topo, lambda s, d, p: Outcome.NOT_MEASURED if p == 8080 else None)
    assert verdict_of(one_unknown, ()) is Verdict.INCOMPLETE
    mixed = results_for(
        topo,
        lambda s, d, p: Outcome.NOT_MEASURED if p == 8080 else None,
        lambda s, d, p: Outcome.TIMEOUT if p == 7001 else None,
    )
    assert verdict_of(mixed, ()) is Verdict.FAIL
    assert verdict_of((), ()) is Verdict.INCOMPLETE  # nothing measured is never a pass
    error = Finding(
        severity=Severity.ERROR,
        code="X",
        summary="s",
        src_cluster="a",
        dst_cluster="b",
        ports=(),
        affected_pairs=0,
        hint="h",
    )
    assert verdict_of(clean, (error,)) is Verdict.FAIL
    assert [v.exit_code for v in Verdict] == [0, 1, 3]


def test_a_closed_port_is_closed_whether_its_refusal_came_back_to_the_connect_or_the_raw_syn():
    """7001 closed by design (Cassandra 4.0+): the diagnosis leaves out a timeout there that
    the destination's own RST contradicts (a fault that went away mid-run); the verdict takes
    it the same way, and a RST from anyone else, or plain silence, stays a failure."""
    import dataclasses

    from netcheck.model.evidence import Reply, ReplyKind
    from netcheck.model.probe import Evidence

    topo = two_region_topology()
    address = {e.name: e.address for e in topo.endpoints}
    refused = results_for(topo, lambda s, d, p: Outcome.REFUSED if p == 7001 else None)
    closed = tuple(sorted({(r.dst, 7001) for r in refused if r.port == 7001}))
    assert verdict_of(refused, (), (), closed, topo) is Verdict.PASS
    assert verdict_of(refused, ()) is Verdict.FAIL  # not known to be closed by design

    def timed_out(source: str) -> tuple:
        first = next(r for r in refused if r.port == 7001)
        late = dataclasses.replace(
            first,
            outcome=Outcome.TIMEOUT,
            evidence=Evidence(reply=Reply(kind=ReplyKind.RST, source=source or "")),
        )
        return tuple(late if r is first else r for r in refused)

    first = next(r for r in refused if r.port == 7001)
    assert verdict_of(timed_out(address[first.dst]), (), (), closed, topo) is Verdict.PASS
    assert verdict_of(timed_out("198.18.99.1"), (), (), closed, topo) is Verdict.FAIL
    assert verdict_of(timed_out(address[first.dst]), (), (), closed) is Verdict.FAIL
    silent = dataclasses.replace(first, outcome=Outcome.TIMEOUT)
    assert (
        verdict_of(tuple(silent if r is first else r for r in refused), (), (), closed, topo)
        is Verdict.FAIL
    )


def test_endpoint_scopes():
    ep = two_region_topology().endpoints[0]
    assert ep.scope("all") == ()
    assert ep.scope("cluster") == ("CP_EAST",)
    assert ep.scope("rack") == ("CP_EAST", "dc1", "r1")
    assert ep.scope("pod") == ("CP_EAST", "dc1", "r1", "cp-dc1-r1-p0")
