"""Parsers of what Cassandra prints, on outputs of the lab's real nodes and of other versions;
the gossip checks on them; `netcheck gossip analyze`."""

from __future__ import annotations

import dataclasses
import datetime
import json
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netcheck.diagnosis.gossip import analyze
from netcheck.lab.exec import recent
from netcheck.model.findings import Severity
from netcheck.model.gossip import Signature
from netcheck.model.report import TlsRow
from netcheck.model.topology import Endpoint, Topology
from netcheck.nodetool.describecluster import parse_describecluster
from netcheck.nodetool.gossipinfo import parse_gossipinfo
from netcheck.nodetool.logs import parse_log
from netcheck.nodetool.paste import observations, sections
from netcheck.nodetool.status import parse_status
from tests.lab_support import netcheck

DATA = Path(__file__).parent / "data" / "nodetool"
LAB_EAST = ("198.18.1.10", "198.18.2.10")
LAB_WEST = ("198.18.33.10", "198.18.34.10")


def text(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------- status


def test_status_of_real_cassandra_5_healthy_and_with_7000_dropped():
    rows, warnings = parse_status(text("c50-lab-cp-dc1-r1-p0-status-healthy.txt"))
    assert warnings == []
    assert {(r.address, r.state, r.datacenter, r.rack) for r in rows} == {
        ("198.18.1.10", "UN", "dc1", "r1"),
        ("198.18.2.10", "UN", "dc1", "r2"),
        ("198.18.33.10", "UN", "dc2", "r1"),
        ("198.18.34.10", "UN", "dc2", "r2"),
    }
    assert all(r.load.endswith("KiB") and r.owns.endswith("%") and r.host_id for r in rows)
    rows, warnings = parse_status(text("c50-lab-cp-dc1-r1-p0-status-drop7000.txt"))
    assert warnings == []
    assert {r.address: r.state for r in rows} == {
        **dict.fromkeys(LAB_EAST, "UN"),
        **dict.fromkeys(LAB_WEST, "DN"),
    }
    # the other side's own view is the mirror image
    rows, _ = parse_status(text("c50-lab-dp-dc2-r2-p0-status-drop7000.txt"))
    assert {r.address: r.state for r in rows} == {
        **dict.fromkeys(LAB_EAST, "DN"),
        **dict.fromkeys(LAB_WEST, "UN"),
    }


def test_status_with_ports_resolved_names_and_a_keyspace():
    rows, warnings = parse_status(text("c50-lab-cp-dc1-r1-p0-pp_status-healthy.txt"))
    assert warnings == []
    assert {(r.address, r.port) for r in rows} == {(a, 7000) for a in LAB_EAST + LAB_WEST}
    for name in (
        "c50-lab-cp-dc1-r1-p0-status_r-healthy.txt",
        "c50-lab-cp-dc1-r1-p0-status_system_auth-healthy.txt",
    ):
        rows, warnings = parse_status(text(name))
        assert warnings == [] and len(rows) == 4 and all(r.rack in ("r1", "r2") for r in rows)


def test_status_of_other_versions():
    rows, warnings = parse_status(text("c311-status-tokens.txt"))
    assert warnings == []
    assert [(r.address, r.state, r.datacenter, r.rack) for r in rows] == [
        ("10.20.1.11", "UN", "us-east", "1a"),
        ("10.20.1.12", "DN", "us-east", "1b"),
        ("10.20.1.13", "UJ", "us-east", "1c"),
        ("10.30.1.21", "UN", "eu-west", "1a"),
        ("10.30.1.22", "UL", "eu-west", "1b"),
    ]
    assert rows[1].load == "?" and rows[0].load == "1.21GiB"
    rows, warnings = parse_status(text("c40-status-pp.txt"))
    assert warnings == []
    assert [(r.address, r.port, r.state, r.rack) for r in rows] == [
        ("10.0.0.1", 7000, "UN", "rack1"),
        ("10.0.0.2", 7000, "DN", "rack2"),
        ("2001:db8::3", 7000, "UM", "rack3"),
    ]
    rows, warnings = parse_status(text("c41-status-single-token.txt"))
    assert warnings == [] and [(r.address, r.rack, r.owns) for r in rows] == [
        ("127.0.0.1", "rack1", "100.0%")
    ]
    rows, warnings = parse_status(text("c41-status-resolved.txt"))
    assert warnings == []
    assert [(r.hostname, r.address, r.state, r.rack) for r in rows] == [
        (
            "demo-dc1-r1-sts-0.demo-dc1-all-pods-service.db",
            "demo-dc1-r1-sts-0.demo-dc1-all-pods-service.db",
            "UN",
            "r1",
        ),
        ("", "2001:db8::7", "DN", "r2"),
    ]


def test_status_of_dse_dsetool():
    rows, warnings = parse_status(text("dse68-dsetool-status.txt"))
    assert warnings == []
    assert [(r.address, r.state, r.datacenter, r.rack) for r in rows] == [
        ("10.10.0.5", "UN", "dc1", "rack1"),
        ("10.10.0.6", "DN", "dc1", "rack2"),
        ("10.11.0.5", "UN", "dc2", "rack1"),
    ]


def test_status_noise_and_truncation_are_warnings():
    lines = text("c50-lab-cp-dc1-r1-p0-status-drop7000.txt").splitlines()
    lines.insert(3, "error: JMX connection closed")
    lines[-2] = lines[-2][:40]  # a row cut in the middle of its host id
    rows, warnings = parse_status("\n".join(lines))
    assert len(rows) == 4  # the cut row is still read: its state and address are there
    assert any("not a status row: error: JMX" in w for w in warnings)
    assert any("truncated, rack unknown" in w for w in warnings)


@pytest.mark.parametrize(
    "name",
    sorted(p.name for p in DATA.iterdir() if p.suffix in (".txt", ".log")),
)
def test_every_parser_survives_any_cut_of_any_fixture(name):
    """Random truncations and garbage: never an exception, always results or warnings."""
    source = text(name)
    rng = random.Random(name)
    for _ in range(40):
        cut = source[: rng.randrange(len(source) + 1)]
        noisy = cut.replace("\n", "\n\x1b[0m\r", rng.randrange(3)) + rng.choice(
            ["", "\x00\xff garbage ]]] [[[", "UN", "Datacenter:", "/", "  STATUS:"]
        )
        parse_status(noisy)
        parse_describecluster(noisy)
        parse_gossipinfo(noisy)
        parse_log(noisy)
        observations(noisy, name)


# ---------------------------------------------------------------- describecluster


def test_describecluster_4_0_plus_of_real_cassandra():
    desc, warnings = parse_describecluster(
        text("c50-lab-cp-dc1-r1-p0-describecluster-drop7000.txt")
    )
    assert warnings == []
    assert desc.name == "netcheck-lab"
    assert set(desc.unreachable) == set(LAB_WEST)
    assert [set(v.addresses) for v in desc.agreed_versions] == [set(LAB_EAST)]
    assert (desc.live, desc.unreachable_count) == (2, 2)
    assert [(d.datacenter, d.nodes, d.down) for d in desc.datacenters] == [
        ("dc1", 2, 0),
        ("dc2", 2, 2),
    ]
    assert [(v.version, len(v.addresses)) for v in desc.database_versions] == [("5.0.8", 4)]


def test_describecluster_pre_4_0_and_with_snitch_scores():
    desc, warnings = parse_describecluster(text("c311-describecluster.txt"))
    assert warnings == []
    assert len(desc.agreed_versions) == 2  # schema disagreement
    assert desc.unreachable == ("10.20.1.12",)
    assert desc.live is None and desc.datacenters == ()
    desc, warnings = parse_describecluster(text("c41-describecluster-scores.txt"))
    assert warnings == [] and desc.live == 3 and len(desc.agreed_versions) == 1


# ---------------------------------------------------------------- gossipinfo


def test_gossipinfo_of_real_cassandra_and_3_11():
    eps, warnings = parse_gossipinfo(text("c50-lab-cp-dc1-r1-p0-gossipinfo-healthy.txt"))
    assert warnings == []
    assert {e.address for e in eps} == set(LAB_EAST + LAB_WEST)
    assert {(e.status, e.release_version) for e in eps} == {("NORMAL", "5.0.8")}
    assert len({e.schema for e in eps}) == 1
    assert {e.address: (e.datacenter, e.rack) for e in eps}["198.18.34.10"] == ("dc2", "r2")
    eps, _ = parse_gossipinfo(text("c50-lab-cp-dc1-r1-p0-pp_gossipinfo-healthy.txt"))
    assert {e.address for e in eps} == set(LAB_EAST + LAB_WEST)  # ports stripped
    eps, warnings = parse_gossipinfo(text("c311-gossipinfo.txt"))
    assert warnings == []
    assert [(e.address, e.status, e.heartbeat) for e in eps] == [
        ("10.20.1.11", "NORMAL", 12345),
        ("10.20.1.12", "shutdown", 99),
        ("10.30.1.22", "LEAVING", 4455),
    ]


# ---------------------------------------------------------------- logs


def test_log_of_a_node_whose_peers_are_dropped():
    reading = parse_log(text("c50-lab-cp-dc1-r1-p0-system-drop7000.log"))
    by = {(s.signature, s.peer): s for s in reading.signatures}
    timeout = by[(Signature.CONNECT_TIMEOUT, "198.18.33.10")]
    assert timeout.count >= 1 and timeout.detail == "connection timed out"
    assert (Signature.MARKED_DOWN, "198.18.33.10") in by


def test_log_of_a_node_whose_peer_has_no_tls():
    reading = parse_log(text("c50-lab-cp-dc1-r1-p0-system-notls-peer.log"))
    tls = [s for s in reading.signatures if s.signature is Signature.TLS_HANDSHAKE]
    assert [(s.peer, s.detail) for s in tls] == [("198.18.34.10", "not an SSL/TLS record")]
    assert tls[0].count == text("c50-lab-cp-dc1-r1-p0-system-notls-peer.log").count(
        "Failed to properly handshake with peer /198.18.34.10"
    )


def test_handshakes_netcheck_failed_on_purpose_are_not_a_peers_trouble():
    """netcheck's TLS looks leave from LOOK_SOURCE_PORTS and fail the handshake on purpose (no
    client certificate, a plaintext Initiate): the node logs them like a peer's failure, and
    the log reading leaves them out; the same line from another port counts."""
    log = text("c50-lab-cp-dc1-r1-p0-system-notls-peer.log")
    looks = log.replace("/198.18.34.10:43930.", "/198.18.34.10:61017.").replace(
        "/198.18.34.10:43936.", "/198.18.34.10:61499."
    )
    tls = [s for s in parse_log(looks).signatures if s.signature is Signature.TLS_HANDSHAKE]
    assert tls[0].count == log.count("Failed to properly handshake with peer /198.18.34.10") - 2
    only_looks = "\n".join(
        line for line in looks.splitlines() if ":61017." in line or ":61499." in line
    )
    assert only_looks.count("Failed to properly handshake") == 2
    assert parse_log(only_looks).signatures == []


def test_log_startup_failure_and_seed_notice():
    log = (
        "INFO  [main] 2026-11-24 11:06:37,555 StorageService.java:880 - Unable to gossip with "
        "any peers but continuing anyway since node is in its own seed list\n"
        "INFO  [main] 2026-11-24 10:46:04,170 InboundConnectionInitiator.java:164 - Listening on"
        " address: (/198.18.34.10:7000), nic: eth0, encryption: unencrypted\n"
        "ERROR [main] 2026-11-24 11:07:00,535 CassandraDaemon.java:887 - Exception encountered "
        "during startup\n"
        "java.lang.RuntimeException: Unable to gossip with any peers\n"
        "\tat org.apache.cassandra.gms.Gossiper.doShadowRound(Gossiper.java:2098)\n"
    )
    reading = parse_log(log)
    # the seed's notice is its own (benign) signature, never the fatal one
    assert [(s.signature, s.count) for s in reading.signatures] == [
        (Signature.STARTED_ALONE, 1),
        (Signature.UNABLE_TO_GOSSIP, 1),
    ]
    assert [(x.address, x.port, x.encryption) for x in reading.listeners] == [
        ("198.18.34.10", 7000, "unencrypted")
    ]


def test_recent_log_lines_keep_their_stack_traces():
    now = datetime.datetime(2026, 11, 24, 11, 0, 0)
    log = (
        "INFO  [x] 2026-11-24 10:50:00,000 A.java:1 - old\n\tat old.trace\n"
        "INFO  [x] 2026-11-24 10:59:30,000 A.java:1 - new\n\tat new.trace\n"
    )
    assert (
        recent(log, 60, now) == "INFO  [x] 2026-11-24 10:59:30,000 A.java:1 - new\n\tat new.trace\n"
    )


# ---------------------------------------------------------------- pastes and offline analysis


def test_ticket_paste_splits_by_command_and_node():
    found = sections(text("ticket-paste.txt"))
    assert [(s.kind, s.node) for s in found] == [
        ("status", "demo-dc1-r1-sts-0"),
        ("describecluster", "demo-dc2-r1-sts-0"),
    ]
    obs = observations(text("ticket-paste.txt"), "ticket.txt")
    assert [o.observer for o in obs] == [
        "ticket.txt:demo-dc1-r1-sts-0",
        "ticket.txt:demo-dc2-r1-sts-0",
    ]
    warnings = [w for o in obs for w in o.warnings]
    assert any("line 18" in w and "truncated" in w for w in warnings)  # line in the file
    assert any("line 27" in w and "truncated address list" in w for w in warnings)


def test_offline_analysis_of_both_sides_of_the_dropped_7000():
    obs = observations(text("c50-lab-cp-dc1-r1-p0-status-drop7000.txt"), "east.txt")
    obs += observations(text("c50-lab-dp-dc2-r2-p0-status-drop7000.txt"), "west.txt")
    obs += observations(text("c50-lab-cp-dc1-r1-p0-describecluster-drop7000.txt"), "east-dc.txt")
    analysis = analyze(obs)
    states = {n.address: dict(n.states) for n in analysis.nodes}
    assert states["198.18.33.10"]["east.txt"] == "DN"
    assert states["198.18.33.10"]["west.txt"] == "UN"
    assert states["198.18.1.10"]["west.txt"] == "DN"
    codes = [f.code for f in analysis.findings]
    assert codes.count("GOSSIP_DOWN") >= 2
    assert "GOSSIP_VIEWS_DIVERGE" in codes  # offline nothing explains the partition
    assert "SCHEMA_DISAGREEMENT" not in codes


def test_offline_analysis_of_3_11_outputs():
    obs = observations(text("c311-status-tokens.txt"), "a.txt")
    obs += observations(text("c311-describecluster.txt"), "b.txt")
    obs += observations(text("c311-gossipinfo.txt"), "c.txt")
    codes = {f.code: f for f in analyze(obs).findings}
    assert "86afa796" in codes["SCHEMA_DISAGREEMENT"].summary
    # each node's place in its life, from gossipinfo where it speaks, else from status
    assert codes["NODE_LEAVING"].summary.startswith("10.30.1.22 is leaving the ring")
    assert codes["NODE_JOINING"].summary.startswith("10.20.1.13 is joining the ring")
    assert "per nodetool status" in codes["NODE_JOINING"].summary
    assert codes["NODE_SHUT_DOWN"].summary.startswith("10.20.1.12 announced its shutdown")
    assert codes["NODE_SHUT_DOWN"].severity is Severity.ERROR
    # its DN is explained by the shutdown: no GOSSIP_DOWN names it
    assert all("10.20.1.12" not in f.summary for c, f in codes.items() if c == "GOSSIP_DOWN")


def test_gossip_analyze_cli_json(tmp_path):
    east = DATA / "c50-lab-cp-dc1-r1-p0-status-drop7000.txt"
    west = DATA / "c50-lab-dp-dc2-r2-p0-status-drop7000.txt"
    ticket = DATA / "ticket-paste.txt"
    proc = netcheck("gossip", "analyze", str(east), str(west), str(ticket), "-o", "json")
    assert proc.returncode == 1, proc.stderr  # DN nodes are errors
    doc = json.loads(proc.stdout)
    node = next(n for n in doc["nodes"] if n["address"] == "198.18.33.10")
    assert node["datacenter"] == "dc2" and node["rack"] == "r1"
    assert node["state"] == "DN"
    assert sorted(node["views"]) == sorted(
        [str(east), str(west), f"{ticket}:demo-dc1-r1-sts-0", f"{ticket}:demo-dc2-r1-sts-0"]
    )
    assert {f["code"] for f in doc["findings"]} >= {"GOSSIP_DOWN", "GOSSIP_VIEWS_DIVERGE"}
    first = doc["findings"][0]
    assert set(first) >= {"severity", "code", "summary", "hint", "src_scope", "dst_scope", "ports"}
    assert any("truncated" in w for w in doc["warnings"])
    text_out = netcheck("gossip", "analyze", str(east))
    assert "GOSSIP_DOWN" in text_out.stdout and "198.18.33.10" in text_out.stdout


def test_gossip_analyze_healthy_passes(tmp_path):
    files = [
        str(DATA / f"c50-lab-{n}-status-healthy.txt") for n in ("cp-dc1-r1-p0", "dp-dc2-r2-p0")
    ]
    proc = netcheck("gossip", "analyze", *files, "-o", "json")
    assert proc.returncode == 0, proc.stdout
    doc = json.loads(proc.stdout)
    assert {n["state"] for n in doc["nodes"]} == {"UN"} and len(doc["nodes"]) == 4
    assert all(len(n["views"]) == 2 for n in doc["nodes"])


def test_gossip_analyze_bad_input_is_one_line(tmp_path):
    missing = netcheck("gossip", "analyze", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "nope.txt" in missing.stderr
    junk = tmp_path / "junk.txt"
    junk.write_bytes(b"\x00\x01 hello\nnot nodetool at all\n")
    proc = netcheck("gossip", "analyze", str(junk))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "junk.txt" in proc.stderr and "nodetool status >" in proc.stderr


def test_describecluster_reads_a_wrapped_address_list_and_a_thousand_nodes():
    """A list a terminal or a mail wrapped onto the next lines is joined back (no address
    lost, no stray line); a 1,000-node cluster's single line of ~17,000 characters is read
    whole."""
    wrapped = (
        "Cluster Information:\n\tName: big\n\tSchema versions:\n"
        "\t\t86afa796-d883-3932-aa73-6b017cef0d19: [10.0.0.1, 10.0.0.2, 10.0.0.3,\n"
        "10.0.0.4, 10.0.0.5,\n"
        " 10.0.0.6]\n"
        "\t\tUNREACHABLE: [10.0.0.7,\n10.0.0.8]\n"
    )
    description, warnings = parse_describecluster(wrapped)
    assert warnings == []
    assert [(v.version[:8], len(v.addresses)) for v in description.schema_versions] == [
        ("86afa796", 6),
        ("UNREACHA", 2),
    ]
    assert description.unreachable == ("10.0.0.7", "10.0.0.8")
    many = ", ".join(f"10.1.{i // 250}.{i % 250}:7000" for i in range(1000))
    version = "86afa796-d883-3932-aa73-6b017cef0d19"
    description, warnings = parse_describecluster(
        f"Cluster Information:\n\tSchema versions:\n\t\t{version}: [{many}]\n"
    )
    assert warnings == [] and len(description.schema_versions[0].addresses) == 1000


def test_dse_stopped_letter_is_a_shut_down_node_not_a_network_fault():
    """DSE's status prints S (stopped) for a node that was stopped: NODE_SHUT_DOWN says so,
    and its DN is no GOSSIP_DOWN."""
    text = (
        "Datacenter: dc1\n==============\nStatus=Up/Down\n"
        "|/ State=Normal/Leaving/Joining/Moving/Stopped\n"
        "--  Address     Load       Owns (effective)  Host ID                               Rack\n"
        "UN  10.0.0.1    1.2 MiB    100.0%            5b2a9c1e-0f3d-4c6e-9a57-1d2e3f4a5b61  r1\n"
        "DS  10.0.0.2    1.1 MiB    100.0%            6c3b0d2f-1a4e-4d7f-8b68-2e3f4a5b6c72  r1\n"
    )
    analysis = analyze(observations(text, "dse.txt"))
    assert analysis.warnings == ()
    assert [(f.code, f.summary.split(" ")[0]) for f in analysis.findings] == [
        ("NODE_SHUT_DOWN", "10.0.0.2")
    ]


def _tls_findings(*names: str) -> list[tuple[str, str]]:
    obs = []
    for name in names:
        obs += observations(text(name), name)
    return [
        (f.dst_scope, f.summary)
        for f in analyze(obs).findings
        if f.code == "INTERNODE_TLS_MISMATCH"
    ]


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        (
            "cert-expired",
            (
                "NotAfter: Mon Nov 30 14:27:01 UTC 2026",
                "SSLV3_ALERT_CERTIFICATE_EXPIRED",
                "cassandra-ssl-keystore expired on",
                "its certificate has expired",
            ),
        ),
        ("other-ca", ("TLSV1_ALERT_CERTIFICATE_REQUIRED", "not one its peers trust")),
    ],
)
def test_a_node_restarted_with_a_bad_certificate_is_named_with_the_jdks_reason(fault, words):
    """Real Cassandra 5.0.8 of the lab, one node restarted with an expired certificate or
    one of another CA: the peer's log carries the JDK's reason 50 lines down its exception
    chain, the node's own log the alerts its peers sent it (and, expired, its keystore's
    expiry). Both logs name that node, and only it, with the reason; its own log alone too."""
    (only,) = _tls_findings(
        f"c50-lab-cp-dc1-r1-p0-system-peer-{fault}.log", f"c50-lab-dp-dc2-r2-p0-system-{fault}.log"
    )
    assert only[0] == "198.18.34.10"
    assert all(w in only[1] for w in words), only[1]
    (alone,) = _tls_findings(f"c50-lab-dp-dc2-r2-p0-system-{fault}.log")
    assert alone[0] == "198.18.34.10"


