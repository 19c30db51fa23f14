"""Each node's place in its life as gossip tells it (model/gossip.py: GossipState): joining,
replacing, moving, leaving, left, being removed, removed, hibernating, shut down. One finding
per node not NORMAL, from the newest view: gossipinfo blocks are ordered as gossip orders
them (generation, then heartbeat, then how far along the state is), and `nodetool status`
letters (UJ, UL, UM) count where no gossipinfo speaks of the node.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from netcheck.diagnosis.findings import group_text
from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import GossipEndpoint, GossipState, Observation


@dataclass(frozen=True, kw_only=True)
class _Meaning:
    severity: Severity
    code: str
    says: str  # what the node is doing, after its name
    hint: str


_MEANINGS = {
    GossipState.SHUTDOWN: _Meaning(
        severity=Severity.ERROR,
        code="NODE_SHUT_DOWN",
        says="announced its shutdown (gossip STATUS shutdown, DSE's S in status): "
        "Cassandra was stopped on it and has not come back",
        hint="start Cassandra on it again; if it stopped by itself, its system.log's last "
        "lines say why (disk, commit log, OOM)",
    ),
    GossipState.LEAVING: _Meaning(
        severity=Severity.WARNING,
        code="NODE_LEAVING",
        says="is leaving the ring (decommission under way)",
        hint="wait for `nodetool decommission` to end (`nodetool netstats` shows its "
        "streams); one that hangs often cannot stream to a peer across a firewall on 7000",
    ),
    GossipState.LEFT: _Meaning(
        severity=Severity.INFO,
        code="NODE_LEFT",
        says="left the ring (decommissioned); gossip forgets it within 3 days",
        hint="nothing to do if it was meant to leave; its ranges are on other nodes now",
    ),
    GossipState.MOVING: _Meaning(
        severity=Severity.WARNING,
        code="NODE_MOVING",
        says="is moving to another token",
        hint="wait for `nodetool move` to end (`nodetool netstats` shows its streams)",
    ),
    GossipState.REMOVING: _Meaning(
        severity=Severity.WARNING,
        code="NODE_BEING_REMOVED",
        says="is being removed from the ring (removenode under way)",
        hint="`nodetool removenode status` on the coordinator; `nodetool removenode force` "
        "only if it hangs and the node is gone for good",
    ),
    GossipState.REMOVED: _Meaning(
        severity=Severity.INFO,
        code="NODE_REMOVED",
        says="was removed from the ring (removenode)",
        hint="nothing to do if it was meant to go; gossip forgets it within 3 days",
    ),
    GossipState.HIBERNATE: _Meaning(
        severity=Severity.WARNING,
        code="NODE_HIBERNATING",
        says="is hibernating: it started with replace_address and waits to take a dead "
        "node's place",
        hint="its system.log says how the replacement goes; one that stays in hibernate "
        "cannot reach its peers on 7000, or failed and was stopped: its peers keep it in "
        "hibernate until it starts again (CASSANDRA-19580), or `nodetool assassinate` it "
        "if no node runs there any more",
    ),
    GossipState.BOOT: _Meaning(
        severity=Severity.WARNING,
        code="NODE_JOINING",
        says="is joining the ring (bootstrap)",
        hint="wait for the bootstrap to end (`nodetool netstats` shows its streams); one "
        "stuck joining often cannot stream from a peer across a firewall",
    ),
    GossipState.BOOT_REPLACE: _Meaning(
        severity=Severity.WARNING,
        code="NODE_REPLACING",
        says="is replacing a dead node",
        hint="wait for the replacement's streams to end (`nodetool netstats`)",
    ),
}
# the second letter of `nodetool status` (S: DSE's "stopped")
_LETTERS = {
    "J": GossipState.BOOT,
    "L": GossipState.LEAVING,
    "M": GossipState.MOVING,
    "S": GossipState.SHUTDOWN,
}


def lifecycle(obs: list[Observation], names: dict[str, str]) -> list[Finding]:
    """names: address -> the inventory's or discovery's name for it, where known."""
    told: dict[str, list[tuple[str, GossipEndpoint]]] = defaultdict(list)
    lettered: dict[str, dict[str, GossipState]] = defaultdict(dict)
    for o in obs:
        for g in o.gossip_endpoints or ():
            told[g.address].append((o.observer, g))
        for row in o.status_rows or ():
            state = _LETTERS.get(row.state[1:2])
            if state is not None:
                lettered[row.address][o.observer] = state
    out = []
    for address in sorted(set(told) | set(lettered)):
        label = f"{names[address]} ({address})" if address in names else address
        if told[address]:
            newest = max(told[address], key=lambda v: _order(v[1]))[1]
            state = newest.state
            views = [o for o, g in told[address] if g.state is state]
            behind = sorted(
                {f"{o} ({g.state.value})" for o, g in told[address] if g.state is not state}
            )
            source = "gossipinfo"
        else:
            newest = None
            state = max(lettered[address].values(), key=lambda s: s.stage)
            views = [o for o, s in lettered[address].items() if s is state]
            behind = []
            source = "nodetool status"
        meaning = _MEANINGS.get(state)
        if meaning is None:
            continue
        detail = _detail(state, newest)
        lag = f"; still older news in {', '.join(behind)}" if behind else ""
        out.append(
            Finding(
                severity=meaning.severity,
                code=meaning.code,
                summary=f"{label} {meaning.says}{detail} (per {source} of "
                f"{group_text(views, 'views')}{lag})",
                src_cluster="*",
                dst_cluster="*",
                ports=(),
                affected_pairs=1,
                hint=meaning.hint,
                dst_scope=label,
            )
        )
    return out


def shut_down(obs: list[Observation]) -> set[str]:
    """Addresses whose newest gossip view is an announced shutdown (or, where no gossipinfo
    speaks of them, DSE's stopped letter in status): their DN is explained."""
    newest: dict[str, GossipEndpoint] = {}
    stopped: set[str] = set()
    for o in obs:
        for g in o.gossip_endpoints or ():
            if g.address not in newest or _order(g) > _order(newest[g.address]):
                newest[g.address] = g
        stopped |= {r.address for r in o.status_rows or () if r.state[1:2] == "S"}
    told = {a for a, g in newest.items() if g.state is GossipState.SHUTDOWN}
    return told | (stopped - set(newest))


def _order(g: GossipEndpoint) -> tuple[int, int, int]:
    return (g.generation or -1, g.heartbeat or -1, g.state.stage)


def _detail(state: GossipState, g: GossipEndpoint | None) -> str:
    if g is None:
        return ""
    if state is GossipState.REMOVING and g.removal_coordinator:
        return f", by the node with host id {g.removal_coordinator}"
    if state is GossipState.BOOT_REPLACE and g.status_detail:
        return f" ({g.status_detail})"
    return ""
