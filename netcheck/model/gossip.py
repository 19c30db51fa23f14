"""What Cassandra says about itself: nodetool outputs and log signatures, as one observer saw them.

An observer is a node (live collection: the pod nodetool ran in) or a saved file (offline
analysis). Each node forms its own up/down view of every other; comparing views is the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netcheck.model.evidence import CqlView, MgmtEndpoint, MgmtView
from netcheck.model.findings import Finding
from netcheck.model.outcome import Outcome

# nodetool status: Status U/D + State N(ormal) L(eaving) J(oining) M(oving); DSE adds S(topped)
DOWN_STATES = frozenset({"DN", "DL", "DJ", "DM", "DS"})
# the internode ports of Cassandra 4.0+: 7000 always, 7001 only with the legacy SSL port on
STORAGE_PORT = 7000
SSL_STORAGE_PORT = 7001
NATIVE_PORT = 9042  # CQL (9142 with client TLS on a separate port)
MGMT_API_PORT = 8080  # the Management API next to Cassandra (k8ssandra, Mission Control)


@dataclass(frozen=True, kw_only=True)
class StatusRow:
    """One row of `nodetool status` (or DSE's `dsetool status`)."""

    address: str
    state: str  # as printed: UN, DN, UJ, ...
    datacenter: str
    rack: str = ""
    host_id: str = ""
    load: str = ""
    owns: str = ""
    port: int | None = None  # with -pp
    hostname: str = ""  # with -r, when the address column held a name


@dataclass(frozen=True, kw_only=True)
class SchemaVersion:
    version: str  # a schema UUID, or UNREACHABLE
    addresses: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class DatacenterCount:
    datacenter: str
    nodes: int
    down: int


@dataclass(frozen=True, kw_only=True)
class ClusterDescription:
    """`nodetool describecluster`: the pre-4.0 block, plus the 4.0+ stats when present."""

    name: str = ""
    snitch: str = ""
    schema_versions: tuple[SchemaVersion, ...] = ()
    unreachable: tuple[str, ...] = ()
    live: int | None = None
    unreachable_count: int | None = None
    datacenters: tuple[DatacenterCount, ...] = ()
    database_versions: tuple[SchemaVersion, ...] = ()

    @property
    def agreed_versions(self) -> tuple[SchemaVersion, ...]:
        return tuple(v for v in self.schema_versions if v.version != "UNREACHABLE")


class GossipState(StrEnum):
    """A node's gossip STATUS as Cassandra's StorageService moves it (2.1 to 5.0):

        BOOT ------------------------------> NORMAL <-> MOVING
        hibernate -> BOOT_REPLACE ---------> NORMAL -> LEAVING -> LEFT
                                             NORMAL -> removing -> removed
        any state -> shutdown (announced at stop; a restart starts again at BOOT or NORMAL)

    Only NORMAL serves its ranges as a full member."""

    BOOT = "BOOT"
    BOOT_REPLACE = "BOOT_REPLACE"
    HIBERNATE = "hibernate"
    NORMAL = "NORMAL"
    MOVING = "MOVING"
    LEAVING = "LEAVING"
    LEFT = "LEFT"
    REMOVING = "removing"
    REMOVED = "removed"
    SHUTDOWN = "shutdown"
    UNKNOWN = "?"

    @classmethod
    def of(cls, status: str) -> GossipState:
        word = status.split(",", 1)[0].strip()
        for state in cls:
            if state.value.lower() == word.lower():
                return state
        return cls.UNKNOWN

    @property
    def stage(self) -> int:
        """How far along its life the state is: of two views of one generation, the later
        stage is the newer news (a node never goes back from LEFT to LEAVING)."""
        return _STAGES[self]


_STAGES = {
    GossipState.UNKNOWN: 0,
    GossipState.HIBERNATE: 1,
    GossipState.BOOT: 2,
    GossipState.BOOT_REPLACE: 2,
    GossipState.NORMAL: 3,
    GossipState.MOVING: 4,
    GossipState.LEAVING: 4,
    GossipState.REMOVING: 4,
    GossipState.LEFT: 5,
    GossipState.REMOVED: 5,
    GossipState.SHUTDOWN: 6,
}
# the heartbeat a node sets as it announces its shutdown (Integer.MAX_VALUE)
SHUTDOWN_HEARTBEAT = 2**31 - 1


@dataclass(frozen=True, kw_only=True)
class GossipEndpoint:
    """One endpoint of `nodetool gossipinfo` (or of the Management API's endpoint states)."""

    address: str
    status: str = ""  # NORMAL, LEAVING, LEFT, shutdown, hibernate, BOOT... (value before ',')
    status_detail: str = ""  # what follows the state: a token, a host id, a replaced address
    datacenter: str = ""
    rack: str = ""
    host_id: str = ""
    schema: str = ""
    release_version: str = ""
    generation: int | None = None
    heartbeat: int | None = None
    removal_coordinator: str = ""  # REMOVAL_COORDINATOR: the host id removing this node
    alive: bool | None = None  # the Management API's IS_ALIVE; gossipinfo does not say

    @property
    def state(self) -> GossipState:
        if self.heartbeat == SHUTDOWN_HEARTBEAT and not self.status:
            return GossipState.SHUTDOWN
        return GossipState.of(self.status)


class Signature(StrEnum):
    """Internode trouble a Cassandra log shows, counted per peer."""

    CONNECT_TIMEOUT = "connect_timeout"  # outbound [no-channel] failed to connect: timed out
    CONNECT_REFUSED = "connect_refused"
    NO_ROUTE = "no_route"
    CONNECT_FAILED = "connect_failed"  # failed to connect, reason not in the log
    TLS_HANDSHAKE = "tls_handshake"  # a peer's handshake failed here (not TLS, bad cert...)
    TLS_DISABLED_HERE = "tls_disabled_here"  # this node refused a peer's TLS: it has none
    # the peer answered this node's handshake with a TLS alert (SSLV3_ALERT_CERTIFICATE_EXPIRED,
    # TLSV1_ALERT_CERTIFICATE_REQUIRED, "Received fatal alert: ..."): the peer refused this
    # node's side (its certificate), so this node is the one to look at
    TLS_REFUSED_BY_PEER = "tls_refused_by_peer"
    # "Certificate for KEYSTORE expired on DATE" at start-up: this node's own certificate
    CERT_EXPIRED_HERE = "cert_expired_here"
    # an inbound handshake that failed for a reason that is not TLS (reset, timeout, version)
    HANDSHAKE_FAILED = "handshake_failed"
    MARKED_DOWN = "marked_down"  # gossip: InetAddress PEER is now DOWN
    # a node stopped on purpose and told gossip: "Node /PEER state jump to shutdown" in its
    # own log, "Marked /PEER as shutdown" in its peers' debug.log (peer: the stopped node)
    SHUTDOWN_ANNOUNCED = "shutdown_announced"
    UNABLE_TO_GOSSIP = "unable_to_gossip"  # the node could not reach any seed (no peer)
    # a seed reached no other seed at start-up and went on alone ("continuing anyway")
    STARTED_ALONE = "started_alone"
    SEED_UNRESOLVED = "seed_unresolved"  # "Seed provider couldn't lookup host" (peer: the name)
    NO_SEEDS = "no_seeds"  # "The seed provider lists no seeds": the node stopped at start-up
    FAT_CLIENT_REMOVED = "fat_client_removed"  # a non-member went silent and left gossip
    CONSISTENCY = "consistency"  # Cannot achieve consistency level (client side, no peer)

    @property
    def connect(self) -> bool:
        return self in CONNECT_SIGNATURES


CONNECT_SIGNATURES = frozenset(
    {
        Signature.CONNECT_TIMEOUT,
        Signature.CONNECT_REFUSED,
        Signature.NO_ROUTE,
        Signature.CONNECT_FAILED,
        Signature.HANDSHAKE_FAILED,
    }
)


@dataclass(frozen=True, kw_only=True)
class LogSignature:
    signature: Signature
    peer: str  # the peer's address, "" for node-level signatures
    count: int
    first: str = ""  # timestamps as logged
    last: str = ""
    detail: str = ""  # one sample reason, e.g. "not an SSL/TLS record"
    # the logging node's own address where the line names it (4.0+: `LOCAL->PEER-...`), so a
    # log is placed by what it says, not by the name of the file it came in
    local: str = ""


@dataclass(frozen=True, kw_only=True)
class Listener:
    """`Listening on address: (...:7000), nic: eth0, encryption: ...` at start-up."""

    address: str
    port: int
    encryption: str


@dataclass(frozen=True, kw_only=True)
class ReadFailure:
    """A read by the agent (CQL, Management API) that did not happen: the probe's outcome and
    detail."""

    outcome: Outcome
    detail: str

    def __str__(self) -> str:
        return f"{self.outcome.value}: {self.detail}"


@dataclass(frozen=True, kw_only=True)
class Observation:
    """Everything one observer's outputs said. None: that output was not given."""

    observer: str
    observer_address: str = ""
    status: tuple[StatusRow, ...] | None = None
    description: ClusterDescription | None = None
    gossip: tuple[GossipEndpoint, ...] | None = None
    logs: tuple[LogSignature, ...] | None = None
    listeners: tuple[Listener, ...] = ()
    warnings: tuple[str, ...] = ()  # lines that could not be read, one line each
    cql: CqlView | None = None  # system.local and system.peers_v2, read by the agent
    cql_failure: ReadFailure | None = None  # why the agent could not read them
    mgmt: MgmtView | None = None  # the Management API's readiness and endpoint states
    mgmt_failure: ReadFailure | None = None  # why the agent could not read them

    @property
    def status_rows(self) -> tuple[StatusRow, ...] | None:
        """nodetool status; where it was not run, the Management API's endpoint states."""
        if self.status is not None:
            return self.status
        if self.mgmt is not None and self.mgmt.endpoints:
            return tuple(status_row(e) for e in self.mgmt.endpoints)
        return None

    @property
    def view_source(self) -> str:
        """Where status_rows come from ("" when this observer has no view)."""
        if self.status is not None:
            return "nodetool"
        if self.mgmt is not None and self.mgmt.endpoints:
            return "management_api"
        return "describecluster" if self.description is not None else ""

    @property
    def gossip_endpoints(self) -> tuple[GossipEndpoint, ...] | None:
        """nodetool gossipinfo; where it was not run, the Management API's endpoint states."""
        if self.gossip is not None:
            return self.gossip
        if self.mgmt is not None and self.mgmt.endpoints:
            return tuple(gossip_endpoint(e) for e in self.mgmt.endpoints)
        return None


# gossip STATUS values as nodetool status prints their state letter
_STATE_LETTER = {
    "NORMAL": "N",
    "shutdown": "N",  # announced its shutdown: DN in nodetool status
    "BOOT": "J",
    "BOOT_REPLACE": "J",
    "hibernate": "J",  # a replacing node
    "LEAVING": "L",
    "LEFT": "L",
    "removing": "L",
    "removed": "L",
    "MOVING": "M",
}


def status_row(e: MgmtEndpoint) -> StatusRow:
    """A Management API endpoint state as nodetool status would print it (? for a status the
    table does not know)."""
    state = ("U" if e.alive else "D") + _STATE_LETTER.get(e.status, "?")
    return StatusRow(
        address=e.address, state=state, datacenter=e.datacenter, rack=e.rack, host_id=e.host_id
    )


def gossip_endpoint(e: MgmtEndpoint) -> GossipEndpoint:
    return GossipEndpoint(
        address=e.address,
        status=e.status,
        datacenter=e.datacenter,
        rack=e.rack,
        host_id=e.host_id,
        schema=e.schema,
        release_version=e.release_version,
    )


@dataclass(frozen=True, kw_only=True)
class NodeSummary:
    """One node as the views saw it; `state` is what most views printed (DN on a tie)."""

    address: str
    datacenter: str
    rack: str
    state: str
    views: tuple[str, ...]  # observers whose output listed it
    states: tuple[tuple[str, str], ...]  # (observer, state as printed)
    name: str = ""  # the inventory / discovery endpoint at that address


@dataclass(frozen=True, kw_only=True)
class CqlRead:
    node: str  # the observer (pod)
    view: CqlView | None
    failure: ReadFailure | None = None  # when view is None


@dataclass(frozen=True, kw_only=True)
class MgmtRead:
    node: str  # the observer (pod)
    view: MgmtView | None
    failure: ReadFailure | None = None  # when view is None


@dataclass(frozen=True, kw_only=True)
class GossipAnalysis:
    """The Cassandra layer of a run, or of `netcheck gossip analyze`."""

    nodes: tuple[NodeSummary, ...]
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...]
    # (endpoint, port) closed by design: 7001 on 4.0+ nodes without the legacy SSL port
    expected_closed: tuple[tuple[str, int], ...] = ()
    cql: tuple[CqlRead, ...] = ()  # each node's system tables, where the agent was asked
    mgmt: tuple[MgmtRead, ...] = ()  # each node's Management API, where the agent was asked
    # (observer, where its view came from: nodetool, management_api, describecluster)
    view_sources: tuple[tuple[str, str], ...] = ()
