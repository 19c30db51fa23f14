"""Every file of tests/data/wild (nodetool, logs and Management API answers as users paste
them; sources in its README) read as `netcheck gossip analyze` reads it: the nodes with
their DC, rack and state, each node's gossip state where gossipinfo speaks, and the exact
findings (severity, code, and the addresses or names the summary must carry)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcheck.diagnosis.gossip import analyze
from netcheck.model.gossip import GossipState, Signature
from netcheck.nodetool.gossipinfo import parse_gossipinfo
from netcheck.nodetool.logs import parse_log
from netcheck.nodetool.paste import observations
from netcheck.nodetool.status import parse_status

WILD = Path(__file__).parent / "data" / "wild"
N = GossipState.NORMAL


@dataclass(frozen=True)
class Expected:
    nodes: set[tuple[str, str, str, str]]  # (address, dc, rack, state as status prints it)
    findings: list[tuple[str, str, tuple[str, ...]]]  # (severity, code, words in the summary)
    gossip: dict[str, GossipState] = field(default_factory=dict)  # newest state per address
    warnings: tuple[str, ...] = ()  # words each warning carries, in order


EXPECTED: dict[str, Expected] = {
    "c3x-status-two-prompts-one-down.txt": Expected(
        nodes={
            ("10.40.80.4", "staging", "rack1", "UN"),
            ("10.40.81.4", "staging", "rack1", "UN"),
            ("10.40.82.4", "staging", "rack1", "UN"),
            ("10.40.83.2", "staging", "rack1", "DN"),
        },
        # one finding for both views, each observer named by its prompt
        findings=[("error", "GOSSIP_DOWN", ("10.40.83.2", ":cassandra-0", ":cassandra-1"))],
    ),
    "c4x-status-kubectl-redacted.txt": Expected(
        nodes={
            ("172.0.123.456", "eu-central", "eu-central-1c", "UN"),
            ("172.0.XYZ.WZY", "eu-central", "eu-central-1b", "DN"),
            ("172.0.345.567", "eu-central", "eu-central-1a", "UN"),
        },
        findings=[("error", "GOSSIP_DOWN", ("172.0.XYZ.WZY", "demo-eu-central-eu-central-1a"))],
        warnings=("172.0.123.456 is no IP address", "172.0.XYZ.WZY", "172.0.345.567"),
    ),
    "c2x-gist-status-describecluster-unreachable.txt": Expected(
        nodes={
            ("10.50.0.182", "DC1", "RAC1", "UN"),
            ("10.50.0.116", "DC1", "RAC1", "UN"),
            ("10.50.0.203", "DC1", "RAC1", "UN"),
            ("10.50.0.188", "DC1", "RAC1", "DN"),
        },
        findings=[("error", "GOSSIP_DOWN", ("10.50.0.188",))],
    ),
    "c30-describecluster-docs-unreachable.txt": Expected(
        nodes={("10.60.205.203", "", "", "DN")},
        findings=[("error", "GOSSIP_DOWN", ("10.60.205.203",))],
    ),
    "c22-describecluster-docs-healthy.txt": Expected(
        nodes={("127.0.0.1", "", "", "UN")}, findings=[]
    ),
    "c21-describecluster-three-nodes.txt": Expected(
        nodes={
            ("10.70.33.227", "", "", "UN"),
            ("10.70.33.228", "", "", "UN"),
            ("10.70.33.229", "", "", "UN"),
        },
        findings=[],
    ),
    "scylla-describecluster-reversed.txt": Expected(
        nodes={("10.70.44.214", "", "", "UN")}, findings=[]
    ),
    "c311-describecluster-course.txt": Expected(nodes={("10.80.0.2", "", "", "UN")}, findings=[]),
    "c40-describecluster-unreachable-stats.txt": Expected(
        nodes={
            ("10.90.1.11", "", "", "UN"),
            ("10.90.2.12", "", "", "UN"),
            ("10.90.3.13", "", "", "DN"),
        },
        findings=[("error", "GOSSIP_DOWN", ("10.90.3.13",))],
    ),
    "c21-gossipinfo-localhost-versions.txt": Expected(
        nodes={("127.0.0.1", "datacenter1", "rack1", "?")},
        gossip={"127.0.0.1": N},
        findings=[],
    ),
    "c21-gossipinfo-no-versions.txt": Expected(
        nodes={("127.0.0.1", "datacenter1", "rack1", "?")},
        gossip={"127.0.0.1": N},
        findings=[],
    ),
    "c22-gossipinfo-shutdown-heartbeat-max.txt": Expected(
        nodes={
            ("10.30.0.142", "datacenter1", "rack1", "?"),
            ("10.30.0.15", "datacenter1", "rack1", "?"),
            ("10.30.0.183", "datacenter1", "rack1", "?"),
        },
        gossip={"10.30.0.142": N, "10.30.0.15": GossipState.SHUTDOWN, "10.30.0.183": N},
        findings=[("error", "NODE_SHUT_DOWN", ("10.30.0.15",))],
    ),
    "scylla-gossipinfo-indented-bare.txt": Expected(
        nodes={
            ("127.0.0.3", "datacenter1", "rack1", "?"),
            ("127.0.0.2", "datacenter1", "rack1", "?"),
        },
        gossip={"127.0.0.3": N, "127.0.0.2": N},
        findings=[],
    ),
    "c40-gossipinfo-ports-leaving.txt": Expected(
        nodes={
            ("10.16.1.11", "dc1", "r1", "?"),
            ("10.16.1.12", "dc1", "r2", "?"),
            ("10.16.1.13", "dc1", "r3", "?"),
        },
        gossip={"10.16.1.11": N, "10.16.1.12": GossipState.LEAVING, "10.16.1.13": N},
        findings=[("warning", "NODE_LEAVING", ("10.16.1.12", "decommission"))],
    ),
    "c40-gossipinfo-removing.txt": Expected(
        nodes={("10.16.2.21", "dc1", "r1", "?"), ("10.16.2.22", "dc1", "r2", "?")},
        gossip={"10.16.2.21": N, "10.16.2.22": GossipState.REMOVING},
        # the coordinator is the node 10.16.2.21 (its host id)
        findings=[("warning", "NODE_BEING_REMOVED", ("10.16.2.22", "host id"))],
    ),
    "c311-gossipinfo-left.txt": Expected(
        nodes={("10.16.3.31", "us-east", "1a", "?"), ("10.16.3.32", "us-east", "1b", "?")},
        gossip={"10.16.3.31": N, "10.16.3.32": GossipState.LEFT},
        findings=[("info", "NODE_LEFT", ("10.16.3.32",))],
    ),
    "c41-gossipinfo-hibernate.txt": Expected(
        nodes={("10.16.4.41", "dc1", "r1", "?"), ("10.16.4.44", "dc1", "r2", "?")},
        gossip={"10.16.4.41": N, "10.16.4.44": GossipState.HIBERNATE},
        findings=[("warning", "NODE_HIBERNATING", ("10.16.4.44", "replace_address"))],
    ),
    "c41-gossipinfo-boot-replace.txt": Expected(
        nodes={("10.16.4.42", "dc1", "r3", "?"), ("10.16.4.44", "dc1", "r2", "?")},
        gossip={"10.16.4.42": N, "10.16.4.44": GossipState.BOOT_REPLACE},
        findings=[("warning", "NODE_REPLACING", ("10.16.4.44", "10.16.4.43:7000"))],
    ),
    "c50-gossipinfo-ipv6.txt": Expected(
        nodes={("2001:db8:10::11", "dc1", "r1", "?"), ("2001:db8:10::12", "dc1", "r2", "?")},
        gossip={"2001:db8:10::11": N, "2001:db8:10::12": N},
        findings=[],
    ),
    "c40-system-tls-transition-closed.log": Expected(
        nodes=set(),
        findings=[
            ("error", "INTERNODE_TLS_MISMATCH", ("10.244.2.17", "closes connections")),
            ("error", "INTERNODE_TLS_MISMATCH", ("10.244.3.21", "2 internode TLS")),
        ],
    ),
    "c40-system-fatclient-refused.log": Expected(
        nodes=set(),
        findings=[
            # the line says who logged it: 192.168.205.13, not the file's name
            (
                "warning",
                "LOG_INTERNODE_CONNECT_ERRORS",
                ("2x internode connect refused logged by 192.168.205.13 towards 192.168.205.5",),
            ),
            ("info", "GOSSIP_FAT_CLIENT_REMOVED", ("192.168.205.5",)),
        ],
    ),
    "c40-system-notsslrecord-inbound.log": Expected(
        nodes=set(),
        findings=[("error", "INTERNODE_TLS_MISMATCH", ("10.11.0.5", "not an SSL/TLS record"))],
    ),
    "c3x-console-seed-dns-no-seeds.log": Expected(
        nodes=set(),
        findings=[
            (
                "error",
                "SEED_UNRESOLVED",
                ("cassandra-0.cassandra.default.svc.cluster.local", "stopped at start-up"),
            )
        ],
    ),
    "c3x-console-seed-dns-two.log": Expected(
        nodes=set(),
        findings=[
            ("warning", "SEED_UNRESOLVED", ("cassandra-0.cassandra", "cassandra-1.cassandra"))
        ],
    ),
    "c311-kubectl-timestamps-healthy.log": Expected(nodes=set(), findings=[]),
    "c311-debug-outbound-timeouts.log": Expected(
        nodes=set(),
        findings=[
            (
                "warning",
                "LOG_INTERNODE_CONNECT_ERRORS",
                ("1x internode connect failed", "10.13.2.21"),
            ),
            (
                "warning",
                "LOG_INTERNODE_CONNECT_ERRORS",
                ("2x internode connect timeout", "10.13.2.21"),
            ),
            ("warning", "LOG_PEERS_MARKED_DOWN", ("10.13.2.21",)),
        ],
    ),
    "c311-system-ssl-outbound-untrusted.log": Expected(
        nodes=set(),
        findings=[("error", "INTERNODE_TLS_MISMATCH", ("10.13.3.31", "PKIX path building failed"))],
    ),
    "c41-system-down-and-alone.log": Expected(
        nodes=set(),
        findings=[
            ("info", "SEED_STARTED_ALONE", ("own seed",)),
            ("warning", "LOG_PEERS_MARKED_DOWN", ("10.14.1.12", "10.14.1.13")),
        ],
    ),
    "c41-system-unable-to-gossip.log": Expected(
        nodes=set(), findings=[("error", "UNABLE_TO_GOSSIP", ("could not gossip",))]
    ),
    # a reset during Cassandra's own handshake is no TLS failure (no INTERNODE_TLS_MISMATCH)
    "c41-system-handshake-reset.log": Expected(
        nodes=set(),
        findings=[("warning", "LOG_INTERNODE_CONNECT_ERRORS", ("handshake failed", "10.14.3.31"))],
    ),
    "c3x-status-openebs-two-nodes.txt": Expected(
        nodes={
            ("10.17.0.6", "DC1-K8Demo", "Rack1-K8Demo", "UN"),
            ("10.17.0.3", "DC1-K8Demo", "Rack1-K8Demo", "UN"),
        },
        findings=[],
    ),
    # every line indented by 4 and a root prompt (`# nodetool status`) that reads as a comment
    "c311-status-course-indented.txt": Expected(
        nodes={("10.18.0.2", "datacenter1", "rack1", "UN")}, findings=[]
    ),
    # dsetool's table with the header's first letter cut off in the paste: DSE's default DC
    "dse60-dsetool-status-cut-header.txt": Expected(
        nodes={("10.19.0.1", "Cassandra", "rack1", "UN")}, findings=[]
    ),
    # a zombie endpoint: DN in UNKNOWN_DC with a null host id, beside two healthy DCs
    "scylla-status-unknown-dc-null-hostid.txt": Expected(
        nodes={
            ("10.21.7.20", "UNKNOWN_DC", "UNKNOWN_RACK", "DN"),
            ("10.21.7.89", "srv", "us-east-1a", "UN"),
            ("10.21.1.121", "work", "us-east-1b", "UN"),
            ("10.21.7.55", "work", "us-east-1a", "UN"),
            ("10.21.1.35", "work", "us-east-1b", "UN"),
        },
        findings=[
            ("error", "GOSSIP_DOWN", ("10.21.7.20",)),
            ("warning", "NODE_PLACE_UNKNOWN", ("10.21.7.20 in UNKNOWN_DC",)),
        ],
    ),
    # every line behind the prefix of Scylla's test harness; the paste ends mid-table
    "scylla-sct-status-unknown-dc.txt": Expected(
        nodes={("10.22.8.26", "UNKNOWN_DC", "UNKNOWN_RACK", "UN")},
        findings=[("warning", "NODE_PLACE_UNKNOWN", ("10.22.8.26",))],
    ),
    # blocks without DC or RACK (a test's sample), one `hostname/IP` header
    "c4x-gossipinfo-sidecar-hostname-header.txt": Expected(
        nodes={("127.0.0.3", "", "", "?"), ("127.0.0.2", "", "", "?"), ("127.0.0.1", "", "", "?")},
        gossip={"127.0.0.3": N, "127.0.0.2": N, "127.0.0.1": N},
        findings=[],
    ),
    "c417-gossipinfo-shutdown-rpc-not-ready.txt": Expected(
        nodes={
            ("10.23.201.12", "cs-5e21a90b77", "default", "?"),
            ("10.23.201.227", "cs-5e21a90b77", "default", "?"),
        },
        gossip={"10.23.201.12": N, "10.23.201.227": GossipState.SHUTDOWN},
        findings=[("error", "NODE_SHUT_DOWN", ("10.23.201.227",))],
    ),
    # 5.0.7: the removed node's heartbeat is 2147483647 too, yet its state is `removing`
    "c507-gossipinfo-removing-trimmed.txt": Expected(
        nodes={("10.24.0.1", "", "", "?"), ("10.24.0.4", "", "", "?"), ("10.24.0.40", "", "", "?")},
        gossip={"10.24.0.1": N, "10.24.0.4": GossipState.REMOVING, "10.24.0.40": N},
        findings=[
            (
                "warning",
                "NODE_BEING_REMOVED",
                ("10.24.0.4", "5a2d7e94-0b18-4c63-9f41-d8e3a6b07c25"),
            )
        ],
    ),
    "mgmtapi-c401-endpoints.json": Expected(
        nodes={("10.25.0.2", "datacenter1", "rack1", "UN")},
        gossip={"10.25.0.2": N},
        findings=[],
    ),
    # a replacement killed half way stays hibernating in its peers' gossip; the node it
    # replaced announced its shutdown (heartbeat 2147483647, its STATUS cut off the paste)
    "scylla-gossipinfo-hibernate-failed-replace.txt": Expected(
        nodes={("127.0.0.3", "dc1", "rack1", "?"), ("127.0.0.2", "", "", "?")},
        gossip={"127.0.0.3": GossipState.HIBERNATE, "127.0.0.2": GossipState.SHUTDOWN},
        findings=[
            ("warning", "NODE_HIBERNATING", ("127.0.0.3",)),
            ("error", "NODE_SHUT_DOWN", ("127.0.0.2",)),
        ],
    ),
    "mgmtapi-c3116-endpoints.json": Expected(
        nodes={("10.15.90.45", "dtcntr", "r0", "UN"), ("10.15.92.102", "dtcntr", "r0", "UN")},
        gossip={"10.15.90.45": N, "10.15.92.102": N},
        findings=[],
    ),
    # a paste a document converter turned into Markdown: `\|/ State`, `\--  Address`, bold
    # prompt parts, a blank line after every line and each row wrapped before its host id
    "c311-status-pandoc-wrapped-down.txt": Expected(
        nodes={
            ("10.41.39.95", "dc1", "r2", "UN"),
            ("10.41.2.204", "dc1", "r3", "DN"),
            ("10.41.21.250", "dc1", "r1", "UN"),
        },
        # the observer named by the prompt's host
        findings=[("error", "GOSSIP_DOWN", ("10.41.2.204", ":ip-10-41-39-95"))],
    ),
    # the stopped node's own log and a peer's: the peer's DOWN is the stop's, not the network's
    "c3x-system-stop-and-peer-down.log": Expected(
        nodes=set(),
        findings=[("info", "LOG_NODE_SHUT_DOWN", ("10.77.0.6", "announced its shutdown"))],
    ),
    # three nodes on one address told apart by their storage ports (`-pp`), one unreachable
    "c403-describecluster-pp-one-ip-three-ports.txt": Expected(
        nodes={
            ("127.0.0.1:9000", "", "", "UN"),
            ("127.0.0.1:7000", "", "", "UN"),
            ("127.0.0.1:8100", "", "", "DN"),
        },
        findings=[("error", "GOSSIP_DOWN", ("127.0.0.1:8100",))],
    ),
    "c3x-describecluster-bitnami-three-unreachable.txt": Expected(
        nodes={
            ("10.88.38.33", "", "", "UN"),
            ("10.88.10.115", "", "", "UN"),
            ("10.88.37.235", "", "", "UN"),
            ("10.88.39.182", "", "", "DN"),
            ("10.88.10.17", "", "", "DN"),
            ("10.88.31.56", "", "", "DN"),
        },
        findings=[("error", "GOSSIP_DOWN", ("10.88.39.182", "10.88.10.17", "10.88.31.56"))],
    ),
    # `KB` loads, `?` ownership and nodetool's closing note
    "c2x-status-kubectl-owns-note.txt": Expected(
        nodes={("10.17.0.7", "datacenter1", "rack1", "UN")}, findings=[]
    ),
    # loads in bytes without a unit; the paste goes on with another command's output
    "scylla-status-down-note-then-curl.txt": Expected(
        nodes={
            ("127.0.0.1", "datacenter1", "rack1", "UN"),
            ("127.0.0.2", "datacenter1", "rack1", "DN"),
            ("127.0.0.3", "datacenter1", "rack1", "UN"),
        },
        findings=[("error", "GOSSIP_DOWN", ("127.0.0.2",))],
    ),
    # `Datacenter: ` with no name and a rack printed empty: read as such, no warning
    "scylla-status-empty-dc-and-rack.txt": Expected(
        nodes={("127.0.0.1", "", "", "UN")}, findings=[]
    ),
    "c3x-system-unable-to-gossip-bitnami.log": Expected(
        nodes=set(), findings=[("error", "UNABLE_TO_GOSSIP", ("could not gossip",))]
    ),
    # the benign form: a seed alone at start-up goes on
    "c3x-system-alone-in-own-seed-list.log": Expected(
        nodes=set(), findings=[("info", "SEED_STARTED_ALONE", ("own seed",))]
    ),
    "c40-system-now-down-ccm.log": Expected(
        nodes=set(), findings=[("warning", "LOG_PEERS_MARKED_DOWN", ("127.0.0.2",))]
    ),
    # a test's sample: STATUS and STATUS_WITH_PORT; the last block's disagree and the one with
    # the port wins
    "sidecar-gossipinfo-leaving-fixture.txt": Expected(
        nodes={
            (a, "", "", "?")
            for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.1", "127.0.1.2")
        },
        gossip={
            "127.0.0.1": N,
            "127.0.0.2": GossipState.LEAVING,
            "127.0.0.3": N,
            "127.0.0.4": GossipState.LEAVING,
            "127.0.1.1": N,
            "127.0.1.2": GossipState.LEAVING,
        },
        findings=[
            ("warning", "NODE_LEAVING", ("127.0.0.2",)),
            ("warning", "NODE_LEAVING", ("127.0.0.4",)),
            ("warning", "NODE_LEAVING", ("127.0.1.2",)),
        ],
    ),
    # every address edited into `x.x.x.x`: the rows cannot be told apart, and it says so
    "c4x-status-k8ssandra-two-dcs-redacted.txt": Expected(
        nodes={("x.x.x.x", "dc1", "rack1", "UN")},
        findings=[],
        warnings=("x.x.x.x is no IP address", "3 rows with the address x.x.x.x"),
    ),
    "dse68-dsetool-status-cass-operator.txt": Expected(
        nodes={
            ("10.21.21.74", "dc1", "rack1", "UN"),
            ("10.21.39.9", "dc1", "rack1", "UN"),
            ("10.21.48.10", "dc1", "rack1", "UN"),
        },
        findings=[],
    ),
    # DSE's nodetool status prints dsetool's table; a rack as wide as its column
    "dse6x-nodetool-status-workload-two-views.txt": Expected(
        nodes={
            ("10.30.0.2", "west-side", "hakuna-matata", "UN"),
            ("10.30.0.3", "west-side", "hakuna-matata", "UN"),
            ("10.30.0.4", "east-side", "hakuna-matata", "UN"),
            ("10.30.0.5", "east-side", "hakuna-matata", "UN"),
        },
        findings=[],
    ),
    # dsetool's Server ID column before the address, the spacing collapsed to one space
    "dse-dsetool-status-server-id-collapsed.txt": Expected(
        nodes={
            ("127.0.0.2", "east-side", "hakuna-matata", "UN"),
            ("127.0.0.1", "west-side", "hakuna-matata", "UN"),
        },
        findings=[],
    ),
    # a node joining a 3.x cluster: handshakes, UP, JOINING steps; nothing to find
    "c3x-system-node-joins-healthy.log": Expected(nodes=set(), findings=[]),
    # two nodes on one address told apart by port (`-pp`), no warning about a repeated address
    "c403-status-pp-one-ip-two-ports.txt": Expected(
        nodes={
            ("127.0.0.1:7000", "datacenter1", "rack1", "UN"),
            ("127.0.0.1:8000", "datacenter1", "rack1", "UN"),
        },
        findings=[],
    ),
    # `-r` names instead of addresses, the table cut by grep to one row; `-h` names the view
    "c4x-status-r-grep-down.txt": Expected(
        nodes={("cassandra01.internal.example.org", "", "rack1", "DN")},
        findings=[("error", "GOSSIP_DOWN", ("cassandra01.internal.example.org", ":cassandra02"))],
        warnings=("row before any 'Datacenter:' header",),
    ),
}


def test_every_file_has_its_expectations_and_the_readme_names_it():
    files = {p.name for p in WILD.iterdir() if p.name != "README.md"}
    assert files == set(EXPECTED)
    readme = (WILD / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in files)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_as_pasted(name: str) -> None:
    expected = EXPECTED[name]
    obs = observations((WILD / name).read_text(), name)
    analysis = analyze(obs)
    assert {(n.address, n.datacenter, n.rack, n.state) for n in analysis.nodes} == expected.nodes
    gossip = {g.address: g.state for o in obs for g in o.gossip_endpoints or ()}
    assert gossip == expected.gossip
    got = sorted((f.severity.value, f.code, f.summary) for f in analysis.findings)
    want = sorted(expected.findings, key=lambda f: (f[0], f[1], f[2]))
    assert [(s, c) for s, c, _ in got] == [(s, c) for s, c, _ in sorted(want)], got
    for (_, _, summary), (_, code, words) in zip(got, sorted(want), strict=True):
        assert all(w in summary for w in words), (code, words, summary)
    assert len(analysis.warnings) == len(expected.warnings), analysis.warnings
    for warning, words in zip(analysis.warnings, expected.warnings, strict=True):
        assert words in warning


def test_gossip_analyze_reads_every_file_without_a_traceback_or_a_stray_line(tmp_path):
    """The CLI on each file: a verdict exit code (0 or 1), a JSON document, and no
    "not understood" warning for any line of the outputs. The command runs in this process
    (click's runner: the same command, options and exit, without starting Python 59 times);
    one file also goes through a process of its own, as a user runs it."""
    from click.testing import CliRunner

    from netcheck.cli.main import main

    runner = CliRunner()
    for name in sorted(EXPECTED):
        got = runner.invoke(main, ["gossip", "analyze", "-o", "json", str(WILD / name)])
        assert got.exception is None or isinstance(got.exception, SystemExit), (
            name,
            got.exc_info,
        )
        assert got.exit_code in (0, 1), (name, got.stderr)
        doc = json.loads(got.stdout)
        assert not [w for w in doc["warnings"] if "not understood" in w], (name, doc["warnings"])
        errors = [f for f in doc["findings"] if f["severity"] == "error"]
        assert got.exit_code == (1 if errors else 0), name
    first = sorted(EXPECTED)[0]
    proc = subprocess.run(
        [sys.executable, "-m", "netcheck", "gossip", "analyze", "-o", "json", str(WILD / first)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr
    assert json.loads(proc.stdout) == json.loads(
        runner.invoke(main, ["gossip", "analyze", "-o", "json", str(WILD / first)]).stdout
    )


# --- properties of the readers behind these files ---------------------------------------------

_IPV4 = st.ip_addresses(v=4).map(str)
_IPV6 = st.ip_addresses(v=6).map(str)
_STATES = st.sampled_from(
    [
        ("NORMAL,-1234", GossipState.NORMAL),
        ("shutdown,true", GossipState.SHUTDOWN),
        ("LEAVING,42", GossipState.LEAVING),
        ("LEFT,42,1700000000000", GossipState.LEFT),
        ("MOVING,42", GossipState.MOVING),
        ("removing,5b2a9c1e-0f3d-4c6e-9a57-1d2e3f4a5b61", GossipState.REMOVING),
        ("removed,5b2a9c1e-0f3d-4c6e-9a57-1d2e3f4a5b61,1700000000000", GossipState.REMOVED),
        ("hibernate,true", GossipState.HIBERNATE),
        ("BOOT,42", GossipState.BOOT),
        ("BOOT_REPLACE,10.0.0.9:7000", GossipState.BOOT_REPLACE),
    ]
)


@given(
    address=st.one_of(_IPV4, _IPV6),
    port=st.one_of(st.none(), st.integers(1, 65535)),
    host=st.sampled_from(["", "/", "localhost/", "cassandra-0.cassandra/"]),
    indent=st.sampled_from(["", " ", "    ", "\t"]),
    versioned=st.booleans(),
    status=_STATES,
    with_port=st.booleans(),
)
def test_every_gossipinfo_header_form_and_state_reads_the_same(
    address, port, host, indent, versioned, status, with_port
):
    """A block's address is read from `/IP`, `/IP:port`, `/[IPv6]:port`, `hostname/IP` and a
    bare `IP`, indented or not; its state from STATUS (or STATUS_WITH_PORT, whichever comes
    first), versioned or not; a line of the block never reads as another header."""
    shown = f"[{address}]" if ":" in address and port is not None else address
    head = f"{indent}{host}{shown}" + (f":{port}" if port is not None else "")
    value, state = status
    v = "7:" if versioned else ""
    body = [f"{indent}  generation:1700000000", f"{indent}  heartbeat:12"]
    keys = [f"STATUS:{v}{value.split(':')[0]}", f"DC:{v}DC1", f"RACK:{v}r1"]
    if with_port:
        keys.insert(0, f"STATUS_WITH_PORT:{v}{value}")
    text = "\n".join([head, *body, *(f"{indent}  {k}" for k in keys)]) + "\n"
    endpoints, warnings = parse_gossipinfo(text)
    assert warnings == []
    assert [(e.address, e.state, e.datacenter, e.rack) for e in endpoints] == [
        (address, state, "DC1", "r1")
    ]


@given(
    prefix=st.sampled_from(
        ["", "2020-10-23T08:08:04.060553409Z ", "[pod/demo-dc1-r1-sts-0/cassandra] ", ""]
    ),
    level=st.sampled_from(["INFO ", "WARN ", "ERROR", "DEBUG"]),
    peer=_IPV4,
    port=st.integers(1, 65535),
)
def test_a_log_line_reads_the_same_behind_any_tool_prefix(prefix, level, peer, port):
    line = (
        f"{prefix}{level} [GossipTasks:1] 2023-02-10 09:05:42,001 Gossiper.java:1329 - "
        f"InetAddress /{peer}:{port} is now DOWN\n"
    )
    reading = parse_log(line)
    assert [(s.signature, s.peer) for s in reading.signatures] == [(Signature.MARKED_DOWN, peer)]


@given(st.text(max_size=300))
def test_a_saved_body_that_is_not_the_management_apis_is_one_warning(text):
    """Anything that starts like JSON is read as an endpoints answer: the view, or one
    warning naming the file (deep nesting included), never an exception."""
    (ob,) = observations("{" + text, "node.json")
    assert (ob.mgmt is None) == (len(ob.warnings) == 1)
    assert all(w.startswith("node.json: ") for w in ob.warnings)


def test_deeply_nested_json_is_a_warning_not_a_crash():
    (ob,) = observations("{" + '"entity": ' + "[" * 100_000, "node.json")
    assert ob.mgmt is None and "not JSON" in ob.warnings[0]


_STATUS_HEAD = (
    "Datacenter: {dc}\n=======================\nStatus=Up/Down\n"
    "|/ State=Normal/Leaving/Joining/Moving\n"
    "--  Address     Load       Tokens  Owns (effective)  Host ID"
    "                               Rack\n"
)


def _as_markdown(text: str, wrap: bool) -> str:
    """What a document converter makes of a terminal paste: punctuation escaped, a blank
    line after every line, and (`wrap`) each row broken before its host id."""
    out = []
    for line in text.splitlines():
        escaped = line.replace("|", "\\|")
        if escaped.startswith("-"):
            escaped = "\\" + escaped
        host_id = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", escaped)
        if wrap and host_id:
            escaped = escaped[: host_id.start()] + "\n" + escaped[host_id.start() :]
        out += [escaped, ""]
    return "\n".join(out)


@given(
    rows=st.lists(
        st.tuples(_IPV4, st.sampled_from(["UN", "DN", "UL", "UJ"]), st.uuids()),
        min_size=1,
        max_size=5,
        unique_by=lambda r: r[0],
    ),
    dc=st.sampled_from(["dc1", "eu-west", "DC1-K8Demo"]),
    rack=st.sampled_from(["r1", "rack1", "us-east-1a"]),
    wrap=st.booleans(),
)
def test_a_status_table_reads_the_same_through_a_document_converter(rows, dc, rack, wrap):
    plain = _STATUS_HEAD.format(dc=dc) + "".join(
        f"{state}  {address:<14}  73.45 KiB  256     77.9%             {host_id}  {rack}\n"
        for address, state, host_id in rows
    )
    converted = _as_markdown(plain, wrap)
    got, warnings = parse_status(converted)
    want, _ = parse_status(plain)
    assert warnings == []
    assert got == want
    assert [(r.address, r.state, r.datacenter, r.rack, r.host_id) for r in got] == [
        (address, state, dc, rack, str(host_id)) for address, state, host_id in rows
    ]
