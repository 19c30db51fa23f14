"""The static isolation audit of 7000/7001 (diagnosis/isolation.py) on discoveries made from
pod and policy objects shaped as the API server returns them (the same shapes run against the
lab's enforcer in test_netpol_lab.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from netcheck.diagnosis.isolation import audit, isolation_findings
from netcheck.discovery.kube import AgentPod, parse_database_pod
from netcheck.discovery.netpol import parse_policies
from tests.netpol_cases import DB_LABELS, NAMED_PORTS, db_only, policy
from tests.test_kube import discovery


def db_pod(name: str, ip: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "demo", "labels": DB_LABELS},
        "spec": {
            "nodeName": "n1",
            "containers": [
                {
                    "name": "cassandra",
                    "ports": [
                        {"name": n, "containerPort": p, "protocol": "TCP"}
                        for n, p in NAMED_PORTS.items()
                    ],
                }
            ],
        },
        "status": {"podIP": ip},
    }


def cluster(ctx: str, ips: list[str], policies: list[dict[str, Any]], **kw: Any) -> Any:
    """A context's discovery: its database pods at ips, an agent beside the first of them."""
    name = ctx.lower().replace("_", "-")
    pods = tuple(parse_database_pod(db_pod(f"{name}-{i}", ip)) for i, ip in enumerate(ips))
    agent = AgentPod(
        name="netcheck-agent-x",
        node="n1",
        pod_ip=ips[0].rsplit(".", 1)[0] + ".99",
        ready=True,
        phase="Running",
        reason="",
    )
    return discovery(
        ctx,
        (),
        database_pods=pods,
        agents=(agent,),
        policies=parse_policies(policies),
        namespace_labels=(("demo", ()), ("netcheck", ())),
        **kw,
    )


def codes(findings: tuple[Any, ...]) -> list[tuple[str, str, str]]:
    return [(f.code, f.severity.value, f.dst_cluster) for f in findings]


def test_without_a_policy_the_agents_and_any_pod_reach_the_internode_ports():
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [])
    (f,) = isolation_findings([east])
    assert (f.code, f.severity.value, f.ports) == (
        "INTERNODE_ISOLATION_MISSING",
        "warning",
        (7000, 7001),
    )
    assert (
        "netcheck/netcheck-agent-x, any other pod of namespace demo, any pod of another "
        "namespace" in f.summary
    )
    assert "NetworkPolicy" in f.hint and "ipBlock" in f.hint
    assert {r.admitted for r in audit([east])} == {("everyone",)}


def test_the_guides_isolation_with_the_other_clusters_cidr_holds():
    east_policy = db_only([{"ipBlock": {"cidr": "198.18.32.0/19"}}])
    west_policy = db_only([{"ipBlock": {"cidr": "198.18.0.0/19"}}])
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [east_policy])
    west = cluster("DP_WEST", ["198.18.33.10"], [west_policy])
    found = isolation_findings([east, west])
    assert codes(found) == [
        ("INTERNODE_ISOLATION_HOLDS", "info", "CP_EAST"),
        ("INTERNODE_ISOLATION_HOLDS", "info", "DP_WEST"),
    ]
    assert "pods cassandra.datastax.com/cluster=demo in namespace demo" in found[0].summary
    assert "addresses 198.18.32.0/19" in found[0].summary


def test_isolation_without_the_other_clusters_cidr_blocks_the_other_cluster():
    """The common mistake: the policy admits database pods by label, which only matches pods of
    its own cluster; the other cluster's nodes are refused."""
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [db_only()])
    west = cluster("DP_WEST", ["198.18.33.10"], [])
    found = isolation_findings([east, west])
    blocks = [f for f in found if f.code == "NETWORK_POLICY_BLOCKS_INTERNODE"]
    assert [(f.severity.value, f.dst_cluster) for f in blocks] == [("error", "CP_EAST")]
    assert "DP_WEST/demo/dp-west-0" in blocks[0].summary and "7000/7001" in blocks[0].summary
    assert blocks[0].affected_pairs == 4  # the west node, to both east pods, on both ports
    # the west side has no policy: exposed, but nothing blocked
    assert ("INTERNODE_ISOLATION_MISSING", "warning", "DP_WEST") in codes(found)


