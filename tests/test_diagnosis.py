from netcheck.diagnosis.findings import diagnose
from netcheck.model.evidence import Hop, Latency, PathMtu, Reply, ReplyKind, Trace
from netcheck.model.findings import Severity
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, ProbeKind, ProbeResult
from netcheck.model.report import Verdict, verdict_of
from netcheck.model.topology import Endpoint
from tests.helpers import results_for, two_region_topology


def cross(s, d):
    return s.cluster != d.cluster


def test_clean_mesh_has_no_findings():
    topo = two_region_topology()
    assert diagnose(topo, results_for(topo)) == ()


def test_one_port_dropped_between_regions_is_one_finding():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and p == 7001 else None
    )
    (f,) = diagnose(topo, results)
    assert f.code == "PORT_TIMEOUT" and f.severity is Severity.ERROR
    assert f.ports == (7001,)
    assert {f.src_cluster, f.dst_cluster} == {"CP_EAST", "DP_WEST"}
    assert f.affected_pairs == 32  # 16 pod pairs each way
    assert "both directions" in f.summary
    assert "198.18.0.0/20" in f.hint and "198.18.32.0/20" in f.hint


def test_one_direction_only_is_called_asymmetric():
    topo = two_region_topology()
    results = results_for(
        topo,
        lambda s, d, p: Outcome.TIMEOUT if s.cluster == "CP_EAST" and cross(s, d) else None,
    )
    (f,) = diagnose(topo, results)
    assert f.src_cluster == "CP_EAST" and f.dst_cluster == "DP_WEST"
    assert f.ports == (7000, 7001, 8080)
    assert f.affected_pairs == 16
    assert "one direction only" in f.summary


def test_rack_scope_and_second_independent_fault():
    topo = two_region_topology()
    results = results_for(
        topo,
        lambda s, d, p: (
            Outcome.UNREACHABLE
            if (s.cluster, s.rack) == ("CP_EAST", "r1") and d.cluster == "DP_WEST" and p == 7000
            else None
        ),
        lambda s, d, p: Outcome.STALLED if cross(s, d) and p == 8080 else None,
    )
    findings = {f.code: f for f in diagnose(topo, results)}
    assert set(findings) == {"HOST_UNREACHABLE", "PATH_MTU_STALL"}
    rack = findings["HOST_UNREACHABLE"]
    assert rack.src_scope == "rack CP_EAST/dc1/r1" and rack.affected_pairs == 8
    assert findings["PATH_MTU_STALL"].affected_pairs == 32


def test_blackholed_pod_is_one_finding():
    topo = two_region_topology()
    victim = "dp-dc2-r2-p1"
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if victim in (s.name, d.name) else None
    )
    (f,) = diagnose(topo, results)
    assert f.code == "POD_ISOLATED" and f.location == f"pod {victim}"
    assert victim in f.summary and "both directions" in f.summary
    assert f.affected_pairs == 14  # 7 peers, each way


def test_not_measured_is_a_warning_not_a_pass():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.NOT_MEASURED if d.name == "cp-dc1-r1-p0" else None
    )
    (f,) = diagnose(topo, results)
    assert f.code == "NOT_MEASURED" and f.severity is Severity.WARNING


def test_unusable_agent_is_named():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.NOT_MEASURED if s.name == "cp-dc1-r1-p0" else None
    )
    (f,) = diagnose(topo, results, (("cp-dc1-r1-p0", "agent http://x is unreachable"),))
    assert f.code == "AGENT_UNAVAILABLE" and "cp-dc1-r1-p0" in f.summary
    assert f.hint == "agent http://x is unreachable"


# ---------------------------------------------------------------- with raw evidence


def raw(kind: ProbeKind, src: str, dst: str, port: int, outcome: Outcome, **evidence):
    return ProbeResult(
        src=src, dst=dst, port=port, kind=kind, outcome=outcome, evidence=Evidence(**evidence)
    )


