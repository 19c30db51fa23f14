"""Cassandra's own view, checked and tied to the network.

Inputs are observations (model/gossip.py): what each node's nodetool and logs said. Checks:
every node's view of every other (DN, UJ/UL/UM), views that disagree, schema disagreement,
topology against the inventory or discovery (unknown DCs or racks, nodes in the wrong DC),
internode trouble in the logs counted per peer, TLS handshake failures. Cross-check: a gossip
DOWN or a logged connect failure between two nodes is matched with the network finding that
covers that pair on an internode port, or reported as "network fine: look at the node"
when the probes between them got through; network failures between database pods say what
gossip thinks of the same pair.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from netcheck.diagnosis.cql import cql_findings
from netcheck.diagnosis.findings import group_text, in_scope
from netcheck.diagnosis.lifecycle import lifecycle, shut_down
from netcheck.diagnosis.mgmt import mgmt_findings
from netcheck.diagnosis.seeds import seed_findings
from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import (
    DOWN_STATES,
    SSL_STORAGE_PORT,
    STORAGE_PORT,
    CqlRead,
    GossipAnalysis,
    LogSignature,
    MgmtRead,
    NodeSummary,
    Observation,
    Signature,
)
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.report import TlsRow
from netcheck.model.text import ascii_int
from netcheck.model.topology import Endpoint, Role, Topology

Located = dict[str, Endpoint | None]  # observer -> the endpoint it runs on, when known
_LEGACY_FREE = re.compile(r"^(\d+)\.")  # major version: 4.0+ listens on 7000 only


@dataclass(frozen=True, kw_only=True)
class _Network:
    """What the network run knew, for the cross-check."""

    findings: tuple[Finding, ...]
    outcome: dict[tuple[str, str, int], Outcome]
    expected_closed: frozenset[tuple[str, int]] = frozenset()

    def explain(self, a: Endpoint, b: Endpoint) -> Finding | None:
        """The highest-ranked network finding covering a<->b on an internode port the two
        use: 7000, and 7001 only where it is not closed by design."""
        used = {STORAGE_PORT}
        if not {(a.name, SSL_STORAGE_PORT), (b.name, SSL_STORAGE_PORT)} & self.expected_closed:
            used.add(SSL_STORAGE_PORT)
        for f in self.findings:
            if f.severity is Severity.INFO or not set(f.ports) & used:
                continue
            if (in_scope(f.src_scope, a) and in_scope(f.dst_scope, b)) or (
                in_scope(f.src_scope, b) and in_scope(f.dst_scope, a)
            ):
                return f
        return None

    def fine(self, a: Endpoint, b: Endpoint) -> bool | None:
        """7000 connected both ways (True), failed one way (False), not probed (None)."""
        there = self.outcome.get((a.name, b.name, STORAGE_PORT))
        back = self.outcome.get((b.name, a.name, STORAGE_PORT))
        seen = [o for o in (there, back) if o is not None and o is not Outcome.NOT_MEASURED]
        if not seen:
            return None
        return all(o.connected for o in seen)

    def classify(self, a: Endpoint | None, b: Endpoint | None) -> tuple[str, Finding | None]:
        """What the network says of a<->b: (finding key, the finding) when a finding covers
        it, else ("fine", None), ("failing", None) or ("unknown", None)."""
        if a is None or b is None:
            return "unknown", None
        cause = self.explain(a, b)
        if cause is not None:
            return _finding_key(cause), cause
        fine = self.fine(a, b)
        return {True: "fine", False: "failing", None: "unknown"}[fine], None


def analyze(
    observations: Iterable[Observation],
    topology: Topology | None = None,
    probes: Sequence[ProbeResult] = (),
    network_findings: tuple[Finding, ...] = (),
    tls: tuple[TlsRow, ...] = (),
) -> GossipAnalysis:
    """tls: what netcheck's own looks at each node's internode TLS found (run --context);
    a node whose certificate verified there is not the one to blame for its peers' TLS
    failures with it."""
    obs = list(observations)
    by_address = {ep.address: ep for ep in topology.endpoints} if topology else {}
    by_name = {ep.name: ep for ep in topology.endpoints} if topology else {}
    closed, legacy = _legacy_port(obs, topology, probes)
    network = _Network(
        findings=network_findings,
        outcome={(p.src, p.dst, p.port): p.outcome for p in probes},
        expected_closed=frozenset(closed),
    )
    located: Located = {
        o.observer: by_address.get(o.observer_address) or by_name.get(o.observer) for o in obs
    }
    nodes = _nodes(obs, by_address)
    findings: list[Finding] = []
    stopped = shut_down(obs)
    down, explained = _down(nodes, by_address, located, network, stopped)
    findings += down
    findings += _diverging(nodes, explained)
    findings += lifecycle(obs, {a: ep.name for a, ep in by_address.items()})
    findings += _schema(obs)
    findings += _topology(nodes, topology)
    findings += _tls(obs, by_address, located, _looked(tls, by_name))
    findings += _connect_logs(obs, by_address, located, network)
    findings += _no_seeds(obs)
    findings += seed_findings(obs)
    findings += _marked_down(obs, nodes, by_address)
    findings += _place_unknown(nodes)
    findings += _status_unknown(nodes)
    findings += _versions_mixed(obs)
    findings += legacy
    findings += cql_findings(obs, topology)
    findings += mgmt_findings(obs)
    warnings = tuple(w for o in obs for w in o.warnings)
    return GossipAnalysis(
        nodes=tuple(nodes.values()),
        findings=tuple(findings),
        warnings=warnings,
        expected_closed=closed,
        cql=tuple(
            CqlRead(node=o.observer, view=o.cql, failure=o.cql_failure)
            for o in obs
            if o.cql is not None or o.cql_failure is not None
        ),
        mgmt=tuple(
            MgmtRead(node=o.observer, view=o.mgmt, failure=o.mgmt_failure)
            for o in obs
            if o.mgmt is not None or o.mgmt_failure is not None
        ),
        view_sources=tuple((o.observer, o.view_source) for o in obs if o.view_source),
    )


ROOT_CAUSES = frozenset(
    {
        "INTERNODE_TLS_MISMATCH",
        "UNABLE_TO_GOSSIP",
        "GOSSIP_DOWN_NETWORK_OK",
        "NODE_WRONG_DC",
        "CASSANDRA_NOT_READY",
    }
)
# node-level findings that explain a refused port on that node, most specific first
# Cassandra-side failures that a partition between nodes explains: they point at the network
# finding instead of giving advice about something else.
CONSEQUENCES_OF_PARTITION = frozenset({"CQL_LOGIN_UNAVAILABLE"})
_NODE_DOWN_CODES = ("INTERNODE_TLS_MISMATCH", "UNABLE_TO_GOSSIP", "CASSANDRA_NOT_READY")
_REFUSED_CODES = frozenset({"PORT_REFUSED", "PORT_CLOSED"})


def merge(
    topology: Topology, network_findings: tuple[Finding, ...], analysis: GossipAnalysis
) -> tuple[Finding, ...]:
    """One ranked list: network findings told what gossip thinks of the same pairs, 7001
    refusals that are normal dropped, and consequences ranked after their causes."""
    closed = set(analysis.expected_closed)
    # node -> the finding that says why Cassandra is down there (the most specific one)
    down_nodes: dict[str, str] = {}
    for code in _NODE_DOWN_CODES:
        for f in (f for f in analysis.findings if f.code == code):
            # UNABLE_TO_GOSSIP names the stopped node as its source
            scopes = (f.dst_scope, f.src_scope) if code == "UNABLE_TO_GOSSIP" else (f.dst_scope,)
            for scope in filter(None, scopes):
                down_nodes.setdefault(scope, code)
    explained: dict[str, list[str]] = defaultdict(list)
    for f in analysis.findings:
        if f.code == "GOSSIP_DOWN" and f.location.startswith("network: "):
            explained[f.location.removeprefix("network: ")].append(f.summary.split(":")[0])
    ranked: list[tuple[int, Finding]] = []
    for f in network_findings:
        targets = [
            ep
            for ep in topology.endpoints
            if in_scope(f.dst_scope, ep) and any(p.port == SSL_STORAGE_PORT for p in ep.ports)
        ]
        if (
            f.code in _REFUSED_CODES
            and set(f.ports) == {SSL_STORAGE_PORT}
            and targets
            and all((ep.name, SSL_STORAGE_PORT) in closed for ep in targets)
        ):
            continue  # LEGACY_SSL_PORT_UNUSED says it
        tier = 0
        if f.code in _REFUSED_CODES and f.dst_scope in down_nodes:
            f = replace(
                f,
                summary=f"{f.summary}; Cassandra is not running there: see "
                f"{down_nodes[f.dst_scope]}",
            )
            tier = 1
        key = _finding_key(f)
        if key in explained:
            f = replace(f, summary=f"{f.summary}; gossip: {'; '.join(explained[key])}")
        ranked.append((tier, f))
    internode = sorted(
        {
            f.code
            for f in network_findings
            if f.severity is Severity.ERROR and set(f.ports) & {STORAGE_PORT, SSL_STORAGE_PORT}
        }
    )
    for f in analysis.findings:
        tier = 0 if f.code in ROOT_CAUSES or f.severity is Severity.INFO else 1
        if f.code in CONSEQUENCES_OF_PARTITION and internode:
            f = replace(f, summary=f"{f.summary}; caused by {', '.join(internode)} (above)")
        ranked.append((tier, f))
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    ranked.sort(key=lambda tf: (order[tf[1].severity], tf[0]))
    return tuple(f for _, f in ranked)


def _finding_key(f: Finding) -> str:
    return f"{f.code} {','.join(map(str, f.ports))} {f.src_scope} -> {f.dst_scope}"


# ---------------------------------------------------------------- views


def _nodes(obs: list[Observation], by_address: dict[str, Endpoint]) -> dict[str, NodeSummary]:
    states: dict[str, dict[str, str]] = defaultdict(dict)
    place: dict[str, tuple[str, str]] = {}
    for o in obs:
        for row in o.status_rows or ():
            states[row.address][o.observer] = row.state
            if row.datacenter or row.rack:
                place.setdefault(row.address, (row.datacenter, row.rack))
        if o.description is not None:
            # describecluster: UNREACHABLE is this node's DOWN where its status does not
            # list the node (its status rows, read first, win)
            for v in o.description.schema_versions:
                for a in v.addresses:
                    states[a].setdefault(o.observer, "DN" if v.version == "UNREACHABLE" else "UN")
        for g in o.gossip_endpoints or ():
            place.setdefault(g.address, (g.datacenter, g.rack))
            states.setdefault(g.address, {})
    out = {}
    for address in sorted(states, key=_address_key):
        seen = states[address]
        counts: dict[str, int] = defaultdict(int)
        for s in seen.values():
            counts[s] += 1
        state = max(counts, key=lambda s: (counts[s], s in DOWN_STATES)) if counts else "?"
        dc, rack = place.get(address, ("", ""))
        ep = by_address.get(address)
        out[address] = NodeSummary(
            address=address,
            datacenter=dc,
            rack=rack,
            state=state,
            views=tuple(sorted(seen)),
            states=tuple(sorted(seen.items())),
            name=ep.name if ep else "",
        )
    return out


def _address_key(a: str) -> tuple[int, ...] | tuple[int, str]:
    parts = a.split(".")
    octets = [ascii_int(p, 3) for p in parts]
    if len(octets) == 4 and all(o is not None for o in octets):
        return tuple(o for o in octets if o is not None)
    return (999, a)


def _label(n: NodeSummary) -> str:
    where = "/".join(x for x in (n.datacenter, n.rack) if x)
    name = n.name or n.address
    return f"{name} ({where})" if where else name


def _down(
    nodes: dict[str, NodeSummary],
    by_address: dict[str, Endpoint],
    located: Located,
    network: _Network,
    stopped: set[str],
) -> tuple[list[Finding], set[tuple[str, str]]]:
    """Every (observer, node) DN, grouped by what explains it; and the (observer, address)
    pairs a network finding explains. A node that announced its shutdown is DN because it
    was stopped: NODE_SHUT_DOWN says so once (diagnosis/lifecycle.py)."""
    groups: dict[tuple[str, str, str], list[tuple[str, NodeSummary]]] = defaultdict(list)
    causes: dict[str, Finding] = {}
    explained: set[tuple[str, str]] = set()
    for n in nodes.values():
        for observer, state in n.states:
            if state not in DOWN_STATES:
                continue
            if n.address in stopped:
                explained.add((observer, n.address))
                continue
            a = located.get(observer)
            key, cause = network.classify(a, by_address.get(n.address))
            if cause is not None:
                causes[key] = cause
                explained.add((observer, n.address))
            observer_dc = a.datacenter if a else ""
            groups[(key, observer_dc, n.datacenter)].append((observer, n))
    out = []
    for (key, _, _), members in sorted(groups.items()):
        observers = group_text([m[0] for m in members], "views")
        targets = group_text([_label(m[1]) for m in members], "nodes")
        head = f"{targets} DN in gossip of {observers}"
        pairs = len(members)
        if key in causes:
            cause = causes[key]
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    code="GOSSIP_DOWN",
                    summary=f"{head}: explained by {cause.code} ({cause.summary.split(';')[0]})",
                    src_cluster=cause.src_cluster,
                    dst_cluster=cause.dst_cluster,
                    ports=cause.ports,
                    affected_pairs=pairs,
                    hint="fix the network finding it names; gossip marks the nodes UP by itself "
                    "within seconds once internode traffic flows",
                    src_scope=observers,
                    dst_scope=targets,
                    location=f"network: {key}",
                )
            )
        elif key == "fine":
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    code="GOSSIP_DOWN_NETWORK_OK",
                    summary=f"{head}, while 7000 connects both ways between them: "
                    "down in gossip, network fine: look at the node",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(STORAGE_PORT,),
                    affected_pairs=pairs,
                    hint="check the node itself: is Cassandra running, its system.log "
                    "(exceptions, GC pauses, disk), nodetool info; restart it if it hangs",
                    src_scope=observers,
                    dst_scope=targets,
                    location="the node",
                )
            )
        else:
            tail = {
                "failing": " (internode probes between them fail without a network finding "
                "on 7000/7001: see the matrix)",
                "unknown": " (the network between them was not probed)",
            }[key]
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    code="GOSSIP_DOWN",
                    summary=f"{head}{tail}",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(),
                    affected_pairs=pairs,
                    hint="run `netcheck run` across the contexts (or the inventory) to tell a "
                    "network fault from a sick node; then check the node's system.log",
                    src_scope=observers,
                    dst_scope=targets,
                )
            )
    return out, explained


def _diverging(nodes: dict[str, NodeSummary], explained: set[tuple[str, str]]) -> list[Finding]:
    """A sees B down while C sees B up, unless a network finding explains every down view
    (then it is that finding's partition, said once there)."""
    out = []
    for n in nodes.values():
        down = [o for o, s in n.states if s in DOWN_STATES]
        if all((o, n.address) in explained for o in down):
            continue
        up = [o for o, s in n.states if s not in DOWN_STATES]
        if down and up:
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    code="GOSSIP_VIEWS_DIVERGE",
                    summary=f"{_label(n)} is DN for {group_text(down, 'views')} "
                    f"but up for {group_text(up, 'views')}: gossip views disagree",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(),
                    affected_pairs=len(down),
                    hint="a partial partition: the nodes that see it down cannot reach it "
                    "on 7000 while others can; compare with the network findings",
                    dst_scope=_label(n),
                )
            )
    return out


