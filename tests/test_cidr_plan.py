"""`netcheck cidr plan`: ranges for a new cluster, sized as Kubernetes hands them out, that
never overlap anything known (property tests), and its bad input as one line."""

from __future__ import annotations

import dataclasses
import ipaddress
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcheck.diagnosis.cidr_plan import PRIVATE_POOLS, PlanError, plan
from tests.lab_support import netcheck

Net = ipaddress.IPv4Network


def test_sized_as_kube_controller_manager_hands_out_node_blocks():
    p = plan([Net("10.0.0.0/16"), Net("10.96.0.0/12"), Net("10.244.0.0/16")], 100, 110)
    # 110 pods need 220 addresses: a /24 per node; 100 nodes round up to 128 blocks: a /17
    assert (p.node_mask, p.pods.prefixlen, p.services.prefixlen) == (24, 17, 20)
    assert p.pods == Net("10.1.0.0/17") and p.services == Net("10.1.128.0/20")
    assert not p.pods.overlaps(p.services)


def _taken(pool: Net) -> st.SearchStrategy[list[Net]]:
    base = int(pool.network_address)
    span = pool.num_addresses

    def net(start: int, prefix: int) -> Net:
        return Net((base + start % span, prefix), strict=False)

    return st.lists(
        st.builds(net, st.integers(0, span - 1), st.integers(pool.prefixlen, 32)), max_size=40
    )


@settings(max_examples=300)
@given(
    taken=_taken(Net("10.0.0.0/8")),
    nodes=st.integers(1, 5000),
    pods=st.integers(1, 250),
    services=st.integers(1, 70_000),
)
def test_a_plan_never_overlaps_anything_known(taken, nodes, pods, services):
    try:
        p = plan(taken, nodes, pods, services)
    except PlanError as exc:
        assert "\n" not in str(exc)
        return
    for net in (p.pods, p.services):
        assert any(net.subnet_of(pool) for pool in PRIVATE_POOLS)
        assert not any(net.overlaps(t) for t in taken), (net, taken)
    assert not p.pods.overlaps(p.services)
    assert 2 ** (32 - p.node_mask) >= 2 * pods
    assert 2 ** (p.node_mask - p.pods.prefixlen) >= nodes
    assert p.services.num_addresses >= services + 2


@settings(max_examples=300)
@given(taken=_taken(Net("10.20.0.0/22")), nodes=st.integers(1, 8), pods=st.integers(1, 40))
def test_no_room_is_said_only_when_there_is_none(taken, nodes, pods):
    """In a pool small enough to search by hand: a plan exists exactly when some aligned
    block of the pod range's size is free."""
    pool = Net("10.20.0.0/22")
    try:
        p = plan(taken, nodes, pods, services=1, pools=(pool,))
    except PlanError:
        prefix = 32 - (2 * pods - 1).bit_length() - (nodes - 1).bit_length()
        free = [
            b
            for b in (pool.subnets(new_prefix=prefix) if prefix >= pool.prefixlen else ())
            if not any(b.overlaps(t) for t in taken)
        ]
        # no free pod block, or one but no room left beside it for the services
        assert not free or all(
            not any(
                not s.overlaps(b) and not any(s.overlaps(t) for t in taken)
                for s in pool.subnets(new_prefix=30)
            )
            for b in free[:1]
        )
        return
    assert p.pods.subnet_of(pool) and not any(p.pods.overlaps(t) for t in taken)


def test_cli_text_json_and_bad_input():
    text = netcheck("cidr", "plan", "--nodes", "100", "--taken", "10.0.0.0/16")
    assert text.returncode == 0, text.stderr
    assert "pod CIDR      10.1.0.0/17" in text.stdout and "clear of 10.0.0.0/16" in text.stdout
    doc = json.loads(
        netcheck("cidr", "plan", "--nodes", "3", "--within", "198.18.0.0/15", "-o", "json").stdout
    )
    assert doc["pod_cidr"] == "198.18.0.0/22" and doc["node_cidr_mask_size"] == 24
    for args, words in [
        (("--taken", "10.0.0.0/33"), "--taken 10.0.0.0/33: not a CIDR"),
        (("--within", "fd00::/8"), "IPv6 is not planned yet"),
        (("--within", "198.18.0.0/24", "--taken", "198.18.0.0/24"), "no free /"),
        (("--pods-per-node", "0"), "--pods-per-node 0: give 1 to"),
    ]:
        bad = netcheck("cidr", "plan", "--nodes", "3", *args)
        assert bad.returncode == 2, (args, bad.stdout)
        assert words in bad.stderr and bad.stderr.count("\n") == 1, bad.stderr


def test_a_dual_stack_clusters_ipv6_ranges_are_named_not_a_reason_to_stop():
    """A dual-stack cluster publishes IPv6 pod, service and node ranges beside its IPv4 ones:
    the IPv4 plan keeps clear of the IPv4 ones and names the others (before, the first IPv6
    range was taken for bad input and the plan stopped with exit 2)."""
    import asyncio

    from netcheck.discovery.kube import NodeInfo
    from netcheck.workflows.cidr import Sizing, discovered_ranges, plan_cidrs
    from tests.test_kube import discovery

    node = NodeInfo(
        name="n0",
        internal_ip="fd00:10::5",
        zone="z",
        region="r",
        pod_cidrs=("10.0.0.0/24", "fd00:10:244::/64"),
        taints=(),
    )
    dual = discovery(
        "DUAL",
        (),
        nodes=(
            node,
            dataclasses.replace(
                node, name="n1", internal_ip="10.9.0.7", pod_cidrs=("10.0.1.0/24",)
            ),
        ),
        service_cidrs=("10.96.0.0/12", "fd00:10:96::/112"),
    )
    ranges, other = discovered_ranges([dual])
    assert sorted(str(a.net) for a in ranges) == [
        "10.0.0.0/24", "10.0.1.0/24", "10.9.0.7/32", "10.96.0.0/12"
    ]  # fmt: skip
    assert len(other) == 3 and all("IPv6; the plan is IPv4" in line for line in other)
    assert any("DUAL node n0: fd00:10::5/128" in line for line in other)
    done = asyncio.run(plan_cidrs(Sizing(nodes=100), taken=[Net("10.1.0.0/16")]))
    assert done.plan is not None and not done.plan.pods.overlaps(Net("10.1.0.0/16"))
    assert [(str(a.net), a.what) for a in done.avoided] == [("10.1.0.0/16", "--taken")]
    assert not done.errors and not done.not_planned_around


@pytest.mark.parametrize("nodes", [0, 70_000])
def test_node_counts_out_of_range(nodes):
    with pytest.raises(PlanError, match="--nodes"):
        plan([], nodes, 110)
