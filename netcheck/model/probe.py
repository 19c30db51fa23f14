"""Probe specs (what to try) and probe results (what happened)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netcheck.model.evidence import (
    CqlView,
    Latency,
    MgmtView,
    PathMtu,
    Reply,
    ReplyKind,
    TlsFacts,
    Trace,
)
from netcheck.model.outcome import Outcome


class ProbeKind(StrEnum):
    TCP = "tcp"  # TCP connect (plus a payload echo where an agent serves the port)
    TLS = "tls"  # TCP connect + TLS handshake (plus echo inside TLS)
    HTTP = "http"  # GET the Management API liveness path (plus echo POST)
    # raw probes (the agent needs NET_RAW): crafted IPv4 packets, see model/evidence.py
    SYN = "syn"  # one SYN: open / refused / filtered / prohibited / unreachable
    TRACE = "trace"  # TCP traceroute: SYNs with TTL 1..count
    PMTU = "pmtu"  # DF SYNs of decreasing size: path MTU and black holes
    LATENCY = "latency"  # count SYNs: round-trip p50/p99 and loss
    # log in on the native port with the agent's credentials, read system.local and peers
    CQL = "cql"
    # GET the Management API's readiness and its node's view of every endpoint (8080)
    MGMT = "mgmt"
    # an internode port's TLS: handshake, certificate, chain against a CA, mutual TLS, plaintext
    TLS_FACTS = "tls_facts"

    @property
    def raw(self) -> bool:
        return self in RAW_KINDS


RAW_KINDS = frozenset({ProbeKind.SYN, ProbeKind.TRACE, ProbeKind.PMTU, ProbeKind.LATENCY})

# Source ports of the tls_facts looks. Each look fails a handshake on purpose (no client
# certificate, a plaintext Initiate) and the node logs it as a peer's failure; leaving from
# these ports (above Linux's default ephemeral range, 32768-60999, so Cassandra's own
# connections never use them) lets the log analysis tell netcheck's looks from a peer's trouble.
LOOK_SOURCE_PORTS = range(61000, 61500)


@dataclass(frozen=True, kw_only=True)
class FollowUp:
    """Raw evidence an agent with CAP_NET_RAW gathers for a plain probe in the same batch.

    If the probe fails: a raw SYN, and a TCP traceroute for the first target of its trace
    group. If it connects: latency (first target to each address) and the path MTU (first
    target of its path-MTU group). Groups are the collector's words; the agent only keeps
    one of each per batch.
    """

    timeout_s: float  # of each raw probe
    trace_hops: int = 0  # 0: no traceroute
    trace_group: str = ""
    latency_count: int = 0  # 0: no latency
    pmtu_group: str = ""  # "": no path MTU


@dataclass(frozen=True, kw_only=True)
class Target:
    """One thing an agent is asked to probe."""

    address: str
    port: int
    kind: ProbeKind = ProbeKind.TCP
    echo: bool = False  # the port is served by a netcheck agent: push a payload through it
    count: int = 0  # trace: the highest TTL; latency: how many SYNs (0: the agent's default)
    follow: FollowUp | None = None  # plain kinds only
    ca_pem: str = ""  # tls_facts: the CA (PEM certificates) to verify the server's chain with


@dataclass(frozen=True, kw_only=True)
class Evidence:
    """What raw probes saw besides the outcome (each kind fills its own field)."""

    reply: Reply | None = None
    trace: Trace | None = None
    path_mtu: PathMtu | None = None
    latency: Latency | None = None
    cql: CqlView | None = None  # the cql kind: the node's system tables
    mgmt: MgmtView | None = None  # the mgmt kind: readiness and the node's endpoint states
    tls: TlsFacts | None = None  # the tls_facts kind


NO_EVIDENCE = Evidence()


@dataclass(frozen=True, kw_only=True)
class TargetResult:
    """What an agent reports for one target."""

    address: str
    port: int
    kind: ProbeKind
    outcome: Outcome
    latency_ms: float | None = None
    detail: str = ""
    local_address: str = ""
    observed_source: str = ""
    evidence: Evidence = NO_EVIDENCE
    followed: tuple[TargetResult, ...] = ()  # raw results of the target's follow-ups


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """One planned probe between two named endpoints."""

    src: str
    dst: str
    port: int
    kind: ProbeKind
    echo: bool = False
    count: int = 0
    ca_pem: str = ""  # tls_facts: the CA to verify the chain with


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    src: str
    dst: str
    port: int
    kind: ProbeKind
    outcome: Outcome
    latency_ms: float | None = None
    detail: str = ""
    evidence: Evidence = NO_EVIDENCE
    # where a netcheck agent served the port: our source address and the one it saw
    local_address: str = ""
    observed_source: str = ""

    @property
    def translated(self) -> bool:
        """The serving agent saw another source address than the one we sent from (NAT)."""
        return bool(self.observed_source) and self.observed_source != self.local_address

    def closed_at(self, address: str) -> bool:
        """Refused, or timed out while the raw SYN beside it got the destination's own RST
        (address: the destination's): the refusal was lost or late on a loaded host, or a
        fault went away between the connect and the raw SYN. The port is closed all the same."""
        if self.outcome is Outcome.REFUSED:
            return True
        reply = self.evidence.reply
        return (
            self.outcome is Outcome.TIMEOUT
            and reply is not None
            and reply.kind is ReplyKind.RST
            and reply.source == address
        )
