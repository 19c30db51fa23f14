"""Checks on what each node's system tables say (read over CQL by the agent next to it).

system.peers_v2 is membership, not liveness: a peer that is DOWN stays in it, a node that
never joined is absent, and a pod replaced under a new IP can leave its old address behind
(a ghost peer) until `nodetool removenode`. These checks compare each node's table with the
pods the inventory or discovery knows.
"""

from __future__ import annotations

from collections import defaultdict

from netcheck.diagnosis.findings import group_text
from netcheck.model.evidence import CQL_LOGIN_REFUSED, login_needs_quorum
from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import NATIVE_PORT, Observation
from netcheck.model.outcome import Outcome
from netcheck.model.topology import Endpoint, Role, Topology

SECRET_HINT = (
    "the agents log in with Secret netcheck-cql in namespace netcheck (keys username and "
    "password; cass-operator keeps the superuser in Secret <cluster>-superuser)"
)


def cql_findings(obs: list[Observation], topology: Topology | None) -> list[Finding]:
    out = _failures(obs)
    read = [o for o in obs if o.cql is not None]
    out += _cluster_names(read)
    if topology is not None:
        db = {ep.address: ep for ep in topology.endpoints if ep.role is Role.DATABASE}
        out += _missing_peers(read, db)
        out += _ghost_peers(read, db)
    return out


def _failures(obs: list[Observation]) -> list[Finding]:
    login: dict[str, list[str]] = defaultdict(list)
    quorum: dict[str, list[str]] = defaultdict(list)
    skipped: dict[str, list[str]] = defaultdict(list)
    out: list[Finding] = []
    for o in obs:
        failure = o.cql_failure
        if failure is None:
            continue
        detail = failure.detail
        if login_needs_quorum(detail):
            quorum[detail.removeprefix(CQL_LOGIN_REFUSED).lstrip(": ")].append(o.observer)
        elif detail.startswith(CQL_LOGIN_REFUSED):
            login[detail.removeprefix(CQL_LOGIN_REFUSED).lstrip(": ")].append(o.observer)
        elif failure.outcome is Outcome.NOT_MEASURED:
            skipped[detail].append(o.observer)
        else:
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    code="CQL_UNAVAILABLE",
                    summary=f"{o.observer}: the native port {NATIVE_PORT} does not serve CQL to "
                    f"the agent on its own node ({failure})",
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(NATIVE_PORT,),
                    affected_pairs=1,
                    hint="clients cannot use this node: check that Cassandra runs "
                    "(`nodetool statusbinary` says running) and listens on the pod IP",
                    dst_scope=o.observer,
                    outcome=failure.outcome.value,
                )
            )
    for why, names in login.items():
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="CQL_LOGIN_REFUSED",
                summary=f"{group_text(names, 'nodes')} refused the agents' CQL login ({why})",
                src_cluster="*",
                dst_cluster="*",
                ports=(NATIVE_PORT,),
                affected_pairs=len(names),
                hint=f"system tables were not read: {SECRET_HINT}; make it a role that can log in",
            )
        )
    for why, names in quorum.items():
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="CQL_LOGIN_UNAVAILABLE",
                summary=f"{group_text(names, 'nodes')} could not check the agents' CQL login: "
                f"too few replicas of the roles answered ({why})",
                src_cluster="*",
                dst_cluster="*",
                ports=(NATIVE_PORT,),
                affected_pairs=len(names),
                hint="not a credentials problem: a login reads the roles from a quorum of "
                "system_auth replicas, and too few are reachable; fix the connectivity between "
                "the nodes (the network and gossip findings), then run again",
            )
        )
    for why, names in skipped.items():
        out.append(
            Finding(
                severity=Severity.INFO,
                code="CQL_NOT_CHECKED",
                summary=f"system tables not read on {group_text(names, 'nodes')}: {why}",
                src_cluster="*",
                dst_cluster="*",
                ports=(NATIVE_PORT,),
                affected_pairs=len(names),
                hint=SECRET_HINT,
            )
        )
    return out


def _cluster_names(read: list[Observation]) -> list[Finding]:
    names: dict[str, list[str]] = defaultdict(list)
    for o in read:
        assert o.cql is not None
        names[o.cql.cluster_name].append(o.observer)
    if len(names) <= 1:
        return []
    parts = "; ".join(f"{n!r} on {group_text(obs, 'nodes')}" for n, obs in sorted(names.items()))
    return [
        Finding(
            severity=Severity.ERROR,
            code="CLUSTER_NAME_MISMATCH",
            summary=f"{len(names)} cluster names in system.local: {parts}",
            src_cluster="*",
            dst_cluster="*",
            ports=(),
            affected_pairs=len(read),
            hint="nodes of different cluster_name never gossip with each other: each region's "
            "datacenter must name the same Cassandra cluster",
        )
    ]


def _missing_peers(read: list[Observation], db: dict[str, Endpoint]) -> list[Finding]:
    out = []
    for o in read:
        assert o.cql is not None
        # Cassandra writes a peer's row some time after gossip learns of it (fresh clusters
        # lag for seconds): a pod the same node's nodetool lists is known, not missing
        members = {
            o.cql.local.address,
            *(p.address for p in o.cql.peers),
            *(r.address for r in o.status_rows or ()),
            *(g.address for g in o.gossip_endpoints or ()),
        }
        lister = "nodetool" if o.status is not None else "Management API"
        missing = [ep.name for a, ep in db.items() if a not in members]
        if missing:
            out.append(
                Finding(
                    severity=Severity.WARNING,
                    code="CQL_PEERS_MISSING",
                    summary=f"{o.observer}'s {o.cql.peers_table} lacks "
                    f"{group_text(missing, 'pods')}"
                    + (f", and its {lister} does not list them either" if o.status_rows else ""),
                    src_cluster="*",
                    dst_cluster="*",
                    ports=(),
                    affected_pairs=len(missing),
                    hint="it never learned of them through gossip: they never joined this "
                    "cluster (seeds, cluster_name) or were removed from it",
                    src_scope=o.observer,
                    dst_scope=", ".join(sorted(missing)),
                )
            )
    return out


def _ghost_peers(read: list[Observation], db: dict[str, Endpoint]) -> list[Finding]:
    """Peers of a known datacenter at an address no database pod has (peers of unknown DCs
    are a topology question, not a ghost)."""
    dcs = {ep.datacenter for ep in db.values() if ep.datacenter}
    ghosts: dict[str, tuple[str, str, str, list[str]]] = {}
    for o in read:
        assert o.cql is not None
        for p in o.cql.peers:
            if p.address in db or (dcs and p.datacenter not in dcs):
                continue
            entry = ghosts.setdefault(p.address, (p.datacenter, p.rack, p.host_id, []))
            entry[3].append(o.observer)
    out = []
    for address, (dc, rack, host_id, seen_by) in sorted(ghosts.items()):
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="CQL_GHOST_PEER",
                summary=f"{address} ({dc}/{rack}, host ID {host_id or 'unknown'}) is a peer in "
                f"the system tables of {group_text(seen_by, 'nodes')}, but no database pod has "
                "that address",
                src_cluster="*",
                dst_cluster="*",
                ports=(),
                affected_pairs=len(seen_by),
                hint="a pod replaced under a new IP leaves its old address behind: if "
                f"`nodetool status` shows it DN, run `nodetool removenode {host_id or 'HOST_ID'}`",
                dst_scope=address,
            )
        )
    return out