def test_a_policy_that_admits_its_whole_namespace_lets_its_other_pods_in():
    """The common slip: `from: podSelector: {}` (every pod of the policy's namespace) where the
    cluster's label was meant: Reaper or Stargate beside the database reach 7000/7001."""
    whole = policy(
        "internode-namespace",
        {
            "podSelector": {"matchLabels": {"cassandra.datastax.com/cluster": "demo"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 7000}, {"port": 7001}]}],
        },
    )
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [whole])
    (f,) = isolation_findings([east])
    assert f.code == "INTERNODE_ISOLATION_MISSING"
    assert "let any other pod of namespace demo reach 7000/7001" in f.summary, f.summary


def test_a_default_deny_blocks_the_database_pods_themselves():
    deny = policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [deny])
    (f,) = isolation_findings([east])
    assert (f.code, f.severity.value) == ("NETWORK_POLICY_BLOCKS_INTERNODE", "error")
    assert audit([east])[0].admitted == ()


def test_policies_it_could_not_read_are_said_and_not_audited():
    east = cluster(
        "CP_EAST",
        ["198.18.1.10"],
        [],
        policy_unread=(("demo", "networkpolicies in demo: RBAC forbids 'list'"),),
    )
    (f,) = isolation_findings([east])
    assert (f.code, f.severity.value) == ("NETWORK_POLICY_UNREAD", "warning")
    assert "isolation audit of namespace demo is not done" in f.summary
    assert audit([east]) == ()


# ---------------------------------------------------------------- dedicated node pools


def test_database_nodes_that_run_other_workloads_or_keep_nobody_off_are_named():
    from netcheck.diagnosis.nodepools import node_pool_findings
    from netcheck.discovery.kube import NodeInfo, is_other_workload

    pods = {
        "web": {"metadata": {"name": "web-0", "namespace": "shop"}},
        "cni": {
            "metadata": {
                "name": "calico-node-x",
                "namespace": "calico-system",
                "ownerReferences": [{"kind": "DaemonSet"}],
            }
        },
        "dns": {"metadata": {"name": "coredns-1", "namespace": "kube-system"}},
        "db": db_pod("demo-0", "198.18.1.10"),
        "job": {
            "metadata": {"name": "backup-1", "namespace": "demo"},
            "status": {"phase": "Succeeded"},
        },
    }
    assert [k for k, p in pods.items() if is_other_workload(p)] == ["web"]

    def node(name: str, *taints: str) -> NodeInfo:
        return NodeInfo(
            name=name, internal_ip="", zone="z", region="r", pod_cidrs=(), taints=taints
        )

    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [])
    east = replace(
        east,
        nodes=(node("n1"), node("n2", "dedicated=cassandra:NoSchedule")),
        database_pods=tuple(
            replace(p, node=n) for p, n in zip(east.database_pods, ("n1", "n2"), strict=True)
        ),
        node_workloads=(("n1", ("shop/web-0",)), ("n2", ())),
    )
    found = {f.code: f for f in node_pool_findings([east])}
    shared = found["DATABASE_NODES_SHARED"]
    assert shared.severity.value == "warning" and "1 of 2 database nodes" in shared.summary
    assert "n1: shop/web-0" in shared.summary and "kubectl taint nodes" in shared.hint
    untainted = found["DATABASE_NODES_UNTAINTED"]
    assert untainted.severity.value == "info" and untainted.dst_scope == "n1"


# ---------------------------------------------------------------- negative probes


def _outsider_probes(discoveries: list[Any], outcome_of: Any) -> tuple[Any, ...]:
    """What the agents of each context saw on 7000 and 7001 of every database pod:
    outcome_of(outsider context, destination context, port) -> Outcome."""
    from netcheck.model.report import OutsiderProbe

    return tuple(
        OutsiderProbe(
            context=src.context,
            outsider=f"netcheck/{a.name}",
            dst=p.name,
            dst_context=dst.context,
            port=port,
            outcome=outcome_of(src.context, dst.context, port),
            detail="",
        )
        for src in discoveries
        for a in src.agents
        for dst in discoveries
        for p in dst.database_pods
        for port in (7000, 7001)
    )


def _mesh(discoveries: list[Any], port_7001: Any) -> tuple[Any, ...]:
    """The database pods' own mesh: 7000 open everywhere, 7001 as given (refused: nothing
    listens there, as on Cassandra 4.0+ without the legacy SSL port)."""
    from netcheck.model.outcome import Outcome
    from netcheck.model.probe import ProbeKind, ProbeResult

    pods = [p.name for d in discoveries for p in d.database_pods]
    return tuple(
        ProbeResult(
            src=s, dst=t, port=port, kind=ProbeKind.TCP,
            outcome=Outcome.OPEN if port == 7000 else port_7001,
        )
        for s in pods for t in pods if s != t for port in (7000, 7001)
    )  # fmt: skip


