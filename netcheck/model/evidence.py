"""Raw-packet evidence: what came back to crafted packets, hop by hop.

A raw probe sends IPv4 packets the agent builds itself (SYN, TTL-limited SYN, DF SYN with
padding) and records every answer. The diagnosis reads this evidence to say *why* and *where*
a port fails; the matrix outcome is refined from it (timeout -> filtered or prohibited).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class ReplyKind(StrEnum):
    SYN_ACK = "syn_ack"  # the port is open
    RST = "rst"  # nothing listens, or a REJECT with tcp-reset
    TIME_EXCEEDED = "time_exceeded"  # a router on the path (TTL ran out there)
    PROHIBITED = "prohibited"  # ICMP 3/9, 3/10, 3/13: a REJECT rule or a NetworkPolicy
    HOST_UNREACHABLE = "host_unreachable"  # ICMP 3/1: a router cannot deliver to the host
    NET_UNREACHABLE = "net_unreachable"  # ICMP 3/0: a router has no route
    PORT_UNREACHABLE = "port_unreachable"  # ICMP 3/3: a REJECT with icmp-port-unreachable
    FRAG_NEEDED = "frag_needed"  # ICMP 3/4 with the next-hop MTU
    NO_ROUTE = "no_route"  # the sender itself has no route (the kernel refused to send)
    NONE = "none"  # nothing came back within the timeout


@dataclass(frozen=True, kw_only=True)
class Reply:
    kind: ReplyKind
    source: str = ""  # who answered
    ttl: int = 0  # the answer's remaining TTL when it arrived
    rtt_ms: float | None = None
    mtu: int = 0  # next-hop MTU of a frag_needed

    @property
    def answered(self) -> bool:
        return self.kind not in (ReplyKind.NONE, ReplyKind.NO_ROUTE)


@dataclass(frozen=True, kw_only=True)
class Hop:
    ttl: int
    reply: Reply


@dataclass(frozen=True, kw_only=True)
class Trace:
    """A TCP traceroute to one port: one entry per TTL sent, in order."""

    hops: tuple[Hop, ...]

    @property
    def end(self) -> Hop | None:
        """The first answer that was not a router's time-exceeded (the path ended there)."""
        return next(
            (
                h
                for h in self.hops
                if h.reply.answered and h.reply.kind is not ReplyKind.TIME_EXCEEDED
            ),
            None,
        )

    @property
    def routers(self) -> tuple[Hop, ...]:
        stop = self.end.ttl if self.end else math.inf
        return tuple(
            h for h in self.hops if h.reply.kind is ReplyKind.TIME_EXCEEDED and h.ttl < stop
        )

    @property
    def last_answered(self) -> Hop | None:
        """The last router that answered before the path went silent or ended."""
        routers = self.routers
        return routers[-1] if routers else None

    @property
    def first_silent(self) -> int | None:
        """The first TTL after the last answering router that got no answer at all."""
        if self.end is not None:
            return None
        last = self.last_answered.ttl if self.last_answered else 0
        return next((h.ttl for h in self.hops if h.ttl > last and not h.reply.answered), None)


@dataclass(frozen=True, kw_only=True)
class PathMtu:
    """DF probes of decreasing size to one port."""

    local_mtu: int  # the sender's interface MTU towards the peer
    path_mtu: int | None  # the largest packet that crossed (None: nothing crossed)
    smallest_lost: int | None  # the smallest packet that did not (None: all crossed)
    frag_needed_from: str = ""  # the router that answered "fragmentation needed"
    reported_mtu: int = 0  # the MTU it reported

    @property
    def black_hole(self) -> bool:
        """Large packets vanish and no router said "fragmentation needed"."""
        return (
            self.smallest_lost is not None
            and self.path_mtu is not None
            and (not self.frag_needed_from)
        )

    @property
    def reduced(self) -> bool:
        return self.path_mtu is not None and self.path_mtu < self.local_mtu


