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
    assert "netcheck/netcheck-agent-x, any pod of another namespace" in f.summary
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