def syn_ack_ttls(topo, ttl_of):
    """Latency evidence for every pair: the TTL the destination's SYN-ACKs arrive with."""
    out = []
    for s in topo.endpoints:
        for d in topo.endpoints:
            if s.name != d.name:
                reply = Reply(kind=ReplyKind.SYN_ACK, source=d.address, ttl=ttl_of(s, d))
                lat = Latency(sent=10, received=10, p50_ms=0.3, p99_ms=0.9)
                out.append(
                    raw(
                        ProbeKind.LATENCY,
                        s.name,
                        d.name,
                        7000,
                        Outcome.OPEN,
                        reply=reply,
                        latency=lat,
                    )
                )
    return out


def ttl(s, d):
    return 64 if s.cluster == d.cluster else 61  # three routers between the clusters


def test_rst_with_the_destinations_own_ttl_is_a_closed_port_else_a_firewall():
    topo = two_region_topology()
    eps = {e.name: e for e in topo.endpoints}
    results = results_for(
        topo, lambda s, d, p: Outcome.REFUSED if p == 8080 and cross(s, d) else None
    )
    evidence = syn_ack_ttls(topo, ttl)
    for r in results:
        if r.outcome is Outcome.REFUSED:
            # CP -> DP: a reset from hop 2 (TTL 63); DP -> CP: from the pod itself (TTL 61)
            from_wan = eps[r.src].cluster == "CP_EAST"
            rst = Reply(kind=ReplyKind.RST, source=eps[r.dst].address, ttl=63 if from_wan else 61)
            evidence.append(raw(ProbeKind.SYN, r.src, r.dst, r.port, Outcome.REFUSED, reply=rst))
    findings = {f.code: f for f in diagnose(topo, results, (), tuple(evidence))}
    assert set(findings) == {"FIREWALL_RESET", "PORT_CLOSED"}
    assert findings["FIREWALL_RESET"].src_scope == "every CP_EAST endpoint"
    assert findings["FIREWALL_RESET"].location == "RST from hop 2"
    assert findings["PORT_CLOSED"].src_scope == "every DP_WEST endpoint"


def test_prohibited_from_the_destination_is_a_network_policy_from_a_router_a_firewall():
    topo = two_region_topology()
    eps = {e.name: e for e in topo.endpoints}
    results = results_for(
        topo,
        lambda s, d, p: (
            Outcome.PROHIBITED
            if p == 7000 and d.cluster == "DP_WEST" and s.cluster == "CP_EAST"
            else None
        ),
        lambda s, d, p: (
            Outcome.PROHIBITED
            if p == 7001
            and d.rack == "r2"
            and s.rack == "r1"
            and s.cluster == d.cluster == "CP_EAST"
            else None
        ),
    )
    evidence = [
        raw(
            ProbeKind.SYN,
            r.src,
            r.dst,
            r.port,
            r.outcome,
            reply=Reply(
                kind=ReplyKind.PROHIBITED,
                source="198.19.126.2" if r.port == 7000 else eps[r.dst].address,
            ),
        )
        for r in results
        if r.outcome is Outcome.PROHIBITED
    ]
    findings = {f.code: f for f in diagnose(topo, results, (), tuple(evidence))}
    assert set(findings) == {"FIREWALL_REJECT", "NETWORK_POLICY_REJECT"}
    fw = findings["FIREWALL_REJECT"]
    assert fw.location == "rejected by 198.19.126.2" and fw.asymmetric
    np_ = findings["NETWORK_POLICY_REJECT"]
    assert (np_.src_scope, np_.dst_scope) == ("rack CP_EAST/dc1/r1", "rack CP_EAST/dc1/r2")
    assert "NetworkPolicy" in np_.hint