def _schema(obs: list[Observation]) -> list[Finding]:
    versions: dict[str, set[str]] = defaultdict(set)
    for o in obs:
        if o.description is not None:
            for v in o.description.agreed_versions:
                versions[v.version].update(v.addresses)
        for g in o.gossip_endpoints or ():
            if g.schema and g.status.upper() == "NORMAL":
                versions[g.schema].add(g.address)
    return _split(
        "SCHEMA_DISAGREEMENT",
        "schema versions",
        {v[:8]: a for v, a in versions.items()},
        "schema changes do not reach every node: usually unreachable nodes; once "
        "gossip is healthy run `nodetool describecluster` again, then "
        "`nodetool resetlocalschema` on the odd node",
    )


def _split(code: str, what: str, groups: dict[str, set[str]], hint: str) -> list[Finding]:
    """One warning when the nodes fall into more than one group of a value they should share
    (schema version, release line), each group with its nodes."""
    if len(groups) <= 1:
        return []
    parts = [f"{value} on {group_text(sorted(a), 'nodes')}" for value, a in sorted(groups.items())]
    return [
        Finding(
            severity=Severity.WARNING,
            code=code,
            summary=f"{len(groups)} {what}: {'; '.join(parts)}",
            src_cluster="*",
            dst_cluster="*",
            ports=(),
            affected_pairs=sum(len(a) for a in groups.values()),
            hint=hint,
        )
    ]