def _exposure(discoveries: list[Any], outcome_of: Any, port_7001: Any) -> tuple[Any, ...]:
    from netcheck.diagnosis.exposure import exposure_findings, judged

    rows = audit(discoveries)
    probes = judged(_outsider_probes(discoveries, outcome_of), _mesh(discoveries, port_7001))
    return exposure_findings(discoveries, probes, rows, isolation_findings(discoveries, rows))


def test_outsiders_that_connect_are_an_error_with_the_policy_to_apply():
    """No policy: the agents of each cluster reach 7000 (open) and 7001 (refused by the pod
    itself: nothing listens there, the database pods get refused too). One error per cluster,
    the audit's warning folded into it; the other cluster's agents are a warning of their own
    whose fix is the network, not a NetworkPolicy."""
    from netcheck.model.outcome import Outcome

    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [])
    west = cluster("DP_WEST", ["198.18.33.10"], [])
    found = _exposure(
        [east, west],
        lambda s, d, port: Outcome.OPEN if port == 7000 else Outcome.REFUSED,
        Outcome.REFUSED,
    )
    assert codes(found) == [
        ("INTERNODE_PORTS_EXPOSED", "error", "CP_EAST"),
        ("INTERNODE_PORTS_EXPOSED_ACROSS_CLUSTERS", "warning", "CP_EAST"),
        ("INTERNODE_PORTS_EXPOSED", "error", "DP_WEST"),
        ("INTERNODE_PORTS_EXPOSED_ACROSS_CLUSTERS", "warning", "DP_WEST"),
    ]
    exposed = found[0]
    assert exposed.ports == (7000, 7001) and exposed.affected_pairs == 4
    assert "netcheck/netcheck-agent-x (not database pods, namespace netcheck)" in exposed.summary
    assert "cp-east-0, cp-east-1" in exposed.summary
    assert "so may any other pod of namespace demo, any pod of another namespace" in exposed.summary
    # the hint is a policy kubectl takes, admitting the other cluster's database pods
    policy_json = exposed.hint.split("<<< '", 1)[1].rstrip("'")
    import json

    spec = json.loads(policy_json)["spec"]
    assert spec["podSelector"] == {"matchLabels": {"cassandra.datastax.com/cluster": "demo"}}
    assert {"ipBlock": {"cidr": "198.18.33.10/32"}} in spec["ingress"][0]["from"]
    # every other port the pods declare stays open to all, as it is without the policy
    assert spec["ingress"][1] == {
        "ports": [{"port": p} for p in sorted(set(NAMED_PORTS.values()) - {7000, 7001})]
    }
    assert "firewall" in found[1].hint and "DP_WEST" in found[1].summary


def test_a_refusal_the_database_pods_do_not_get_is_isolation():
    """An enforcer that rejects (RST) instead of dropping: the agents get refused on 7000
    where the database pods connect. Isolation holds, and the probes say so."""
    from netcheck.model.outcome import Outcome

    east_policy = db_only([{"ipBlock": {"cidr": "198.18.32.0/19"}}])
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [east_policy])
    found = _exposure(
        [east],
        lambda s, d, port: Outcome.REFUSED if port == 7000 else Outcome.TIMEOUT,
        Outcome.OPEN,
    )
    assert codes(found) == [("INTERNODE_ISOLATION_HOLDS", "info", "CP_EAST")]
    assert "the negative probes agree: 4 probes from netcheck/netcheck-agent-x" in found[0].summary
    assert "not made" not in found[0].summary
    # probes the agent could not make are counted apart, never as blocked
    found = _exposure(
        [east],
        lambda s, d, port: Outcome.REFUSED if port == 7000 else Outcome.NOT_MEASURED,
        Outcome.OPEN,
    )
    assert codes(found) == [("INTERNODE_ISOLATION_HOLDS", "info", "CP_EAST")]
    assert "agree: 2 probes from netcheck/netcheck-agent-x were all blocked (2 more not made)" in (
        found[0].summary
    )


def test_probes_that_get_through_a_refusing_policy_say_it_is_not_enforced():
    from netcheck.model.outcome import Outcome

    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [db_only()])
    found = _exposure([east], lambda s, d, port: Outcome.OPEN, Outcome.OPEN)
    assert codes(found) == [
        ("INTERNODE_PORTS_EXPOSED", "error", "CP_EAST"),
        ("NETWORK_POLICY_AUDIT_DISAGREES", "warning", "CP_EAST"),
    ]
    assert "NetworkPolicy is not enforced there" in found[1].summary
    assert "CNI" in found[1].hint