def test_a_route_missing_one_way_is_one_finding_with_its_lost_replies():
    topo = two_region_topology()
    src = "cp-dc1-r1-p0"
    dead = {e.name for e in topo.endpoints if e.cluster == "CP_EAST" and e.rack == "r2"}
    results = results_for(
        topo,
        lambda s, d, p: Outcome.UNREACHABLE if s.name == src and d.name in dead else None,
        lambda s, d, p: Outcome.FILTERED if s.name in dead and d.name == src else None,
    )
    evidence = [
        raw(ProbeKind.SYN, src, d, p, Outcome.UNREACHABLE, reply=Reply(kind=ReplyKind.NO_ROUTE))
        for d in dead
        for p in (7000, 7001, 8080)
    ] + [
        raw(
            ProbeKind.TRACE,
            s,
            src,
            p,
            Outcome.FILTERED,
            trace=Trace(hops=(Hop(ttl=1, reply=Reply(kind=ReplyKind.NONE)),)),
        )
        for s in dead
        for p in (7000, 7001, 8080)
    ]
    (f,) = diagnose(topo, results, (), tuple(evidence))
    assert f.code == "ROUTE_MISSING" and f.src_scope == src
    assert f.dst_scope == "rack CP_EAST/dc1/r2" and "both directions" in f.summary
    assert f.location == "the source has no route; the replies take the same missing route"
    assert f.affected_pairs == 4


def test_path_mtu_from_evidence_black_hole_reduced_and_loss():
    topo = two_region_topology()
    results = results_for(topo)
    cp, dp = "cp-dc1-r1-p0", "dp-dc2-r1-p0"
    hole = PathMtu(local_mtu=1500, path_mtu=1400, smallest_lost=1401)
    evidence = (
        raw(ProbeKind.PMTU, cp, dp, 7000, Outcome.STALLED, path_mtu=hole),
        raw(ProbeKind.PMTU, dp, cp, 7000, Outcome.STALLED, path_mtu=hole),
    )
    # no probe stalled (a real Cassandra cannot echo), yet the black hole is an error
    (f,) = diagnose(topo, results, (), evidence)
    assert f.code == "PATH_MTU_BLACK_HOLE" and f.severity is Severity.ERROR
    assert "1400" in f.summary and "1360" in f.hint  # MSS = MTU - 40
    assert verdict_of(results, (f,)) is Verdict.FAIL

    reduced = PathMtu(
        local_mtu=1500,
        path_mtu=1400,
        smallest_lost=1401,
        frag_needed_from="198.18.16.1",
        reported_mtu=1400,
    )
    lossy = Latency(sent=40, received=30, p50_ms=1.0, p99_ms=9.0)
    evidence = (
        raw(ProbeKind.PMTU, cp, dp, 7000, Outcome.OPEN, path_mtu=reduced),
        raw(ProbeKind.LATENCY, cp, dp, 7000, Outcome.OPEN, latency=lossy),
    )
    findings = {f.code: f for f in diagnose(topo, results, (), evidence)}
    assert set(findings) == {"PATH_MTU_REDUCED", "PACKET_LOSS"}
    assert findings["PATH_MTU_REDUCED"].severity is Severity.INFO
    assert findings["PACKET_LOSS"].severity is Severity.WARNING
    assert "25.0%" in findings["PACKET_LOSS"].summary
    assert verdict_of(results, tuple(findings.values())) is Verdict.PASS


def test_skipped_raw_probes_are_said_and_do_not_change_the_verdict():
    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and p == 7001 else None
    )
    skipped = tuple(e.name for e in topo.endpoints if e.cluster == "DP_WEST")
    findings = diagnose(topo, results, (), (), skipped)
    codes = [f.code for f in findings]
    assert codes == ["PORT_TIMEOUT", "RAW_PROBES_SKIPPED"]  # without evidence: by outcome
    info = findings[1]
    assert info.severity is Severity.INFO and "4 agents" in info.summary
    assert "NET_RAW" in info.hint


