"""Cause codes, and the rules that give each failing (source, destination, port) its cause.

Without raw evidence a failure is named by its outcome (PORT_TIMEOUT, HOST_UNREACHABLE, ...).
With it, the rules say why and where:

    outcome     evidence                                           cause
    filtered    the port alone fails (another port of the pair     FIREWALL_DROP (at the hop
                connects, or it is the only port probed)           where the trace goes silent,
                                                                   or at the destination)
    filtered    no port of several connects, not even the first    ROUTE_MISSING (source side)
                router answers the trace
    filtered    no port of several connects, routers answer,       ROUTE_MISSING (after that hop)
                then silence
    timeout     the reverse pair has a missing route               ROUTE_MISSING (replies lost)
    prohibited  ICMP administratively prohibited from a router     FIREWALL_REJECT
    prohibited  ... from the destination itself                    NETWORK_POLICY_REJECT
    unreachable the sender has no route / ICMP net unreachable     ROUTE_MISSING
    refused     RST arrives with the destination's own TTL         PORT_CLOSED
    refused     RST arrives with another TTL (a nearer device)     FIREWALL_RESET
    stalled     the rack pair's path MTU probe found a black hole  PATH_MTU_BLACK_HOLE
    any         a pod fails to and from everyone                   POD_ISOLATED
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from netcheck.diagnosis.grid import Grid, Triple
from netcheck.model.evidence import PathMtu, Reply, ReplyKind, Trace
from netcheck.model.findings import Severity
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeResult
from netcheck.model.topology import Endpoint


@dataclass(frozen=True, kw_only=True)
class Cause:
    code: str
    severity: Severity
    verb: str
    hint: str


_FIREWALL_ALLOW = "allow tcp/{ports} from {src} to {dst}"
_PEERING = (
    "add the route between {src} and {dst} (VPC peering / Transit Gateway route tables, "
    "Submariner gateways, Cilium Cluster Mesh) and check nothing drops all traffic there"
)

CAUSES: dict[str, Cause] = {
    c.code: c
    for c in (
        Cause(
            code="POD_ISOLATED",
            severity=Severity.ERROR,
            verb="fails in and out of one pod",
            hint="nothing reaches {dst} and it reaches nothing: check the pod and its node "
            "(down, host firewall dropping everything, CNI not wired), not the network paths",
        ),
        Cause(
            code="ROUTE_MISSING",
            severity=Severity.ERROR,
            verb="has no route",
            hint=_PEERING,
        ),
        Cause(
            code="FIREWALL_DROP",
            severity=Severity.ERROR,
            verb="is dropped silently",
            hint="a firewall silently drops it (security group, NACL, cloud firewall, "
            "NetworkPolicy, host firewall): " + _FIREWALL_ALLOW,
        ),
        Cause(
            code="FIREWALL_REJECT",
            severity=Severity.ERROR,
            verb="is rejected by a firewall in the path (ICMP prohibited)",
            hint="a firewall between the clusters rejects it: " + _FIREWALL_ALLOW,
        ),
        Cause(
            code="NETWORK_POLICY_REJECT",
            severity=Severity.ERROR,
            verb="is rejected by the destination (ICMP prohibited)",
            hint="a NetworkPolicy or the host firewall at {dst} rejects it: allow ingress "
            "on tcp/{ports} from {src} (a NetworkPolicy ingress rule or the node's firewall)",
        ),
        Cause(
            code="FIREWALL_RESET",
            severity=Severity.ERROR,
            verb="is reset by a device in the path",
            hint="a firewall or proxy between the sides answers with a TCP reset in place of "
            "the destination: " + _FIREWALL_ALLOW,
        ),
        Cause(
            code="PORT_CLOSED",
            severity=Severity.ERROR,
            verb="is refused by the destination (RST)",
            hint="nothing listens on tcp/{ports} at {dst} (or its host firewall resets): check "
            "the service is up and listening on that port",
        ),
        Cause(
            code="PATH_MTU_BLACK_HOLE",
            severity=Severity.ERROR,
            verb="loses full-size packets (path MTU black hole)",
            hint="a link between {src} and {dst} has a smaller MTU and ICMP "
            "fragmentation-needed does not come back: allow ICMP type 3 code 4, or clamp "
            "the TCP MSS on the tunnel/WAN (MSS = path MTU - 40), or lower the pod MTU",
        ),
        Cause(
            code="PORT_TIMEOUT",
            severity=Severity.ERROR,
            verb="times out",
            hint="a firewall silently drops it (security group, NACL, host firewall or "
            "NetworkPolicy): allow tcp/{ports} from {src} to {dst}",
        ),
        Cause(
            code="PORT_INTERMITTENT",
            severity=Severity.ERROR,
            verb="times out now and then",
            hint="the port answered raw SYNs sent while the connect waited, so no rule blocks "
            "it: packets are lost on the way from {src} to {dst} (see PACKET_LOSS: a "
            "saturated link, a policer, a flapping tunnel) or the peer was too busy to answer "
            "within --timeout",
        ),
        Cause(
            code="PORT_REFUSED",
            severity=Severity.ERROR,
            verb="is refused (RST)",
            hint="nothing listens on tcp/{ports} at {dst}, or a firewall rejects with "
            "tcp-reset: check the service and REJECT rules between {src} and {dst}",
        ),
        Cause(
            code="HOST_UNREACHABLE",
            severity=Severity.ERROR,
            verb="is unreachable",
            hint="ICMP unreachable/prohibited came back or no route exists: check routes to "
            "{dst} (VPC peering / Transit Gateway / Submariner / Cilium Cluster Mesh) and "
            "REJECT rules or NetworkPolicies on tcp/{ports}",
        ),
        Cause(
            code="PATH_MTU_STALL",
            severity=Severity.ERROR,
            verb="connects but full-size data stalls",
            hint="path MTU black hole between {src} and {dst}: a smaller-MTU link drops large "
            "packets and ICMP fragmentation-needed is blocked; allow ICMP type 3 code 4 or "
            "clamp TCP MSS on the tunnel/WAN",
        ),
        Cause(
            code="TRANSFER_STALLED",
            severity=Severity.ERROR,
            verb="connects but data crosses too slowly",
            hint="full-size packets do cross between {src} and {dst} (the path MTU was "
            "measured), so this is no MTU limit: the data was lost or delayed on the way; look "
            "for packet loss (PACKET_LOSS), a saturated link or a policer, or a peer too busy "
            "to answer within --timeout",
        ),
        Cause(
            code="TLS_HANDSHAKE_FAILED",
            severity=Severity.ERROR,
            verb="fails the TLS handshake",
            hint="TCP connects to {dst} on tcp/{ports} but TLS fails: check "
            "server_encryption_options on both sides and any TLS-intercepting middlebox",
        ),
        Cause(
            code="SOURCE_NAT",
            severity=Severity.ERROR,
            verb="is source-NATed",
            hint="the peer sees another address than the sender's pod IP: disable masquerade "
            "between pod CIDRs ({src} to {dst}; e.g. ip-masq-agent nonMasqueradeCIDRs, "
            "Calico natOutgoing, Cilium ipv4-native-routing-cidr)",
        ),
        Cause(
            code="PROBE_ERROR",
            severity=Severity.ERROR,
            verb="fails with an error",
            hint="see the probes' detail for {src} to {dst} on tcp/{ports}",
        ),
        Cause(
            code="NOT_MEASURED",
            severity=Severity.WARNING,
            verb="was not measured",
            hint="these pairs are unknown, not passing: see the probes' detail and fix the "
            "agent or its --allow list, then run again",
        ),
    )
}

# without raw evidence a failure is named by its outcome
_BY_OUTCOME = {
    Outcome.TIMEOUT: "PORT_TIMEOUT",
    Outcome.FILTERED: "PORT_TIMEOUT",
    Outcome.REFUSED: "PORT_REFUSED",
    Outcome.UNREACHABLE: "HOST_UNREACHABLE",
    Outcome.PROHIBITED: "HOST_UNREACHABLE",
    Outcome.STALLED: "PATH_MTU_STALL",
    Outcome.TLS_FAILED: "TLS_HANDSHAKE_FAILED",
    Outcome.NAT: "SOURCE_NAT",
    Outcome.ERROR: "PROBE_ERROR",
    Outcome.NOT_MEASURED: "NOT_MEASURED",
}

SILENT = frozenset({Outcome.TIMEOUT, Outcome.FILTERED})
DEAD = frozenset({Outcome.TIMEOUT, Outcome.FILTERED, Outcome.UNREACHABLE, Outcome.PROHIBITED})


# where a missing route shows directly (the packet never got further); the reverse pair's
# silent failures are then its lost replies
NO_ROUTE_HERE = "the source has no route"
FIRST_ROUTER = "packets die at the source's first router"
REPLIES_LOST = "the replies take the same missing route"


@dataclass(frozen=True, kw_only=True)
class Assigned:
    """The cause of one failing triple and where it acts (one line, may be empty)."""

    code: str
    where: str = ""


_PLAIN = {o: Assigned(code=code) for o, code in _BY_OUTCOME.items()}


def initial_ttl(ttl: int) -> int:
    """The TTL a packet most likely started with (Linux 64, Windows 128, network gear 255)."""
    return next(t for t in (64, 128, 255) if ttl <= t)


@dataclass(frozen=True, kw_only=True)
class RawEvidence:
    """The raw evidence of a run, indexed the way the rules read it."""

    syn: dict[Triple, Reply]
    trace: dict[Triple, Trace]
    # the collector traces one pair per (source, destination rack, port, outcome)
    rack_trace: dict[tuple[str, tuple[str, ...], int, Outcome], Trace]
    ttl: dict[tuple[str, str], int]  # TTL the destination's own SYN-ACKs arrive with
    mtu: dict[tuple[tuple[str, ...], tuple[str, ...]], PathMtu]  # by (src rack, dst rack)
    # the smallest black-hole path MTU by (src cluster, dst cluster): one number per finding
    hole: dict[tuple[str, str], int]

    @staticmethod
    def of(results: tuple[ProbeResult, ...], eps: dict[str, Endpoint]) -> RawEvidence:
        ev = RawEvidence(syn={}, trace={}, rack_trace={}, ttl={}, mtu={}, hole={})
        for r in results:
            e = r.evidence
            if r.kind is ProbeKind.SYN and e.reply is not None:
                ev.syn[(r.src, r.dst, r.port)] = e.reply
            elif r.kind is ProbeKind.TRACE and e.trace is not None:
                ev.trace[(r.src, r.dst, r.port)] = e.trace
                ev.rack_trace[(r.src, eps[r.dst].scope("rack"), r.port, r.outcome)] = e.trace
            elif r.kind is ProbeKind.LATENCY and e.reply is not None:
                if e.reply.kind is ReplyKind.SYN_ACK:
                    ev.ttl[(r.src, r.dst)] = e.reply.ttl
            elif r.kind is ProbeKind.PMTU and e.path_mtu is not None:
                ev.mtu[(eps[r.src].scope("rack"), eps[r.dst].scope("rack"))] = e.path_mtu
                if e.path_mtu.black_hole and e.path_mtu.path_mtu is not None:
                    key = (eps[r.src].cluster, eps[r.dst].cluster)
                    ev.hole[key] = min(ev.hole.get(key, 65535), e.path_mtu.path_mtu)
        return ev


def isolated_pods(eps: dict[str, Endpoint], outcomes: Grid) -> set[str]:
    """Pods with an agent that fail to and from every peer while others work."""
    if not outcomes.any_connected():
        return set()
    out = set()
    for name, ep in eps.items():
        if not ep.has_agent or name not in outcomes.index:
            continue
        ins, outs = outcomes.incoming(name), outcomes.outgoing(name)
        if (
            ins.measured >= 2
            and outs.measured >= 2
            and ins.failed == ins.measured
            and outs.failed == outs.measured
            and outcomes.sources_into(name) >= 2
            and (outcomes.outcomes(name, into=True) | outcomes.outcomes(name, into=False))
            - {Outcome.NOT_MEASURED}
            <= DEAD
        ):
            out.add(name)
    return out


def assign(
    eps: dict[str, Endpoint],
    outcomes: Grid,
    evidence: RawEvidence,
) -> dict[Triple, Assigned]:
    """A cause for every failing triple."""
    memo: dict[tuple[str, str], list[Outcome]] = {}

    def ports_of(pair: tuple[str, str]) -> list[Outcome]:
        if pair not in memo:
            memo[pair] = outcomes.ports_of(*pair)
        return memo[pair]

    # the path, not a port, is broken: no port connects and at least two were tried, and no
    # raw SYN got an answer from the destination (on a lossy path ports time out now and then)
    answered = {(s, d) for (s, d, _), reply in evidence.syn.items() if _answered_by(reply, eps[d])}

    def path_dead(pair: tuple[str, str]) -> bool:
        tried = ports_of(pair)
        return len(tried) >= 2 and not any(x.connected for x in tried) and pair not in answered

    isolated = isolated_pods(eps, outcomes)
    out: dict[Triple, Assigned] = {}
    for t, o in outcomes.not_open():
        s, d, _ = t
        if o is not Outcome.NOT_MEASURED and (s in isolated or d in isolated):
            pod = s if s in isolated else d
            node = f" on node {eps[pod].node}" if eps[pod].node else ""
            out[t] = Assigned(code="POD_ISOLATED", where=f"pod {pod}{node}")
            continue
        out[t] = _one(t, o, eps, evidence, o is Outcome.FILTERED and path_dead((s, d)))
    _fold_return_paths(eps, out, outcomes, ports_of)
    return out


def _one(
    t: Triple, o: Outcome, eps: dict[str, Endpoint], ev: RawEvidence, path_dead: bool
) -> Assigned:
    if not ev.syn and not ev.trace and not ev.mtu and o is not Outcome.FILTERED:
        return _PLAIN[o]  # no raw evidence: the outcome names the cause
    s, d, port = t
    syn = ev.syn.get(t)
    trace = ev.trace.get(t) or ev.rack_trace.get((s, eps[d].scope("rack"), port, o))
    if o is Outcome.STALLED:
        m = ev.mtu.get((eps[s].scope("rack"), eps[d].scope("rack")))
        if m is not None and m.black_hole:
            mtu = ev.hole[(eps[s].cluster, eps[d].cluster)]
            return Assigned(code="PATH_MTU_BLACK_HOLE", where=f"path MTU {mtu}")
        if m is not None:
            # the DF probes of this rack pair found no black hole: not the MTU's doing
            where = f"path MTU {m.path_mtu}" if m.path_mtu else "path MTU not determined (loss)"
            return Assigned(code="TRANSFER_STALLED", where=where)
        return Assigned(code="PATH_MTU_STALL")
    if o is Outcome.PROHIBITED and syn is not None:
        if syn.source == eps[d].address:
            return Assigned(code="NETWORK_POLICY_REJECT", where="answered by the destination")
        return Assigned(code="FIREWALL_REJECT", where=f"rejected by {syn.source}")
    if o is Outcome.UNREACHABLE and syn is not None:
        if syn.kind is ReplyKind.NO_ROUTE:
            return Assigned(code="ROUTE_MISSING", where=NO_ROUTE_HERE)
        if syn.kind is ReplyKind.NET_UNREACHABLE:
            return Assigned(code="ROUTE_MISSING", where=f"no route at {syn.source}")
        return Assigned(code="HOST_UNREACHABLE", where=f"reported by {syn.source}")
    if o is Outcome.REFUSED and syn is not None and syn.kind is ReplyKind.RST:
        own = ev.ttl.get((s, d))
        if own is None:
            return Assigned(code="PORT_REFUSED")
        if syn.ttl == own:
            return Assigned(code="PORT_CLOSED")
        hop = initial_ttl(syn.ttl) - syn.ttl + 1
        router = _hop_address(trace, hop)
        return Assigned(code="FIREWALL_RESET", where=f"RST from hop {hop}{router}")
    if o in SILENT and syn is not None and _answered_by(syn, eps[d]):
        # the plain connect timed out, yet the port answered the raw SYNs: loss, not a rule
        return Assigned(code="PORT_INTERMITTENT", where="the port answered raw SYNs meanwhile")
    if o is Outcome.FILTERED and trace is not None:
        last = trace.last_answered
        if not path_dead:
            own = ev.ttl.get((s, d))
            routers = initial_ttl(own) - own if own is not None else None
            seen = len(trace.routers)
            if routers is not None and seen >= routers:
                return Assigned(code="FIREWALL_DROP", where="dropped at the destination")
            if last is None:
                return Assigned(code="FIREWALL_DROP", where="dropped before the first router")
            return Assigned(
                code="FIREWALL_DROP", where=f"silent after hop {last.ttl} ({last.reply.source})"
            )
        if last is None:
            return Assigned(code="ROUTE_MISSING", where=FIRST_ROUTER)
        return Assigned(
            code="ROUTE_MISSING", where=f"silent after hop {last.ttl} ({last.reply.source})"
        )
    return Assigned(code=_BY_OUTCOME[o])


def _answered_by(reply: Reply, ep: Endpoint) -> bool:
    """The port itself accepted the raw SYN (a RST could be a middlebox speaking for it)."""
    return reply.source == ep.address and reply.kind is ReplyKind.SYN_ACK


def _hop_address(trace: Trace | None, ttl: int) -> str:
    if trace is None:
        return ""
    hop = next((h for h in trace.hops if h.ttl == ttl and h.reply.answered), None)
    return f" ({hop.reply.source})" if hop else ""


def _fold_return_paths(
    eps: dict[str, Endpoint],
    out: dict[Triple, Assigned],
    outcomes: Grid,
    ports_of: Callable[[tuple[str, str]], list[Outcome]],
) -> None:
    """A pair that only times out, whose reverse shows a missing route, loses its replies
    there: one cause, reported once for both directions.

    Evidence that the route is missing is certain when the kernel or a router said so, and
    inferred when even the first router stayed silent; certain evidence wins. A destination
    without an agent (a node, an API server) replies through its cluster's routes: a route
    its cluster's pods miss towards the source is missing for it too.
    """
    if not any(a.code == "ROUTE_MISSING" for a in out.values()):
        return
    certain = {NO_ROUTE_HERE}
    for strong in (True, False):
        direct = {
            (s, d)
            for (s, d, _), a in out.items()
            if a.code == "ROUTE_MISSING"
            and a.where != REPLIES_LOST
            and (
                a.where in certain or a.where.startswith("no route at")
                if strong
                else a.where == FIRST_ROUTER
            )
        }
        from_cluster = {(eps[s].cluster, d) for s, d in direct}
        for t, a in list(out.items()):
            s, d, _ = t
            back = (d, s) in direct or (
                not eps[d].has_agent and (eps[d].cluster, s) in from_cluster
            )
            if (
                back
                and a.where not in certain
                and (s, d) not in direct
                and outcomes[t] in SILENT
                and all(o in SILENT for o in ports_of((s, d)))
            ):
                out[t] = Assigned(code="ROUTE_MISSING", where=REPLIES_LOST)
