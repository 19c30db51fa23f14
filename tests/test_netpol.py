"""NetworkPolicy semantics: the evaluator on the table of policy shapes (tests/netpol_cases.py),
what the audit says a port admits, and policies it cannot read."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcheck.discovery.netpol import (
    Cluster,
    Pod,
    PolicyError,
    admitted_peers,
    evaluate,
    parse_policies,
    parse_policy,
)
from tests.netpol_cases import (
    CASES,
    EXTERNAL,
    NAMESPACE_LABELS,
    PLACES,
    POD,
    Case,
    db_only,
    policy,
    resolve,
)


def pod(key: str) -> Pod:
    p = POD[key]
    return Pod(
        namespace=p.namespace,
        name=p.name,
        labels=p.labels,
        address=p.address,
        named_ports={(n, "TCP"): port for n, port in p.ports.items()},
    )


def cluster(case: Case) -> Cluster:
    policies = resolve(case.policies, PLACES)
    return Cluster(policies=parse_policies(policies), namespace_labels=NAMESPACE_LABELS)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_policy_shape_admits_what_kubernetes_says(case):
    c = cluster(case)
    wrong = []
    for src, dst, port, admitted in case.expect:
        source = pod(src) if src in POD else None
        address = POD[src].address if src in POD else EXTERNAL[src]
        v = evaluate(c, pod(dst), port, src=source, src_address=address)
        if v.admitted != admitted:
            wrong.append((src, dst, port, v.why))
    assert not wrong


def test_the_table_covers_the_shapes_the_issue_names():
    """At least 12 shapes, each with a connection admitted or refused by it."""
    assert len(CASES) >= 12
    text = repr([c.policies for c in CASES])
    for needle in (
        "matchExpressions",
        "namespaceSelector",
        "ipBlock",
        "except",
        "endPort",
        "'port': 'internode'",
        "'Egress'",
        "'UDP'",
    ):
        assert needle in text, needle


def test_a_refusal_names_the_isolating_policy_and_the_port():
    c = Cluster(policies=parse_policies([db_only()]), namespace_labels=NAMESPACE_LABELS)
    v = evaluate(c, pod("db0"), 7001, src=pod("agent"), src_address=POD["agent"].address)
    assert not v.admitted
    assert v.why == (
        "demo/demo-dc1-r1-sts-0 is isolated for ingress by demo/internode-db-only and no rule "
        "admits tcp/7001"
    )
    ok = evaluate(c, pod("db0"), 7001, src=pod("db1"), src_address=POD["db1"].address)
    assert ok.admitted and ok.ingress.policies == ("demo/internode-db-only",)


def test_who_may_reach_a_port_as_the_policies_say_it():
    open_ = Cluster(policies=(), namespace_labels=NAMESPACE_LABELS)
    assert admitted_peers(open_, pod("db0"), 7000) == ("everyone",)
    west = db_only([{"ipBlock": {"cidr": "198.18.32.0/19", "except": ["198.18.33.0/24"]}}])
    c = Cluster(policies=parse_policies([west]), namespace_labels=NAMESPACE_LABELS)
    assert admitted_peers(c, pod("db0"), 7000) == (
        "pods cassandra.datastax.com/cluster=demo in namespace demo",
        "addresses 198.18.32.0/19 except 198.18.33.0/24",
    )
    assert admitted_peers(c, pod("db0"), 8080) == ("everyone",)
    assert admitted_peers(c, pod("db0"), 7199) == ()
    deny = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    c = Cluster(policies=parse_policies([deny]), namespace_labels=NAMESPACE_LABELS)
    assert admitted_peers(c, pod("db0"), 7000) == ()


@pytest.mark.parametrize(
    ("path", "value", "said"),
    [
        (("spec", "policyTypes"), ["Ingres"], "spec.policyTypes: ['Ingres'] is not Ingress/Egress"),
        (
            ("spec", "ingress", 0, "from", 1, "ipBlock", "cidr"),
            "198.18.32.0/40",
            "spec.ingress[0].from[1].ipBlock: not a CIDR",
        ),
        (
            ("spec", "podSelector", "matchExpressions"),
            [{"key": "a", "operator": "Gt"}],
            "spec.podSelector.matchExpressions[0]: operator 'Gt' is not known",
        ),
        (("spec", "ingress", 0, "ports", 0, "endPort"), 6999, "endPort: 6999 needs a numeric"),
        (("spec", "ingress", 0, "from", 0), {}, "neither ipBlock, podSelector nor"),
    ],
)
def test_a_policy_it_cannot_read_is_named_with_its_field(path, value, said):
    # through JSON: the case's selectors are shared objects, a deep copy would keep them shared
    obj = json.loads(json.dumps(db_only([{"ipBlock": {"cidr": "198.18.32.0/19"}}])))
    where = obj
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    with pytest.raises(PolicyError) as exc:
        parse_policy(obj)
    assert str(exc.value).startswith("networkpolicy demo/internode-db-only ")
    assert said in str(exc.value) and "\n" not in str(exc.value)


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=30,
)
keys = st.sampled_from(
    [
        "podSelector",
        "namespaceSelector",
        "ipBlock",
        "cidr",
        "except",
        "ports",
        "port",
        "endPort",
        "protocol",
        "from",
        "to",
        "ingress",
        "egress",
        "policyTypes",
        "matchLabels",
        "matchExpressions",
        "key",
        "operator",
        "values",
    ]
)


@given(
    st.recursive(
        json_like,
        lambda inner: st.dictionaries(keys, inner, max_size=5) | st.lists(inner, max_size=3),
        max_leaves=40,
    )
)
def test_any_spec_gives_a_policy_or_a_one_line_error(spec):
    obj = {"metadata": {"name": "p", "namespace": "demo"}, "spec": spec}
    try:
        p = parse_policy(obj)
    except PolicyError as exc:
        assert str(exc).startswith("networkpolicy demo/p") and "\n" not in str(exc)
        return
    c = Cluster(policies=(p,), namespace_labels=NAMESPACE_LABELS)
    v = evaluate(c, pod("db0"), 7000, src=pod("agent"), src_address=POD["agent"].address)
    assert isinstance(v.admitted, bool) and v.why
    admitted_peers(c, pod("db0"), 7000)
