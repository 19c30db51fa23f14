"""The columnar forms of a run (model/probe_table.py, collector/plan.py, diagnosis/grid.py)
against the plain objects they replace: the same probes, the same answers, for any input."""

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcheck.collector.plan import plan_mesh
from netcheck.diagnosis.grid import Grid
from netcheck.model.evidence import Reply, ReplyKind
from netcheck.model.outcome import Outcome
from netcheck.model.probe import NO_EVIDENCE, Evidence, ProbeKind, ProbeResult, ProbeSpec
from netcheck.model.probe_table import ProbeTable, ProbeTableFill
from netcheck.model.topology import Cluster, Endpoint, PortSpec, Role, Topology
from netcheck.reports import json_report

NAMES = ("a", "b", "c", "d", 'é\u2028"x')  # a name JSON must escape, too

texts = st.text(max_size=12)
results = st.builds(
    ProbeResult,
    src=st.sampled_from(NAMES),
    dst=st.sampled_from(NAMES),
    port=st.sampled_from((7000, 7001, 8080, 30600)),
    kind=st.sampled_from(list(ProbeKind)),
    outcome=st.sampled_from(list(Outcome)),
    latency_ms=st.one_of(st.none(), st.floats(0, 1e6, allow_nan=False)),
    detail=texts,
    evidence=st.sampled_from(
        (NO_EVIDENCE, Evidence(reply=Reply(kind=ReplyKind.RST, source="198.18.0.1", ttl=63)))
    ),
    local_address=st.sampled_from(("", "198.18.0.1")),
    observed_source=st.sampled_from(("", "198.18.0.1", "198.18.9.9")),
)


@given(st.lists(results, max_size=40))
def test_a_table_reads_back_every_probe_as_it_was_given(rs):
    table = ProbeTable.of(rs)
    assert len(table) == len(rs)
    assert list(table) == rs
    assert [table[i] for i in range(-len(rs), 0)] == rs
    assert table[1:3] == rs[1:3]
    assert list(table.not_open()) == [r for r in rs if r.outcome is not Outcome.OPEN]
    assert [table.row(i) for i in table.failed_rows()] == [r for r in rs if r.outcome.failed]
    assert table.counts() == dict(Counter(r.outcome for r in rs))
    assert [table.row(i) for i in table.observing] == [r for r in rs if r.observed_source]
    group = [len(name) % 2 for name in table.names]
    number = {name: len(name) % 2 for name in NAMES}
    assert table.tally(group) == Counter(
        (number[r.src], number[r.dst], r.port, list(Outcome).index(r.outcome)) for r in rs
    )
    assert ProbeTable.of(table) is table


@given(st.lists(results, max_size=40))
def test_compact_json_from_the_columns_is_what_json_dumps_writes(rs):
    table = ProbeTable.of(rs)
    written = list(json_report._compact(table, iter(range(len(table)))))
    assert written == [json.dumps(json_report.probe_doc(r), separators=(",", ":")) for r in rs]


def _topology(stand_in: bool) -> Topology:
    eps = []
    for c in ("CP", "DP"):
        for i in range(3):
            eps.append(
                Endpoint(
                    name=f"{c}-{i}",
                    cluster=c,
                    region=c,
                    address=f"198.18.{len(eps)}.1",
                    agent=f"http://198.18.{len(eps)}.1:9925",
                    ports=(PortSpec.default(7000), PortSpec(port=8080, stand_in=False)),
                    stand_in=stand_in,
                )
            )
        eps.append(
            Endpoint(
                name=f"api-{c}",
                cluster=c,
                region=c,
                address=f"198.18.{len(eps)}.1",
                role=Role.API_SERVER,
                ports=(PortSpec.default(6443),),
            )
        )
    return Topology(
        clusters=(Cluster(name="CP", region="CP"), Cluster(name="DP", region="DP")),
        endpoints=tuple(eps),
    )


def _one_by_one(topology: Topology, control_plane: str | None) -> list[ProbeSpec]:
    """The plan as it was made before it was kept in columns: one object per probe."""
    specs = []
    for src in topology.agents:
        for dst in topology.endpoints:
            if dst.name == src.name:
                continue
            if control_plane and dst.role is Role.API_SERVER and src.cluster != control_plane:
                continue
            for port in dst.ports:
                echo = dst.stand_in if port.stand_in is None else port.stand_in
                specs.append(
                    ProbeSpec(src=src.name, dst=dst.name, port=port.port, kind=port.kind, echo=echo)
                )
    return specs