def _topology(nodes: dict[str, NodeSummary], topology: Topology | None) -> list[Finding]:
    out: list[Finding] = []
    if topology is None:
        return out
    known = {ep.address: ep for ep in topology.endpoints if ep.role is Role.DATABASE}
    known_dcs = {ep.datacenter for ep in known.values()}
    unknown = [n for n in nodes.values() if n.address not in known]
    for n in nodes.values():
        ep = known.get(n.address)
        if ep is None or not n.datacenter:
            continue
        if ep.datacenter and n.datacenter != ep.datacenter:
            out.append(
                Finding(
                    severity=Severity.ERROR,
                    code="NODE_WRONG_DC",
                    summary=f"{ep.name} is in datacenter {n.datacenter} for gossip, "
                    f"in {ep.datacenter} for the inventory/discovery",
                    src_cluster=ep.cluster,
                    dst_cluster=ep.cluster,
                    ports=(),
                    affected_pairs=1,
                    hint="fix dc= in its cassandra-rackdc.properties (cass-operator: the "
                    "datacenter's name) and replace the node; a node cannot change DC in place",
                    dst_scope=ep.name,
                )
            )
        elif ep.rack and n.rack and n.rack != ep.rack:
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    code="NODE_WRONG_RACK",
                    summary=f"{ep.name} is in rack {n.rack} for gossip, in {ep.rack} "
                    "for the inventory/discovery",
                    src_cluster=ep.cluster,
                    dst_cluster=ep.cluster,
                    ports=(),
                    affected_pairs=1,
                    hint="fix rack= in its cassandra-rackdc.properties or the inventory",
                    dst_scope=ep.name,
                )
            )
    if unknown:
        dcs = sorted(
            {n.datacenter for n in unknown if n.datacenter and n.datacenter not in known_dcs}
        )
        what = f"; datacenters unknown to it: {', '.join(dcs)}" if dcs else ""
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="TOPOLOGY_UNKNOWN_NODES",
                summary=f"gossip knows {group_text([_label(n) for n in unknown], 'nodes')}, "
                f"which the inventory/discovery does not{what}",
                src_cluster="*",
                dst_cluster="*",
                ports=(),
                affected_pairs=len(unknown),
                hint="add them (and their context) to the run, or remove stale nodes from "
                "the ring (nodetool removenode HOST_ID)",
            )
        )
    seen = set(nodes)
    if seen:
        missing = sorted(ep.name for a, ep in known.items() if a not in seen)
        if missing:
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    code="TOPOLOGY_MISSING_NODES",
                    summary=f"{group_text(missing, 'pods')} not in any node's gossip view",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(),
                    affected_pairs=len(missing),
                    hint="the pod never joined this cluster: check its seeds and cluster_name, "
                    "and that it reaches a seed on 7000",
                    dst_scope=", ".join(missing),
                )
            )
    return out