def test_an_upgrade_half_done_is_named_from_database_versions_or_gossip():
    described = (
        "Cluster Information:\n\tName: demo\n\tSchema versions:\n"
        "\t\t4fd1b14f-5c39-3b5e-a9e7-0c1d2e3f4a5b: [10.0.0.1:7000, 10.0.0.2:7000, 10.0.0.3:7000]\n"
        "\nDatabase versions:\n\t4.1.9: [10.0.0.1:7000, 10.0.0.2:7000]\n\n"
        "\t5.0.5: [10.0.0.3:7000]\n\n"
    )
    codes = {f.code: f for f in analyze(observations(described, "dc.txt")).findings}
    assert codes["NODE_VERSIONS_MIXED"].summary == (
        "2 Cassandra release lines: 4.1 on 10.0.0.1, 10.0.0.2; 5.0 on 10.0.0.3"
    )
    # patch releases of one line are no upgrade to speak of
    same = described.replace("5.0.5", "4.1.8")
    assert "NODE_VERSIONS_MIXED" not in {f.code for f in analyze(observations(same, "x")).findings}


def test_one_node_at_odds_with_every_peer_is_named_not_the_peers():
    """One node whose truststore lacks the cluster's CA: it fails the PKIX check of every
    peer, and each peer's log shows it refusing them (TLSV1_ALERT_UNKNOWN_CA). Nobody else
    minds those peers, so the odd one is named, once, and none of the peers."""
    chain = (
        "javax.net.ssl.SSLHandshakeException: General OpenSslEngine problem\n"
        "\tat io.netty.handler.ssl.ReferenceCountedOpenSslEngine.handshakeException(X.java:1)\n"
        "Caused by: sun.security.validator.ValidatorException: PKIX path building failed: "
        "sun.security.provider.certpath.SunCertPathBuilderException: unable to find valid "
        "certification path to requested target\n"
    )
    odd = "".join(
        f"ERROR [Messaging-EventLoop-3-1] 2026-12-01 14:28:0{i},000 OutboundConnectionInitiator"
        f".java:432 - Failed to handshake with peer /10.0.0.{i}:7000(/10.0.0.{i}:7000)\n{chain}"
        for i in (1, 2, 3)
    )
    # as `run` reads it: each node's log with the node's address
    obs = [dataclasses.replace(observations(odd, "node9.log")[0], observer_address="10.0.0.9")]
    for i in (1, 2, 3):
        refused = (
            f"ERROR [Messaging-EventLoop-3-1] 2026-12-01 14:28:05,000 NoSpamLogger.java:110 - "
            f"/10.0.0.{i}:7000->/10.0.0.9:7000-URGENT_MESSAGES-[no-channel] failed to connect\n"
            "io.netty.handler.codec.DecoderException: io.netty.handler.ssl.ReferenceCounted"
            "OpenSslEngine$OpenSslException: error:10000418:SSL routines:OPENSSL_internal:"
            "TLSV1_ALERT_UNKNOWN_CA\n"
        )
        obs += observations(refused, f"node{i}.log")
    tls = [f for f in analyze(obs).findings if f.code == "INTERNODE_TLS_MISMATCH"]
    assert [f.dst_scope for f in tls] == ["10.0.0.9"], [f.summary for f in tls]
    assert "is at odds with 3 peers" in tls[0].summary
    assert "its own truststore" in tls[0].summary
    # with the odd node's log alone, each peer it fails is named: nothing says otherwise
    alone = [
        f.dst_scope
        for f in analyze(observations(odd, "node9.log")).findings
        if f.code == "INTERNODE_TLS_MISMATCH"
    ]
    assert alone == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    # ... unless netcheck's own TLS looks (run --context) verified those peers' certificates
    # against the CA: then the odd node's side is the one at odds, from its log alone
    topology = Topology(
        clusters=(),
        endpoints=tuple(
            Endpoint(name=f"db-{i}", cluster="C", region="r", address=f"10.0.0.{i}")
            for i in (1, 2, 3, 9)
        ),
    )
    looks = tuple(
        TlsRow(
            node=f"db-{i}",
            port=7000,
            handshake=True,
            protocol="TLSv1.3",
            issuer="CN=cluster-ca",
            subject=f"CN=db-{i}",
            sans=(),
            not_after="2027-12-01T00:00:00+00:00",
            days_left=365,
            chain_verified=True,
            client_auth_required=True,
            plaintext_accepted=False,
        )
        for i in (1, 2, 3)
    )
    (named,) = [
        f
        for f in analyze(obs[:1], topology, tls=looks).findings
        if f.code == "INTERNODE_TLS_MISMATCH"
    ]
    assert named.dst_scope == "db-9"
    assert "verified against the CA" in named.summary and "its own truststore" in named.summary