def test_blocked_probes_under_an_admitting_policy_are_isolation_beyond_policy():
    from netcheck.model.outcome import Outcome

    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [])
    found = _exposure([east], lambda s, d, port: Outcome.TIMEOUT, Outcome.OPEN)
    assert codes(found) == [
        ("INTERNODE_ISOLATION_MISSING", "warning", "CP_EAST"),
        ("NETWORK_POLICY_AUDIT_DISAGREES", "info", "CP_EAST"),
    ]


def test_unmeasured_negative_probes_prove_nothing():
    from netcheck.model.outcome import Outcome

    east_policy = db_only([{"ipBlock": {"cidr": "198.18.32.0/19"}}])
    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [east_policy])
    found = _exposure([east], lambda s, d, port: Outcome.NOT_MEASURED, Outcome.OPEN)
    (holds,) = found
    assert holds.code == "INTERNODE_ISOLATION_HOLDS" and "negative probes" not in holds.summary


# ---------------------------------------------------------------- probes from the agents


def test_an_agent_refused_by_design_measures_nothing_and_the_pods_are_named():
    """A database pod that could not probe for itself is probed from its agent; where the
    policies refuse that agent an internode port, its timeout there is not_measured (not a
    failure of the database's path), and a probe that got through stays what it was."""
    from netcheck.diagnosis.isolation import prober_findings, refused_to_agents
    from netcheck.discovery.kube_topology import run_topology
    from netcheck.model.outcome import Outcome
    from netcheck.model.probe import ProbeKind, ProbeResult
    from netcheck.model.report import ProberFallback

    east = cluster("CP_EAST", ["198.18.1.10", "198.18.2.10"], [db_only()])
    east = replace(
        east,
        database_pods=tuple(replace(p, node="n1") for p in east.database_pods),
    )
    topology = run_topology([east]).topology
    a, b = (ep.name for ep in topology.endpoints)

    def probe(port: int, outcome: Outcome) -> ProbeResult:
        return ProbeResult(src=a, dst=b, port=port, kind=ProbeKind.TCP, outcome=outcome)

    results = (
        probe(7000, Outcome.TIMEOUT),
        probe(7001, Outcome.OPEN),
        probe(8080, Outcome.TIMEOUT),
    )
    out = refused_to_agents([east], topology, results)
    assert [r.outcome for r in out] == [Outcome.NOT_MEASURED, Outcome.OPEN, Outcome.TIMEOUT]
    assert "refuse on 7000 by design" in out[0].detail
    # probed from the pod itself (a prober): nothing is excused
    with_prober = replace(
        topology,
        endpoints=tuple(replace(ep, prober="kube-exec://x/demo/p/c") for ep in topology.endpoints),
    )
    assert refused_to_agents([east], with_prober, results) == results

    (f,) = prober_findings(
        (
            ProberFallback(endpoint=a, reason="context CP_EAST: RBAC forbids 'patch'"),
            ProberFallback(endpoint=b, reason="context CP_EAST: RBAC forbids 'patch'"),
        )
    )
    assert (f.code, f.severity.value, f.src_cluster) == (
        "DATABASE_PORTS_PROBED_FROM_AGENTS",
        "warning",
        "CP_EAST",
    )
    assert f"{a}, {b}" in f.summary and "pods/ephemeralcontainers" in f.hint
    # probed from the pods' own shell: nothing is excused either, and the finding is info
    with_shell = replace(
        topology,
        endpoints=tuple(
            replace(ep, prober=f"kube-sh://CP_EAST/demo/{ep.name}/cassandra")
            for ep in topology.endpoints
        ),
    )
    assert refused_to_agents([east], with_shell, results) == results
    shell, agent = prober_findings(
        (
            ProberFallback(endpoint=a, reason="context CP_EAST: RBAC forbids 'patch'", shell=True),
            ProberFallback(endpoint=b, reason="context CP_EAST: RBAC forbids 'get'"),
        )
    )
    assert (shell.code, shell.severity.value, shell.src_scope) == (
        "DATABASE_PORTS_PROBED_FROM_SHELL",
        "info",
        a,
    )
    assert "bash" in shell.summary and "not_measured" in shell.summary
    assert (agent.code, agent.src_scope) == ("DATABASE_PORTS_PROBED_FROM_AGENTS", b)