# ---------------------------------------------------------------- logs


def _looked(rows: tuple[TlsRow, ...], by_name: dict[str, Endpoint]) -> frozenset[str]:
    """The addresses whose internode certificate netcheck verified: a TLS handshake on 7000
    or 7001, the chain verified against the CA given, not expired."""
    return frozenset(
        by_name[r.node].address
        for r in rows
        if r.node in by_name
        and r.port in (STORAGE_PORT, SSL_STORAGE_PORT)
        and r.handshake
        and r.chain_verified is True
        and (r.days_left is None or r.days_left >= 0)
        and not r.error
    )


def _tls(
    obs: list[Observation],
    by_address: dict[str, Endpoint],
    located: Located,
    verified: frozenset[str] = frozenset(),
) -> list[Finding]:
    """A node named by TLS handshake failures: peers saw it fail (or it refused TLS itself).

    Who is to blame is read from who accuses whom: a node whose handshakes several peers
    fail (or refuse) is the suspect; but one node that fails (or refuses) the handshakes of
    several peers that nobody else accuses is the odd one itself (its truststore, its CA)."""
    suspects: dict[str, dict[str, tuple[int, str]]] = defaultdict(dict)
    # (accused, accuser, who says it, count, detail); accuser "" for a node's own words
    said: list[tuple[str, str, str, int, str]] = []
    observed: set[str] = set()  # the nodes whose own logs were read

    for o in obs:
        me = located.get(o.observer)
        # a line that names its own end (LOCAL->PEER) says where the whole log comes from
        own = next((s.local for s in o.logs or () if s.local), "")
        itself = own or o.observer_address or (me.address if me else o.observer)
        if o.logs is not None:
            observed.add(itself)
        for s in o.logs or ():
            if s.signature is Signature.TLS_HANDSHAKE and s.peer:
                said.append((s.peer, itself, o.observer, s.count, s.detail))
            elif s.signature is Signature.TLS_REFUSED_BY_PEER and s.peer:
                # its peer answered its handshakes with an alert: the peer refused its side
                who = f"{o.observer} itself (refused by peers)"
                said.append((itself, s.peer, who, s.count, s.detail))
            elif s.signature in (Signature.TLS_DISABLED_HERE, Signature.CERT_EXPIRED_HERE):
                said.append((itself, "", f"{o.observer} itself", s.count, s.detail))
    accusers: dict[str, set[str]] = defaultdict(set)
    accused: dict[str, set[str]] = defaultdict(set)
    for target, accuser, _, _, _ in said:
        if accuser:
            accusers[target].add(accuser)
            accused[accuser].add(target)
    # the odd one: it accuses several nodes whose own logs were read and whom nobody else
    # accuses (from its log alone, or theirs alone, nothing tells the two stories apart)
    odd = {
        accuser
        for accuser, targets in accused.items()
        if len(targets) >= 2 and all(accusers[t] == {accuser} and t in observed for t in targets)
    }
    for target, accuser, who, count, detail in said:
        if accuser in odd:
            target, who = accuser, f"{who}: {accuser} is at odds with {len(accused[accuser])} peers"
        elif accuser and target in verified and accuser not in verified:
            # netcheck verified the accused's certificate against the CA: the accuser's side
            # (its truststore, its own certificate, its clock) is the one at odds
            target, who = accuser, f"{who}: {target}'s certificate verified against the CA"
        had, first = suspects[target].get(who, (0, ""))
        suspects[target][who] = (had + count, first or detail)
    out = []
    for peer, seen in sorted(suspects.items()):
        ep = by_address.get(peer)
        name = ep.name if ep else peer
        details = sorted({d for _, d in seen.values() if d})
        plaintext = any("not an SSL/TLS record" in d or "disabled" in d for d in details)
        closed = any(d.startswith("closed during the TLS handshake") for d in details)
        at_odds = any("is at odds with" in w or "verified against the CA" in w for w in seen)
        expired = any("EXPIRED" in d.upper() or "NotAfter" in d for d in details)
        untrusted = any(
            "certification path" in d or "PKIX path building" in d or "UNKNOWN_CA" in d
            for d in details
        )
        no_cert = any(
            "DID_NOT_RETURN_A_CERTIFICATE" in d or "CERTIFICATE_REQUIRED" in d for d in details
        )
        if at_odds:
            why = (
                "it fails or refuses the handshakes of several peers that no other node "
                "minds: its own truststore (CA) or its clock is the one to fix"
            )
        elif expired:
            why = (
                "its certificate has expired: peers refuse it (renew it; cert-manager "
                "renews before expiry)"
            )
        elif untrusted or no_cert:
            why = (
                "its certificate is not one its peers trust (signed by another CA, or none "
                "sent): give it a certificate from the CA in the peers' truststore"
            )
        elif plaintext:
            why = (
                "it speaks plaintext to peers that require TLS (internode_encryption none on "
                "it, all on them)"
            )
        elif closed:
            why = (
                "it closes connections during the TLS handshake: it does not speak TLS on "
                "that port (a transition to TLS half done), or it refuses the certificate"
            )
        else:
            why = "certificates or protocols do not match"
        total = sum(c for c, _ in seen.values())
        reasons = "; ".join(details) or "no reason logged"
        out.append(
            Finding(
                severity=Severity.ERROR,
                code="INTERNODE_TLS_MISMATCH",
                summary=f"{name}: {total} internode TLS handshake failures seen by "
                f"{group_text(list(seen), 'nodes')} ({reasons}): {why}",
                src_cluster=ep.cluster if ep else "*",
                dst_cluster=ep.cluster if ep else "*",
                ports=(STORAGE_PORT,),
                affected_pairs=len(seen),
                hint="give every node the same server_encryption_options "
                "(internode_encryption, keystore/truststore from one CA, require_client_auth); "
                "mixed settings only work with optional: true during a migration",
                dst_scope=name,
                location=f"{name}'s server_encryption_options",
            )
        )
    return out + _half_done(obs, by_address)