def test_a_node_in_the_ring_the_observer_never_heard_from_is_neither_up_nor_down():
    # nodetool prints `?N` when the failure detector has the node neither live nor unreachable
    # (as in a pasted view of a chart's fresh 3-node cluster)
    text = (
        "$ kubectl exec -it release-cassandra-0 -- nodetool status\n"
        "Datacenter: datacenter1\n=======================\nStatus=Up/Down\n"
        "|/ State=Normal/Leaving/Joining/Moving\n"
        "--  Address       Load       Tokens  Owns (effective)  Host ID"
        "                               Rack\n"
        "UN  10.9.106.229  73.45 KiB  256     77.9%             "
        "78fa1479-7d2a-492e-b4ad-a358d95cea73  rack1\n"
        "?N  10.9.104.70   78.51 KiB  256     61.5%             "
        "207ce07c-d390-4d66-9855-f24a09e62414  rack1\n"
    )
    analysis = analyze(observations(text, "paste.txt"))
    assert {(n.address, n.state) for n in analysis.nodes} == {
        ("10.9.106.229", "UN"),
        ("10.9.104.70", "?N"),
    }
    assert [(f.severity, f.code) for f in analysis.findings] == [
        (Severity.WARNING, "GOSSIP_STATUS_UNKNOWN")
    ]
    assert "10.9.104.70" in analysis.findings[0].summary
    assert "paste.txt:release-cassandra-0" in analysis.findings[0].summary
    assert not analysis.warnings