def test_evidence_plan_is_bounded_one_trace_per_rack():
    from netcheck.collector.evidence import EvidenceOptions, plan_evidence

    topo = two_region_topology()
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and p == 7001 else None
    )
    agents = frozenset(e.name for e in topo.endpoints)
    plan = plan_evidence(topo, results, agents, EvidenceOptions(latency_count=5))
    by_kind: dict[ProbeKind, int] = {}
    for spec in plan:
        by_kind[spec.kind] = by_kind.get(spec.kind, 0) + 1
    assert by_kind[ProbeKind.SYN] == 32  # every failing probe
    assert by_kind[ProbeKind.TRACE] == 8 * 2  # per source: one per destination rack
    assert by_kind[ProbeKind.LATENCY] == 8 * 7  # every pair with a working port
    assert by_kind[ProbeKind.PMTU] == 4 * 4  # one per (source rack, destination rack)
    assert all(s.count == 5 for s in plan if s.kind is ProbeKind.LATENCY)
    # agents without NET_RAW are asked nothing
    assert plan_evidence(topo, results, frozenset(), EvidenceOptions()) == []


def _stalled_and_masqueraded(unseen_every: int = 0):
    """Every cross-region probe stalls (MTU black hole); the serving agents saw CP_EAST's
    source-NATed before the payload stalled. unseen_every=k: every k-th of CP_EAST's stalled
    probes lost the peer's answer too and carries no observed address."""
    import dataclasses

    topo = two_region_topology()
    eps = {ep.name: ep for ep in topo.endpoints}
    stalled = results_for(topo, lambda s, d, p: Outcome.STALLED if cross(s, d) else None)
    cp_east = [
        r for r in stalled if r.outcome is Outcome.STALLED and eps[r.src].cluster == "CP_EAST"
    ]
    unseen = {(r.src, r.dst, r.port) for r in cp_east[::unseen_every]} if unseen_every else set()
    results = tuple(
        dataclasses.replace(
            r,
            local_address=eps[r.src].address,
            observed_source="198.19.126.1"
            if eps[r.src].cluster == "CP_EAST"
            else eps[r.src].address,
        )
        if r.outcome is Outcome.STALLED and (r.src, r.dst, r.port) not in unseen
        else r
        for r in stalled
    )
    return topo, stalled, results


def test_a_masquerade_hidden_behind_a_stall_is_still_found():
    """Every cross-region probe stalls; CP_EAST's are also source-NATed, which the serving
    agents saw before the payload stalled: two findings, one per cause."""
    topo, stalled, results = _stalled_and_masqueraded()
    found = {f.code: f for f in diagnose(topo, results)}
    assert set(found) == {"PATH_MTU_STALL", "SOURCE_NAT"}
    nat = found["SOURCE_NAT"]
    assert (nat.src_cluster, nat.dst_cluster) == ("CP_EAST", "DP_WEST")
    assert nat.affected_pairs == 16 and "both directions" not in nat.summary
    # without the observed addresses only the stall is found
    assert {f.code for f in diagnose(topo, stalled)} == {"PATH_MTU_STALL"}


def test_a_masquerade_seen_on_some_stalled_pairs_only_is_still_one_finding():
    """The same two faults, but on a loaded host some stalled probes lost the peer's answer
    too and carry no observed address. They say nothing about NAT: the masquerade is still
    one finding from CP_EAST to DP_WEST, counting the pairs that showed it, not five pieces."""
    topo, _, results = _stalled_and_masqueraded(unseen_every=5)
    nats = [f for f in diagnose(topo, results) if f.code == "SOURCE_NAT"]
    assert len(nats) == 1
    (nat,) = nats
    assert (nat.src_scope, nat.dst_scope) == ("every CP_EAST endpoint", "every DP_WEST endpoint")
    assert nat.affected_pairs == len({(r.src, r.dst) for r in results if r.translated})


def test_a_stall_on_a_path_whose_mtu_is_whole_is_not_called_an_mtu_problem():
    """Random loss slowed one payload past the timeout; the DF probes of that rack pair
    crossed at full size: the cause is loss, and no hint about MTU is given."""
    topo = two_region_topology()
    cp, dp = "cp-dc1-r1-p0", "dp-dc2-r1-p0"
    results = results_for(
        topo, lambda s, d, p: Outcome.STALLED if (s.name, d.name, p) == (cp, dp, 7000) else None
    )
    whole = PathMtu(local_mtu=1500, path_mtu=1500, smallest_lost=None)
    evidence = (raw(ProbeKind.PMTU, cp, dp, 7000, Outcome.OPEN, path_mtu=whole),)
    (f,) = diagnose(topo, results, (), evidence)
    assert f.code == "TRANSFER_STALLED" and f.location == "path MTU 1500"
    assert "no MTU limit" in f.hint
    (g,) = diagnose(topo, results)  # without the DF probes the stall may be an MTU limit
    assert g.code == "PATH_MTU_STALL"


