"""The overlay between clusters (discovery/overlay.py, diagnosis/overlay.py) on objects shaped
as Submariner, Cilium and Calico leave them; the lab test (test_kube_real) serves Submariner's
from a real API server."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from netcheck.diagnosis.overlay import fold, overlay_findings
from netcheck.discovery.overlay import Overlay, calico, cilium, submariner
from netcheck.model.findings import Finding, Severity
from tests.test_kube import discovery


def submariner_object(driver: str = "libreswan", global_cidr: str = "") -> dict[str, Any]:
    return {
        "apiVersion": "submariner.io/v1alpha1",
        "kind": "Submariner",
        "metadata": {"name": "submariner", "namespace": "submariner-operator"},
        "spec": {
            "cableDriver": driver,
            "clusterID": "cp-east",
            "globalCIDR": global_cidr,
            "natEnabled": False,
        },
    }


def gateway(host: str, ha: str, *connections: tuple[str, str, str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "submariner.io/v1",
        "kind": "Gateway",
        "metadata": {"name": host, "namespace": "submariner-operator"},
        "status": {
            "haStatus": ha,
            "localEndpoint": {"hostname": host, "backend": "libreswan"},
            "connections": [
                {
                    "status": status,
                    "statusMessage": message,
                    "endpoint": {"cluster_id": cluster, "hostname": remote},
                }
                for cluster, remote, status, message in connections
            ],
        },
    }


def test_submariner_names_its_tunnel_gateways_and_each_connection():
    got = submariner(
        [submariner_object(global_cidr="242.0.0.0/16")],
        [
            gateway("cp-gw-1", "active", ("dp-west", "dp-gw-1", "connected", "")),
            gateway("cp-gw-2", "passive"),
        ],
        ("cp-gw-1", "cp-gw-2"),
    )
    assert got is not None
    assert (got.kind, got.tunnels, got.globalnet) == ("submariner", ("IPsec",), "242.0.0.0/16")
    assert got.active_gateways == ("cp-gw-1",) and got.overhead == 73
    assert [c.status for c in got.connections] == ["connected"]
    assert submariner([], [], ()) is None  # not installed


def test_cilium_and_calico_tunnels_from_their_settings():
    settings = {
        "routing-mode": "tunnel",
        "tunnel-protocol": "vxlan",
        "enable-wireguard": "true",
        "cluster-name": "east",
        "cluster-id": "1",
    }
    vxlan_wg = cilium(settings)
    assert vxlan_wg is not None
    assert vxlan_wg.tunnels == ("VXLAN", "WireGuard") and vxlan_wg.overhead == 110
    assert vxlan_wg.cluster_mesh == "east (id 1)"
    native = cilium({"routing-mode": "native", "cluster-id": "0"})
    assert native is not None and native.tunnels == () and native.cluster_mesh == ""
    legacy = cilium({"tunnel": "disabled"})  # before routing-mode: tunnel=disabled is native
    assert legacy is not None and legacy.tunnels == ()
    assert cilium({}) is None
    pools = [{"spec": {"cidr": "10.0.0.0/16", "ipipMode": "CrossSubnet", "vxlanMode": "Never"}}]
    ipip = calico(pools)
    assert ipip is not None and ipip.tunnels == ("IPIP",) and ipip.overhead == 20


def plane(ctx: str, overlay: Overlay) -> Any:
    return discovery(ctx, (), overlay=overlay)


SUB_CP = Overlay(
    kind="submariner",
    tunnels=("IPsec",),
    gateways=("cp-gw-1",),
    active_gateways=("cp-gw-1",),
    globalnet="242.0.0.0/16",
)
SUB_DP = Overlay(
    kind="submariner", tunnels=("IPsec",), gateways=("dp-gw-1",), globalnet="242.1.0.0/16"
)


def test_submariner_problems_are_errors_with_submariners_own_words():
    broken = Overlay(
        kind="submariner",
        tunnels=("WireGuard",),
        connections=submariner(
            [submariner_object("wireguard")],
            [gateway("cp-gw-1", "active", ("dp-west", "dp-gw-1", "error", "handshake timed out"))],
            (),
        ).connections,  # type: ignore[union-attr]
    )
    found = {f.code: f for f in overlay_findings([plane("CP_EAST", broken)])}
    assert set(found) == {"OVERLAY", "SUBMARINER_NO_GATEWAY", "SUBMARINER_CONNECTION_DOWN"}
    down = found["SUBMARINER_CONNECTION_DOWN"]
    assert down.summary == (
        "CP_EAST: Submariner gateway cp-gw-1 to cluster dp-west (gateway dp-gw-1) is error: "
        "handshake timed out"
    )
    assert "subctl diagnose all" in down.hint and "4500" in down.hint
    assert found["OVERLAY"].summary == (
        "CP_EAST: Submariner (WireGuard between gateways); up to 60 bytes of each packet go to "
        "the tunnel"
    )
    # routed clusters: nothing said
    assert overlay_findings([plane("DP_WEST", Overlay())]) == ()


def mesh_finding(code: str, severity: Severity = Severity.ERROR) -> Finding:
    return Finding(
        severity=severity,
        code=code,
        summary="7000 times out from every CP_EAST endpoint to every DP_WEST endpoint: 8 pairs",
        src_cluster="CP_EAST",
        dst_cluster="DP_WEST",
        ports=(7000,),
        affected_pairs=8,
        hint="a firewall silently drops it",
    )


def test_a_failure_between_clusters_names_the_gateways_and_the_tunnels_room():
    planes = [plane("CP_EAST", SUB_CP), plane("DP_WEST", SUB_DP)]
    (dropped,) = fold((mesh_finding("PORT_TIMEOUT"),), planes)
    assert dropped.location == (
        "through the Submariner gateways (CP_EAST: cp-gw-1; DP_WEST: dp-gw-1)"
    )
    assert dropped.severity is Severity.ERROR and dropped.code == "PORT_TIMEOUT"
    (mtu,) = fold((mesh_finding("PATH_MTU_BLACK_HOLE"),), planes)
    assert "the IPsec tunnel takes up to 73 bytes of each packet" in mtu.hint
    (nat,) = fold((mesh_finding("SOURCE_NAT"),), planes)
    assert "Globalnet translates pod addresses between these clusters" in nat.summary
    # within one cluster, or routed clusters: as the mesh said
    inside = dataclass_replace(mesh_finding("PORT_TIMEOUT"), dst_cluster="CP_EAST")
    assert fold((inside,), planes) == (inside,)
    routed = [plane("CP_EAST", Overlay()), plane("DP_WEST", Overlay())]
    assert fold((mesh_finding("PORT_TIMEOUT"),), routed) == (mesh_finding("PORT_TIMEOUT"),)


def dataclass_replace(f: Finding, **kw: Any) -> Finding:
    import dataclasses

    return dataclasses.replace(f, **kw)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=12)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


@given(st.lists(json_values, max_size=3), st.lists(json_values, max_size=3))
def test_submariner_objects_of_any_shape_are_read_as_far_as_they_go(operators, gateways):
    ops = [o for o in operators if isinstance(o, dict)]
    gws = [g for g in gateways if isinstance(g, dict)]
    got = submariner(ops, gws, ())
    assert (got is None) == (not ops)
    if got is not None:
        assert all(isinstance(c.message, str) and len(c.message) <= 300 for c in got.connections)


def test_overlapping_ranges_between_two_globalnet_clusters_are_info():
    from netcheck.diagnosis.cidrs import cidr_findings

    both = [
        discovery("CP_EAST", ("10.244.0.0/16",), overlay=SUB_CP),
        discovery("DP_WEST", ("10.244.0.0/16",), overlay=SUB_DP),
    ]
    (overlap,) = fold(cidr_findings(both), both)
    assert (overlap.code, overlap.severity) == ("POD_CIDR_OVERLAP", Severity.INFO)
    assert "Submariner Globalnet joins these clusters" in overlap.summary
    # one side without Globalnet: the overlap stays an error
    one = [both[0], discovery("DP_WEST", ("10.244.0.0/16",), overlay=Overlay())]
    (overlap,) = fold(cidr_findings(one), one)
    assert overlap.severity is Severity.ERROR
    # a cluster's own pod range over its own service range: an error, Globalnet or not
    own = [discovery("CP_EAST", ("10.96.0.0/16",), overlay=SUB_CP, service_cidrs=("10.96.0.0/12",))]
    (overlap,) = fold(cidr_findings(own), own)
    assert (overlap.code, overlap.severity) == ("SERVICE_CIDR_OVERLAP", Severity.ERROR)


def test_globalnets_nat_is_by_design_in_the_verdict_and_every_output():
    """Preflight's echo sees Globalnet's global addresses between two Globalnet clusters: the
    SOURCE_NAT finding is info, and the verdict, JUnit, the terminal's count and the HTML
    heatmap leave those probes out; the same NAT elsewhere stays a failure."""
    import dataclasses
    import xml.etree.ElementTree as ET

    from netcheck.diagnosis.findings import diagnose
    from netcheck.diagnosis.overlay import nat_by_design
    from netcheck.model.outcome import Outcome
    from netcheck.model.report import RunReport, Verdict
    from netcheck.reports.html import heatmaps
    from netcheck.reports.junit import to_junit
    from tests.helpers import results_for, two_region_topology

    topo = two_region_topology()
    probes = results_for(
        topo,
        lambda s, d, p: Outcome.NAT if (s.cluster, d.cluster) == ("CP_EAST", "DP_WEST") else None,
    )
    planes = [plane("CP_EAST", SUB_CP), plane("DP_WEST", SUB_DP)]
    report = RunReport(
        topology=topo,
        probes=probes,
        findings=fold(diagnose(topo, probes), planes),
        started_at="2026-12-01T00:00:00+00:00",
        duration_s=1.0,
        nat_by_design=nat_by_design(planes),
    )
    assert report.nat_by_design == (("CP_EAST", "DP_WEST"), ("DP_WEST", "CP_EAST"))
    (nat,) = report.findings
    assert (nat.code, nat.severity) == ("SOURCE_NAT", Severity.INFO)
    assert report.verdict is Verdict.PASS
    suite = ET.fromstring(to_junit(report)).find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert all(c.state == "pass" for h in heatmaps(report) for c in h.cells)
    # the same NAT without Globalnet on both sides: a failure everywhere
    one = [plane("CP_EAST", SUB_CP), plane("DP_WEST", Overlay())]
    plain = dataclasses.replace(
        report, findings=fold(diagnose(topo, probes), one), nat_by_design=nat_by_design(one)
    )
    assert plain.nat_by_design == ()
    assert plain.verdict is Verdict.FAIL and plain.findings[0].severity is Severity.ERROR
    plain_suite = ET.fromstring(to_junit(plain)).find("testsuite")
    assert plain_suite is not None and plain_suite.get("failures") != "0"