def test_the_plan_in_columns_plans_what_one_object_per_probe_planned():
    for stand_in in (True, False):
        topology = _topology(stand_in)
        for control_plane in (None, "CP", "DP"):
            plan = plan_mesh(topology, control_plane)
            assert list(plan) == _one_by_one(topology, control_plane)
            assert plan[-1] == list(plan)[-1] and len(plan) == len(list(plan))


@given(st.lists(results, max_size=60))
def test_the_grid_answers_as_the_dictionary_it_replaces(rs):
    topology = _topology(True)
    # the results name NAMES; the grid's endpoints are the topology's plus those names
    eps = list(topology.endpoints) + [
        Endpoint(name=n, cluster="X", region="X", address="198.18.99.1") for n in NAMES
    ]
    grid = Grid.of(eps, rs)
    wanted = {(r.src, r.dst, r.port): r.outcome for r in rs}
    assert dict(grid.items()) == wanted
    assert len(grid) == len(wanted)
    assert sorted(grid.not_open()) == sorted(
        (t, o) for t, o in wanted.items() if o is not Outcome.OPEN
    )
    for name in NAMES:
        out = [o for (s, _, _), o in wanted.items() if s == name]
        into = [o for (_, d, _), o in wanted.items() if d == name]
        for counts, seen in ((grid.outgoing(name), out), (grid.incoming(name), into)):
            assert counts.present == len(seen)
            assert counts.measured == sum(o is not Outcome.NOT_MEASURED for o in seen)
            assert counts.failed == sum(o.failed for o in seen)
        assert grid.sources_into(name) == len({s for (s, d, _) in wanted if d == name})
        assert grid.outcomes(name, into=True) == set(into)
    gone = grid.without_sources(["a"])
    assert dict(gone.items()) == {t: o for t, o in wanted.items() if t[0] != "a"}


@given(st.lists(results, max_size=30), st.randoms(use_true_random=False))
def test_a_table_filled_in_any_order_is_the_table_of_the_list(rs, rnd):
    """The collector fills each row as its agent answers: the order of answers is not the
    plan's, the table is."""
    fill = ProbeTableFill(len(rs))
    order = list(range(len(rs)))
    rnd.shuffle(order)
    for i in order[: len(rs) // 2]:
        other = rs[(i + 1) % len(rs)]  # a first answer that a later one replaces
        fill.put_fields(i, other.src, other.dst, other.port, other.kind, other.outcome, 1.0,
                        detail="first", observed_source="198.18.7.7")  # fmt: skip
    assert sorted(fill.empty()) == sorted(order[len(rs) // 2 :])
    for i in order:
        r = rs[i]
        fill.put_fields(
            i, r.src, r.dst, r.port, r.kind, r.outcome, r.latency_ms, detail=r.detail,
            evidence=r.evidence, local_address=r.local_address,
            observed_source=r.observed_source,
        )  # fmt: skip
    assert not list(fill.empty())
    table = fill.table()
    assert list(table) == rs
    assert [table.row(i) for i in table.observing] == [r for r in rs if r.observed_source]


def test_a_table_with_a_row_never_filled_is_refused():
    fill = ProbeTableFill(2)
    fill.put_fields(1, "a", "b", 7000, ProbeKind.TCP, Outcome.OPEN, 0.3)
    assert list(fill.empty()) == [0]
    with pytest.raises(ValueError, match="row 0"):
        fill.table()


@given(st.lists(results, min_size=1, max_size=30), st.data())
def test_a_table_with_rows_replaced_is_the_list_with_them_replaced(rs, data):
    table = ProbeTable.of(rs)
    changed = data.draw(
        st.dictionaries(st.integers(0, len(rs) - 1), results, max_size=len(rs)), "changed"
    )
    wanted = [changed.get(i, r) for i, r in enumerate(rs)]
    assert list(table.with_rows(changed)) == wanted
    assert list(table) == rs  # the table itself is left as it was