def test_a_timeout_the_port_answers_right_after_is_intermittent_not_a_firewall():
    """One plain connect timed out on a lossy path; the raw SYNs right after it got the
    port's SYN-ACK. No rule blocks the port: the finding must not ask for a firewall change."""
    topo = two_region_topology()
    cp, dp = "cp-dc1-r1-p0", "dp-dc2-r1-p0"
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if (s.name, d.name, p) == (cp, dp, 7000) else None
    )
    answered = Reply(kind=ReplyKind.SYN_ACK, source="198.18.33.10", ttl=62, rtt_ms=0.2)
    evidence = (raw(ProbeKind.SYN, cp, dp, 7000, Outcome.OPEN, reply=answered),)
    (f,) = diagnose(topo, results, (), evidence)
    assert f.code == "PORT_INTERMITTENT" and "firewall" not in f.hint.split(":")[0]
    silent = Reply(kind=ReplyKind.NONE)
    evidence = (raw(ProbeKind.SYN, cp, dp, 7000, Outcome.FILTERED, reply=silent),)
    assert diagnose(topo, results, (), evidence)[0].code != "PORT_INTERMITTENT"


def lossy_latency(topo, received: int):
    """Latency evidence of every cross-region pair: `received` of 10 SYNs answered."""
    return [
        raw(
            ProbeKind.LATENCY,
            s.name,
            d.name,
            7000,
            Outcome.OPEN,
            latency=Latency(sent=10, received=received, p50_ms=0.3, p99_ms=0.9),
        )
        for s in topo.endpoints
        for d in topo.endpoints
        if cross(s, d)
    ]


def test_probes_failing_now_and_then_on_a_lossy_path_are_the_loss_not_a_finding_each():
    """Random loss between the regions: a few timeouts (the port answered raw SYNs) and a
    stall (full-size packets do cross) here and there. One cause, one finding: the loss."""
    topo = two_region_topology()
    odd = {
        ("cp-dc1-r1-p0", "dp-dc2-r1-p1", 7001): Outcome.TIMEOUT,
        ("dp-dc2-r2-p0", "cp-dc1-r1-p1", 8080): Outcome.TIMEOUT,
        ("cp-dc1-r2-p1", "dp-dc2-r1-p0", 7000): Outcome.STALLED,
    }
    results = results_for(topo, lambda s, d, p: odd.get((s.name, d.name, p)))
    eps = {e.name: e for e in topo.endpoints}
    answered = [
        raw(
            ProbeKind.SYN,
            s,
            d,
            p,
            Outcome.OPEN,
            reply=Reply(kind=ReplyKind.SYN_ACK, source=eps[d].address, ttl=61),
        )
        for (s, d, p), o in odd.items()
        if o is Outcome.TIMEOUT
    ]
    whole = PathMtu(local_mtu=1500, path_mtu=1500, smallest_lost=None)
    mtu = [raw(ProbeKind.PMTU, "cp-dc1-r2-p0", "dp-dc2-r1-p0", 7000, Outcome.OPEN, path_mtu=whole)]
    evidence = tuple(answered + mtu + lossy_latency(topo, received=8))
    (f,) = diagnose(topo, results, (), evidence)
    assert f.code == "PACKET_LOSS" and f.severity is Severity.ERROR
    assert {f.src_cluster, f.dst_cluster} == {"CP_EAST", "DP_WEST"}
    assert "both" not in f.summary and "20.0% of 160 SYNs from CP_EAST to DP_WEST and" in f.summary
    assert "because of it probes failed now and then: " in f.summary
    assert "7001 from cp-dc1-r1-p0 to dp-dc2-r1-p1 timed out" in f.summary
    assert "7000 from cp-dc1-r2-p1 to dp-dc2-r1-p0 stalled" in f.summary
    assert f.ports == (7000, 7001, 8080)
    # without measured loss the same failures are findings of their own
    codes = sorted(g.code for g in diagnose(topo, results, (), tuple(answered + mtu)))
    assert codes == ["PORT_INTERMITTENT", "PORT_INTERMITTENT", "TRANSFER_STALLED"]
    # loss measured and nothing failed: a warning
    (w,) = diagnose(topo, results_for(topo), (), tuple(lossy_latency(topo, received=8)))
    assert w.code == "PACKET_LOSS" and w.severity is Severity.WARNING