def _half_done(obs: list[Observation], by_address: dict[str, Endpoint]) -> list[Finding]:
    """Nodes that listen on 7000 with TLS beside nodes that listen without it (their own
    start-up lines say so): a move to internode TLS (or away from it) that stopped half way."""
    plain: set[str] = set()
    tls: set[str] = set()
    for o in obs:
        for listener in o.listeners:
            if listener.port != STORAGE_PORT:
                continue
            ep = by_address.get(o.observer_address or listener.address)
            name = ep.name if ep else (o.observer_address or listener.address)
            (plain if listener.encryption.startswith("unencrypted") else tls).add(name)
    if not plain or not tls:
        return []
    return [
        Finding(
            severity=Severity.ERROR,
            code="INTERNODE_TLS_TRANSITION_HALF_DONE",
            summary=f"internode TLS on 7000 is on for {group_text(sorted(tls), 'nodes')} and off "
            f"for {group_text(sorted(plain), 'nodes')}: the two halves cannot talk",
            src_cluster="*",
            dst_cluster="*",
            ports=(STORAGE_PORT,),
            affected_pairs=len(plain) * len(tls),
            hint="move in two rolling restarts: first every node with internode_encryption "
            "all and optional: true (accepts both), then optional: false; or roll the "
            "plaintext nodes to the same server_encryption_options now",
            src_scope=group_text(sorted(tls), "nodes"),
            dst_scope=group_text(sorted(plain), "nodes"),
        )
    ]


