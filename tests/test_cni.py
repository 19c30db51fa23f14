"""Pod networks from each CNI's own objects (discovery/cni.py) and the CIDR checks on them
(diagnosis/cidrs.py). The objects are shaped as Calico, Cilium and the AWS VPC CNI leave them
in a cluster (their CRDs' fields as their documentation and manifests show them); the lab test
(test_kube_real) serves the same shapes from a real API server."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from netcheck.diagnosis.cidr_plan import known_ranges
from netcheck.diagnosis.cidrs import cidr_findings
from netcheck.discovery.cni import CniFacts, PodNetwork, cni_facts
from tests.test_kube import discovery


def ippool(name: str, cidr: Any, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "crd.projectcalico.org/v1",
        "kind": "IPPool",
        "metadata": {"name": name},
        "spec": {
            "cidr": cidr,
            "blockSize": 26,
            "ipipMode": "Always",
            "natOutgoing": True,
            "nodeSelector": "all()",
            "vxlanMode": "Never",
            **spec,
        },
    }


def cilium_node(name: str, *cidrs: Any) -> dict[str, Any]:
    return {
        "apiVersion": "cilium.io/v2",
        "kind": "CiliumNode",
        "metadata": {"name": name},
        "spec": {
            "addresses": [{"ip": "10.0.0.5", "type": "InternalIP"}],
            "ipam": {"podCIDRs": list(cidrs), "pool": {}},
        },
    }


def cilium_config(**data: str) -> dict[str, Any]:
    return {"metadata": {"name": "cilium-config", "namespace": "kube-system"}, "data": data}


def eniconfig(zone: str, subnet: str) -> dict[str, Any]:
    return {
        "apiVersion": "crd.k8s.amazonaws.com/v1alpha1",
        "kind": "ENIConfig",
        "metadata": {"name": zone},
        "spec": {"securityGroups": ["sg-0dff111a1d11c1c11"], "subnet": subnet},
    }


def facts(**kw: Any) -> CniFacts:
    base: dict[str, Any] = dict(
        ippools=[], cilium_nodes=[], cilium_pools=[], cilium_config=None, eniconfigs=[]
    )
    return cni_facts(**(base | kw))


def test_calico_ippools_are_the_pod_networks_disabled_ones_too():
    got = facts(
        ippools=[
            ippool("default-ipv4-ippool", "192.168.0.0/16"),
            ippool("old", "10.50.0.0/16", disabled=True),
            ippool("broken", "192.168.0.0/33"),
        ]
    )
    assert got.name == "calico"
    assert got.pod_networks == (
        PodNetwork(cidr="192.168.0.0/16", source="Calico IPPool default-ipv4-ippool"),
        PodNetwork(cidr="10.50.0.0/16", source="Calico IPPool old (disabled)"),
    )
    assert got.warnings == ("Calico IPPool broken: '192.168.0.0/33' is not a CIDR; skipped",)


def test_cilium_cluster_pool_from_its_config_else_from_the_ciliumnodes():
    nodes = [cilium_node("n1", "10.0.1.0/24"), cilium_node("n2", "10.0.2.0/24")]
    config = cilium_config(
        ipam="cluster-pool", **{"cluster-pool-ipv4-cidr": "10.0.0.0/16", "routing-mode": "tunnel"}
    )
    got = facts(cilium_nodes=nodes, cilium_config=config)
    assert got.name == "cilium"
    assert got.pod_networks == (
        PodNetwork(cidr="10.0.0.0/16", source="cilium-config cluster-pool-ipv4-cidr"),
    )
    assert ("routing-mode", "tunnel") in got.cilium_config
    # cilium-config not readable (or not there): the blocks the operator handed out
    got = facts(cilium_nodes=nodes)
    assert [n.cidr for n in got.pod_networks] == ["10.0.1.0/24", "10.0.2.0/24"]
    assert got.pod_networks[0].source == "CiliumNode n1"
    # kubernetes IPAM: the nodes' podCIDRs are the truth, Cilium publishes no pool of its own
    got = facts(cilium_nodes=nodes, cilium_config=cilium_config(ipam="kubernetes"))
    assert got.name == "cilium" and got.pod_networks == ()


def test_cilium_multi_pool_ipam_reads_its_pools():
    pool = {
        "apiVersion": "cilium.io/v2alpha1",
        "kind": "CiliumPodIPPool",
        "metadata": {"name": "databases"},
        "spec": {"ipv4": {"cidrs": ["10.20.0.0/16"], "maskSize": 24}},
    }
    got = facts(cilium_pools=[pool], cilium_config=cilium_config(ipam="multi-pool"))
    assert got.pod_networks == (
        PodNetwork(cidr="10.20.0.0/16", source="CiliumPodIPPool databases"),
    )


def test_aws_vpc_cni_gives_subnet_ids_and_a_warning_that_names_them():
    got = facts(
        eniconfigs=[
            eniconfig("us-west-2a", "subnet-011b111c1f11fdf11"),
            eniconfig("us-west-2b", "subnet-022c222d2f22ege22"),
        ]
    )
    assert got.name == "aws-vpc-cni" and got.pod_networks == ()
    assert got.eni_subnets == ("subnet-011b111c1f11fdf11", "subnet-022c222d2f22ege22")
    d = discovery("DP_WEST", (), cni=got)
    (f,) = cidr_findings([d])
    assert f.code == "POD_CIDR_UNKNOWN" and f.severity.value == "warning"
    assert "subnet-011b111c1f11fdf11, subnet-022c222d2f22ege22" in f.hint


def test_an_overlap_says_where_both_sides_were_read():
    calico = discovery(
        "CP_EAST",
        ("10.244.0.0/24", "10.244.1.0/24"),  # node podCIDRs that Calico's IPAM ignores
        cni=facts(ippools=[ippool("default-ipv4-ippool", "192.168.0.0/16")]),
    )
    routed = discovery("DP_WEST", ("192.168.7.0/24",))
    found = {f.code: f for f in cidr_findings([calico, routed])}
    overlap = found["POD_CIDR_OVERLAP"]
    assert overlap.summary == (
        "pod CIDRs overlap: CP_EAST 192.168.0.0/16 (Calico IPPool default-ipv4-ippool) and "
        "DP_WEST 192.168.7.0/24 (node DP_WEST-n0 podCIDR)"
    )
    # the nodes' podCIDRs are not what Calico hands out: said, and not checked
    assert found["POD_CIDR_FROM_CNI"].severity.value == "info"
    assert "not from the nodes' podCIDRs (10.244.0.0/24, 10.244.1.0/24)" in (
        found["POD_CIDR_FROM_CNI"].summary
    )
    apart = discovery("DP_WEST", ("10.244.0.0/24",))  # Calico's nodes' podCIDR: unused there
    assert "POD_CIDR_OVERLAP" not in {f.code for f in cidr_findings([calico, apart])}
    # and a plan for a new cluster stays clear of the pool, saying where it came from
    assert ("192.168.0.0/16", "CP_EAST pods (Calico IPPool default-ipv4-ippool)") in (
        known_ranges(calico)
    )


def test_before_the_servicecidr_api_only_the_api_servers_service_address_is_known():
    old = discovery("CP_EAST", ("10.1.0.0/24",), service_cidr_api=False, api_service_ip="10.96.0.1")
    other = discovery("DP_WEST", ("10.96.0.0/16",))
    found = {f.code: f for f in cidr_findings([old, other])}
    assert found["SERVICE_CIDR_UNKNOWN"].summary == (
        "CP_EAST: the ServiceCIDR API is not served (Kubernetes before 1.33), so its service "
        "range is not known; only the API server's service address 10.96.0.1, the first of "
        "it, is checked"
    )
    assert found["SERVICE_CIDR_OVERLAP"].summary == (
        "pod CIDR 10.96.0.0/16 of DP_WEST overlaps the service address 10.96.0.1 (API server) "
        "of CP_EAST"
    )


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
cidr_like = st.one_of(
    st.sampled_from(["10.0.0.0/8", "192.168.1.5/24", "fd00::/64", "10.0.0.0/33", "", "x"]),
    json_values,
)


def obj(spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "n"}, "spec": spec}


@given(
    st.lists(cidr_like.map(lambda c: obj({"cidr": c})), max_size=3),
    st.lists(st.one_of(json_values, cidr_like).map(lambda c: obj({"ipam": {"podCIDRs": c}}))),
    st.lists(json_values.map(obj), max_size=3),
    st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["ipam", "cluster-pool-ipv4-cidr"]), st.text(max_size=30)
        ).map(lambda d: {"data": d}),
    ),
    st.lists(json_values.map(obj), max_size=3),
)
def test_any_shape_of_cni_objects_gives_parsed_cidrs_or_warnings_never_an_exception(
    pools, nodes, cilium_pools, config, enis
):
    got = cni_facts(
        ippools=pools, cilium_nodes=nodes, cilium_pools=cilium_pools, cilium_config=config,
        eniconfigs=enis,
    )  # fmt: skip
    for n in got.pod_networks:
        assert str(ipaddress.ip_network(n.cidr)) == n.cidr  # strict: host bits cleared
    assert len({n.cidr for n in got.pod_networks}) == len(got.pod_networks)


networks = st.builds(
    lambda addr, prefix: ipaddress.ip_network(f"{addr}/{prefix}", strict=False),
    st.ip_addresses(v=4).map(str) | st.sampled_from(["10.0.0.0", "10.0.128.0", "10.1.0.0"]),
    st.integers(min_value=8, max_value=32),
) | st.builds(
    lambda addr, prefix: ipaddress.ip_network(f"{addr}/{prefix}", strict=False),
    st.ip_addresses(v=6).map(str),
    st.integers(min_value=16, max_value=128),
)


@given(st.lists(networks, max_size=25), st.lists(networks, max_size=25))
def test_the_overlap_sweep_finds_exactly_what_comparing_every_pair_finds(a, b):
    from netcheck.diagnosis.cidrs import _overlaps

    brute = [(x, y) for x in a for y in b if x.version == y.version and x.overlaps(y)]
    assert sorted(map(str, _overlaps(a, b))) == sorted(map(str, brute))
    assert len(_overlaps(a, b)) == len(brute)


def test_cni_pools_rbac_refused_leave_the_cidr_check_incomplete_not_passed():
    """RBAC refused the Calico pools: the check fell back on the nodes' podCIDRs, which Calico
    does not use. Finding no overlap there proves nothing: a problem says which read and the
    grant, and the run's verdict is incomplete, not pass."""
    from netcheck.diagnosis.cidrs import cidr_problems
    from netcheck.model.report import Verdict, verdict_of

    refused = (
        "Calico ippools: RBAC forbids 'list' on 'ippools' cluster-wide; grant it "
        "(probes/rbac/netcheck-user.yaml)",
    )
    east = discovery("CP_EAST", ("10.244.0.0/24",), cni_unread=refused)
    west = discovery("DP_WEST", ("10.245.0.0/24",))
    assert not [f for f in cidr_findings([east, west]) if f.severity.value != "info"]
    (problem,) = cidr_problems([east, west])
    assert problem.startswith("context CP_EAST: the CIDR check is incomplete: Calico ippools ")
    assert "the nodes' podCIDRs" in problem and "probes/rbac/netcheck-user.yaml" in problem
    assert verdict_of((), (), (problem,)) is Verdict.INCOMPLETE
    assert cidr_problems([west]) == ()