def _shutdown_then_down(down_times: list[str]) -> str:
    stop = (
        "INFO  [StorageServiceShutdownHook] 2024-05-02 10:00:00,100 Gossiper.java:1506 - "
        "Announcing shutdown\n"
        "INFO  [StorageServiceShutdownHook] 2024-05-02 10:00:00,105 StorageService.java:2248 - "
        "Node /10.9.0.6 state jump to shutdown\n"
    )
    downs = "".join(
        f"INFO  [GossipStage:1] 2024-05-02 {t} Gossiper.java:1035 - InetAddress /10.9.0.6 "
        "is now DOWN\n"
        for t in down_times
    )
    return stop + downs


def test_a_peer_marked_down_right_after_its_shutdown_was_stopped_not_cut_off():
    analysis = analyze(observations(_shutdown_then_down(["10:00:00,110"]), "node.log"))
    assert [(f.severity, f.code) for f in analysis.findings] == [
        (Severity.INFO, "LOG_NODE_SHUT_DOWN")
    ]
    assert "10.9.0.6 announced its shutdown" in analysis.findings[0].summary


def test_a_down_long_after_the_shutdown_is_not_put_on_the_stop():
    # back up and lost again an hour later: that DOWN is not the stop's
    analysis = analyze(
        observations(_shutdown_then_down(["10:00:00,110", "11:02:00,000"]), "node.log")
    )
    assert sorted((f.severity.value, f.code) for f in analysis.findings) == [
        ("info", "LOG_NODE_SHUT_DOWN"),
        ("warning", "LOG_PEERS_MARKED_DOWN"),
    ]
    # a peer's debug.log says it as "Marked /IP:7000 as shutdown"
    debug = (
        "DEBUG [GossipStage:1] 2024-05-02 10:00:00,120 Gossiper.java:610 - "
        "Marked /10.9.0.7:7000 as shutdown\n"
    )
    reading = parse_log(debug)
    assert [(s.signature, s.peer) for s in reading.signatures] == [
        (Signature.SHUTDOWN_ANNOUNCED, "10.9.0.7")
    ]