@dataclass(frozen=True, kw_only=True)
class Latency:
    """N SYNs to one open port: round-trip percentiles and loss."""

    sent: int
    received: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def loss_pct(self) -> float:
        return 0.0 if self.sent == 0 else round(100.0 * (self.sent - self.received) / self.sent, 1)


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of the samples; None without samples."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100.0 * len(ordered)))
    return round(ordered[rank - 1], 3)


@dataclass(frozen=True, kw_only=True)
class CqlNode:
    """One row of system.local or system.peers_v2 (system.peers before 4.0)."""

    address: str  # broadcast_address (local) or peer (peers)
    datacenter: str = ""
    rack: str = ""
    host_id: str = ""
    release_version: str = ""
    schema_version: str = ""


@dataclass(frozen=True, kw_only=True)
class CqlView:
    """What a node's system tables say, read over CQL by the agent next to it: the node itself
    and every peer it keeps (membership, not liveness: a DOWN peer stays in the table)."""

    cluster_name: str
    local: CqlNode
    peers: tuple[CqlNode, ...]
    peers_table: str  # system.peers_v2, or system.peers on 3.x


# how a cql probe's detail starts when the node refused the agent's credentials
CQL_LOGIN_REFUSED = "CQL login refused"
# Cassandra reads roles at QUORUM (LOCAL_ONE for most users since 4.0, QUORUM for the default
# superuser): with replicas unreachable a login fails with this, whatever the credentials.
_QUORUM_LOST = ("Cannot achieve consistency level", "Unavailable")


def login_needs_quorum(detail: str) -> bool:
    """A refused CQL login whose cause is unreachable replicas, not the credentials."""
    return detail.startswith(CQL_LOGIN_REFUSED) and any(w in detail for w in _QUORUM_LOST)


@dataclass(frozen=True, kw_only=True)
class MgmtEndpoint:
    """One entry of the Management API's /api/v0/metadata/endpoints: the node's gossip state of
    one endpoint (the API's map of ApplicationState names to values, plus ENDPOINT_IP and
    IS_ALIVE)."""

    address: str  # ENDPOINT_IP
    alive: bool  # IS_ALIVE: this node's failure detector
    status: str = ""  # STATUS_WITH_PORT (4.0+) or STATUS, the part before ','
    datacenter: str = ""  # DC
    rack: str = ""  # RACK
    host_id: str = ""  # HOST_ID
    schema: str = ""  # SCHEMA
    release_version: str = ""  # RELEASE_VERSION


@dataclass(frozen=True, kw_only=True)
class MgmtView:
    """What the Management API on a database pod's 8080 said, read by the agent next to it.

    ready: /api/v0/probes/readiness answered 200 (Cassandra serves requests). A node that is
    not ready cannot list endpoints either (both go through Cassandra), so endpoints is then
    empty and readiness says why (the HTTP status and body)."""

    ready: bool
    readiness: str  # "OK", or e.g. "HTTP 500: Internal connection to Cassandra closed"
    endpoints: tuple[MgmtEndpoint, ...] = ()
    cluster_name: str = ""  # CLUSTER_NAME, where the API's agent reports it (5.0 and later)


@dataclass(frozen=True, kw_only=True)
class TlsFacts:
    """What an internode port's TLS is (the tls_facts kind: probes/tls_facts.py).

    certificate: the server's leaf certificate, DER in base64 ("" when none was seen); the
    collector reads its subject, issuer, SANs and expiry. chain_verified: the handshake
    verified the chain against the CA the request carried (None: no CA given, or no
    certificate seen). client_auth_required: the server refused to go on without a client
    certificate (mutual TLS); plaintext_accepted: it answered Cassandra's plaintext handshake
    on this port (internode_encryption optional). None where it could not be told.
    """

    handshake: bool
    protocol: str = ""
    certificate: str = ""
    chain_verified: bool | None = None
    verify_error: str = ""
    client_auth_required: bool | None = None
    plaintext_accepted: bool | None = None