def _connect_logs(
    obs: list[Observation],
    by_address: dict[str, Endpoint],
    located: Located,
    network: _Network,
) -> list[Finding]:
    groups: dict[tuple[str, str], list[tuple[str, str, int]]] = defaultdict(list)
    causes: dict[str, Finding] = {}
    for o in obs:
        for s in o.logs or ():
            if not s.signature.connect or not s.peer:
                continue
            # the line's own LOCAL->PEER says who logged it, whatever the file is called
            me = by_address.get(s.local) if s.local else located.get(o.observer)
            logged_by = (me.name if me else s.local) if s.local else o.observer
            peer = by_address.get(s.peer)
            key, cause = network.classify(me, peer)
            if cause is not None:
                causes[key] = cause
            elif key == "failing":
                key = "unknown"  # failing without a finding: the logs say no more than that
            groups[(key, s.signature.value)].append(
                (logged_by, peer.name if peer else s.peer, s.count)
            )
    out = []
    for (key, sig), members in sorted(groups.items()):
        count = sum(c for _, _, c in members)
        what = sig.replace("connect_", "connect ").replace("_", " ")
        head = (
            f"{count}x internode {what} logged by {group_text([m[0] for m in members], 'nodes')} "
            f"towards {group_text([m[1] for m in members], 'peers')}"
        )
        if key in causes:
            tail, severity = f": explained by {causes[key].code}", Severity.WARNING
        elif key == "fine":
            tail, severity = (
                ", though the network connects now (intermittent, or it was fixed)",
                Severity.INFO,
            )
        else:
            tail, severity = "", Severity.WARNING
        out.append(
            Finding(
                severity=severity,
                code="LOG_INTERNODE_CONNECT_ERRORS",
                summary=head + tail,
                src_cluster="*",
                dst_cluster="*",
                ports=(STORAGE_PORT,),
                affected_pairs=len(members),
                hint="Cassandra could not open internode connections: see the network findings "
                "for the same pairs",
                location=f"network: {key}" if key in causes else "",
            )
        )
    return out