def test_a_pair_whose_ports_all_timed_out_but_answered_raw_syns_is_not_a_dead_path():
    """On a lossy path all three ports of one pair may time out in one run; the raw SYN that
    the destination answered proves the route: the dropped port stays a firewall drop."""
    topo = two_region_topology()
    cp, dp = "cp-dc1-r1-p0", "dp-dc2-r1-p0"
    results = results_for(
        topo,
        lambda s, d, p: Outcome.FILTERED if cross(s, d) and p == 7001 else None,
        lambda s, d, p: Outcome.TIMEOUT if (s.name, d.name) == (cp, dp) else None,
    )
    silent_trace = Trace(
        hops=(
            Hop(ttl=1, reply=Reply(kind=ReplyKind.TIME_EXCEEDED, source="198.18.1.1")),
            Hop(ttl=2, reply=Reply(kind=ReplyKind.TIME_EXCEEDED, source="198.19.126.2")),
            Hop(ttl=3, reply=Reply(kind=ReplyKind.NONE)),
        )
    )
    eps = {e.name: e for e in topo.endpoints}
    evidence = [
        raw(
            ProbeKind.SYN,
            cp,
            dp,
            p,
            Outcome.OPEN,
            reply=Reply(kind=ReplyKind.SYN_ACK, source=eps[dp].address, ttl=61),
        )
        for p in (7000, 8080)
    ] + [
        raw(ProbeKind.TRACE, s.name, d.name, 7001, Outcome.FILTERED, trace=silent_trace)
        for s in topo.endpoints
        for d in topo.endpoints
        if cross(s, d)
    ]
    codes = {f.code for f in diagnose(topo, results, (), tuple(evidence))}
    assert "ROUTE_MISSING" not in codes and "FIREWALL_DROP" in codes


def with_control_plane_nodes(topo):
    """Two CP_EAST nodes answering the Vector aggregator's NodePort (as run --control-plane
    adds them)."""
    import dataclasses

    from netcheck.model.topology import PortSpec, Role

    nodes = tuple(
        Endpoint(
            name=f"CP_EAST/node/n{i}",
            cluster="CP_EAST",
            region="east",
            address=f"198.18.17.{10 + i}",
            role=Role.CONTROL_PLANE_NODE,
            ports=(PortSpec(port=30600, kind=ProbeKind.TCP),),
        )
        for i in range(2)
    )
    return dataclasses.replace(topo, endpoints=(*topo.endpoints, *nodes))


def test_the_vector_nodeport_unreachable_is_named_as_the_aggregator():
    topo = with_control_plane_nodes(two_region_topology())
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if p == 30600 and s.cluster == "DP_WEST" else None
    )
    (f,) = diagnose(topo, results)
    assert f.ports == (30600,) and f.affected_pairs == 4 * 2  # DP_WEST pods x CP nodes
    assert f.summary.endswith(
        "30600 is Mission Control's Vector aggregator (a NodePort on the control plane's "
        "nodes): the data planes' logs and metrics do not arrive"
    )
    # the whole of CP_EAST unreachable from DP_WEST: one cause, the aggregator not singled out
    results = results_for(
        topo, lambda s, d, p: Outcome.TIMEOUT if cross(s, d) and s.cluster == "DP_WEST" else None
    )
    (f,) = diagnose(topo, results)
    assert 30600 in f.ports and 7000 in f.ports and "Vector" not in f.summary