def test_nodetool_h_names_the_view_unless_it_is_the_local_node():
    remote = sections("$ nodetool -h cassandra02 status -r\nDatacenter: dc1\n")
    assert [(s.kind, s.node) for s in remote] == [("status", "cassandra02")]
    local = sections(
        "$ kubectl exec demo-dc1-r1-sts-0 -- nodetool -h localhost status\nDatacenter: dc1\n"
    )
    assert [(s.kind, s.node) for s in local] == [("status", "demo-dc1-r1-sts-0")]


def test_a_file_over_the_bound_is_read_in_part_and_says_which(tmp_path, monkeypatch):
    """A log that never rolled is read from its newest lines (where a run's trouble is), from
    a line's start; a device from its start; each with a warning naming the file."""
    from netcheck.workflows import gossip as gossip_workflow

    status = (DATA / "c50-lab-cp-dc1-r1-p0-status-drop7000.txt").read_text()
    big = tmp_path / "system.log"
    filler = "INFO  [main] filler line that no parser wants\n"
    big.write_text(filler * 5000 + status)
    limit = len(status) + 2 * len(filler) + 10  # the status, two lines and a piece of one
    monkeypatch.setattr(gossip_workflow, "MAX_FILE_BYTES", limit)
    done = gossip_workflow.analyze_files([str(big)])
    assert done.warnings == (
        f"{big}: larger than {limit} bytes; only its last {limit} bytes were read",
    )
    assert "GOSSIP_DOWN" in {f.code for f in done.analysis.findings}
    text, part = gossip_workflow.read_bounded(str(big))
    assert text.startswith("INFO  [main] filler") and text.endswith(status), text[:80]
    assert text.count("filler") == 2  # the piece of a line before them is left out
    assert "last" in part
    zeros, part = gossip_workflow.read_bounded("/dev/zero", 4096)
    assert len(zeros) == 4096
    assert part == "/dev/zero: more than 4096 bytes; only its first 4096 bytes were read"


@given(data=st.binary(max_size=600), limit=st.integers(1, 400))
@settings(max_examples=300, deadline=None)
def test_any_file_is_read_whole_or_in_part_from_a_line_start_and_said(data, limit):
    """Whatever the bytes: within the bound the file is read whole and nothing is said; over
    it at most `limit` bytes are kept, from the first line that starts inside them when one
    does (its text a suffix of the whole file's), and a warning names the file."""
    import tempfile

    from netcheck.workflows.gossip import read_bounded

    with tempfile.NamedTemporaryFile() as f:
        f.write(data)
        f.flush()
        text, part = read_bounded(f.name, limit)
    if len(data) <= limit:
        assert (text, part) == (data.decode("utf-8", errors="replace"), "")
        return
    assert part == f"{f.name}: larger than {limit} bytes; only its last {limit} bytes were read"
    cut = len(data) - limit
    starts = [i for i in range(max(cut, 1), len(data) + 1) if data[i - 1 : i] == b"\n"]
    start = starts[0] if starts else cut  # no line starts inside: the bytes as they are
    assert text == data[start:].decode("utf-8", errors="replace")
    if starts:
        assert data.decode("utf-8", errors="replace").endswith(text)