def _marked_down(
    obs: list[Observation], nodes: dict[str, NodeSummary], by_address: dict[str, Endpoint]
) -> list[Finding]:
    """`InetAddress PEER is now DOWN` in a node's log: its failure detector lost the peer at
    that time. Said as history: the views of now (status, gossip) say whether it is back.
    A peer that announced its shutdown just before (`state jump to shutdown`) was stopped:
    those DOWN lines are the stop's, said once in LOG_NODE_SHUT_DOWN, not the network's."""
    announced: dict[str, LogSignature] = {}
    for o in obs:
        for s in o.logs or ():
            if s.signature is Signature.SHUTDOWN_ANNOUNCED and s.peer:
                announced[s.peer] = s
    out = []
    seen_by: dict[str, set[str]] = defaultdict(set)
    for o in obs:
        downs = []
        for s in o.logs or ():
            if s.signature is not Signature.MARKED_DOWN or not s.peer:
                continue
            if s.peer in announced and _after_stop(announced[s.peer], s):
                seen_by[s.peer].add(o.observer)
            else:
                downs.append(s)
        if not downs:
            continue
        back = [s.peer for s in downs if s.peer in nodes and nodes[s.peer].state.startswith("U")]
        names = [by_address[s.peer].name if s.peer in by_address else s.peer for s in downs]
        last = max((s.last for s in downs), default="")
        tail = f"; up again now: {group_text(back, 'nodes')}" if back else ""
        out.append(
            Finding(
                severity=Severity.INFO if len(back) == len(downs) else Severity.WARNING,
                code="LOG_PEERS_MARKED_DOWN",
                summary=f"{o.observer}'s gossip marked {group_text(names, 'peers')} DOWN "
                f"({sum(s.count for s in downs)}x, last {last or 'unknown'}){tail}",
                src_cluster="*",
                dst_cluster="*",
                ports=(STORAGE_PORT,),
                affected_pairs=len(downs),
                hint="the failure detector stopped hearing them on 7000: a node that stopped or "
                "paused (GC), or the network between them; the network findings and "
                "`nodetool status` of now tell which",
                src_scope=o.observer,
                dst_scope=group_text(names, "peers"),
            )
        )
    for peer, s in sorted(announced.items()):
        name = by_address[peer].name if peer in by_address else peer
        marked = f"; marked DOWN after it by {group_text(sorted(seen_by[peer]), 'nodes')}"
        now = nodes.get(peer)
        up = "; up again now" if now is not None and now.state.startswith("U") else ""
        out.append(
            Finding(
                severity=Severity.INFO,
                code="LOG_NODE_SHUT_DOWN",
                summary=f"{name} announced its shutdown (last {s.last or 'unknown'}): stopped on "
                f"purpose, not cut off by the network{marked if seen_by[peer] else ''}{up}",
                src_cluster="*",
                dst_cluster="*",
                ports=(STORAGE_PORT,),
                affected_pairs=1,
                hint="a drain, `nodetool stopdaemon`, a pod deleted or a rolling restart; if it "
                "should be running, start it and read why it stopped in its system.log",
                src_scope=name,
                dst_scope=name,
            )
        )
    return out


# a DOWN this long after a node's shutdown announcement is no longer the stop's
_STOP_TO_DOWN_SECONDS = 120.0


def _after_stop(stop: LogSignature, down: LogSignature) -> bool:
    """Every DOWN of the peer came within two minutes after its shutdown announcement, by
    the lines' own times (a DOWN without a readable time is never explained away)."""
    start, end = _seconds(stop.first), _seconds(stop.last)
    first, last = _seconds(down.first), _seconds(down.last)
    if start is None or end is None or first is None or last is None:
        return False
    return start - 1.0 <= first and last <= end + _STOP_TO_DOWN_SECONDS


def _seconds(when: str) -> float | None:
    try:
        return datetime.fromisoformat(when.replace(",", ".")).timestamp()
    except ValueError:
        return None


def _status_unknown(nodes: dict[str, NodeSummary]) -> list[Finding]:
    """`?N` in `nodetool status`: the node is in the observer's ring, but its failure detector
    has it neither up nor down (never heard from since the observer started, or a ghost)."""
    pairs = [(o, n) for n in nodes.values() for o, state in n.states if state.startswith("?")]
    if not pairs:
        return []
    observers = group_text(sorted({o for o, _ in pairs}), "observers")
    targets = group_text(sorted({_label(n) for _, n in pairs}), "nodes")
    return [
        Finding(
            severity=Severity.WARNING,
            code="GOSSIP_STATUS_UNKNOWN",
            summary=f"{targets} neither up nor down (?) in the view of {observers}",
            src_cluster="*",
            dst_cluster="*",
            ports=(STORAGE_PORT,),
            affected_pairs=len(pairs),
            hint="the observer has not heard from it on 7000 since it started: ask "
            "`nodetool status` again in a minute; if it stays, run `netcheck run` between them "
            "and compare `nodetool gossipinfo` of both",
            src_scope=observers,
            dst_scope=targets,
        )
    ]


def _versions_mixed(obs: list[Observation]) -> list[Finding]:
    """Nodes of more than one Cassandra release line (major.minor), from describecluster's
    Database versions or gossip's RELEASE_VERSION: an upgrade under way, or one that stopped
    half way (streaming, repair and schema changes between majors are not supported)."""
    by_line: dict[str, set[str]] = defaultdict(set)
    for o in obs:
        if o.description is not None:
            for v in o.description.database_versions:
                by_line[_release_line(v.version)].update(v.addresses)
        for g in o.gossip_endpoints or ():
            if g.release_version:
                by_line[_release_line(g.release_version)].add(g.address)
    by_line.pop("", None)
    return _split(
        "NODE_VERSIONS_MIXED",
        "Cassandra release lines",
        by_line,
        "an upgrade under way or stopped half way: finish it node by node (`nodetool drain`, "
        "upgrade, start, `nodetool upgradesstables`); until then avoid schema changes, repairs "
        "and bootstraps",
    )


def _release_line(version: str) -> str:
    m = re.match(r"^(\d+\.\d+)", version.strip())
    return m.group(1) if m else ""


_UNKNOWN_PLACES = ("UNKNOWN_DC", "UNKNOWN_RACK")  # the snitch's names when gossip has none


def _place_unknown(nodes: dict[str, NodeSummary]) -> list[Finding]:
    """A node listed in UNKNOWN_DC / UNKNOWN_RACK: gossip has no DC or rack for it, the mark
    of an endpoint left over from a removed node, or of one that never finished joining."""
    odd = [
        n for n in nodes.values() if n.datacenter in _UNKNOWN_PLACES or n.rack in _UNKNOWN_PLACES
    ]
    if not odd:
        return []
    names = [n.name or n.address for n in odd]
    return [
        Finding(
            severity=Severity.WARNING,
            code="NODE_PLACE_UNKNOWN",
            summary=f"{group_text(names, 'nodes')} in UNKNOWN_DC/UNKNOWN_RACK: gossip holds no "
            "DC or rack for them",
            src_cluster="*",
            dst_cluster="*",
            ports=(),
            affected_pairs=len(odd),
            hint="an endpoint left over from a node that was removed or replaced, or one that "
            "never finished joining: if no node runs at that address, `nodetool removenode "
            "HOST_ID` (or `nodetool assassinate ADDRESS` when it has no host id) once it is DN "
            "everywhere",
            dst_scope=group_text(names, "nodes"),
        )
    ]


def _no_seeds(obs: list[Observation]) -> list[Finding]:
    out = []
    for o in obs:
        for s in o.logs or ():
            if s.signature is Signature.UNABLE_TO_GOSSIP:
                out.append(
                    Finding(
                        severity=Severity.ERROR,
                        code="UNABLE_TO_GOSSIP",
                        summary=f"{o.observer} could not gossip with any seed at start-up "
                        f"({s.count}x, last {s.last or 'unknown'}) and stopped",
                        src_cluster="*",
                        dst_cluster="*",
                        ports=(STORAGE_PORT,),
                        affected_pairs=1,
                        hint="it reaches no seed on 7000: check the seeds list, the firewall "
                        "towards the seeds, and that its TLS settings match theirs",
                        src_scope=o.observer,
                    )
                )
    return out


# ---------------------------------------------------------------- 7001


def expected_closed(
    observations: Iterable[Observation], topology: Topology, probes: Sequence[ProbeResult]
) -> tuple[tuple[str, int], ...]:
    """(endpoint, port) where refused is normal, for the network diagnosis to leave out."""
    return _legacy_port(list(observations), topology, probes)[0]


def _legacy_port(
    obs: list[Observation], topology: Topology | None, probes: Sequence[ProbeResult]
) -> tuple[tuple[tuple[str, int], ...], list[Finding]]:
    """7001 refused on every probe of a 4.0+ node that does not listen on it is normal."""
    if topology is None:
        return (), []
    release: dict[str, str] = {}
    listens_7001: set[str] = set()
    for o in obs:
        for g in o.gossip_endpoints or ():
            if g.release_version:
                release[g.address] = g.release_version
        if o.description is not None:
            for v in o.description.database_versions:
                for a in v.addresses:
                    release.setdefault(a, v.version)
        for listener in o.listeners:
            if listener.port == SSL_STORAGE_PORT:
                listens_7001.add(listener.address)
    by_dst: dict[str, list[ProbeResult]] = defaultdict(list)
    for p in probes:
        # a probe that was not measured (its agent unusable) says nothing either way
        if p.port == SSL_STORAGE_PORT and p.outcome is not Outcome.NOT_MEASURED:
            by_dst[p.dst].append(p)
    closed = []
    for ep in topology.endpoints:
        seen = by_dst.get(ep.name, [])
        version = _LEGACY_FREE.match(release.get(ep.address, ""))
        if (
            any(p.outcome is Outcome.REFUSED for p in seen)
            and all(p.closed_at(ep.address) for p in seen)
            and version is not None
            and int(version.group(1)) >= 4
            and ep.address not in listens_7001
        ):
            closed.append((ep.name, SSL_STORAGE_PORT))
    if not closed:
        return (), []
    versions = sorted({release[topology.endpoint(n).address] for n, _ in closed})
    return tuple(closed), [
        Finding(
            severity=Severity.INFO,
            code="LEGACY_SSL_PORT_UNUSED",
            summary=f"7001 refused on {group_text([n for n, _ in closed], 'nodes')}: normal, "
            f"Cassandra {', '.join(versions)} listens on 7001 only with "
            "legacy_ssl_storage_port_enabled",
            src_cluster="*",
            dst_cluster="*",
            ports=(SSL_STORAGE_PORT,),
            affected_pairs=len(closed),
            hint="nothing to do; keep 7001 open where nodes still use the legacy SSL port "
            "(upgrades from 3.x)",
            dst_scope=", ".join(n for n, _ in closed),
        )
    ]
