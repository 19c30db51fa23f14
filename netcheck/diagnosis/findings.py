"""From probe results to findings.

Failures of one outcome are covered greedily by the coarsest (source group, destination
group) rectangles in which every measured pair fails the same way: "7001 times out from every
CP_EAST endpoint to every DP_WEST endpoint" rather than sixteen pair findings. Rectangles that
differ only by port are merged, and so are the two directions of one cause.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product

from netcheck.diagnosis.causes import (
    CAUSES,
    REPLIES_LOST,
    Assigned,
    Cause,
    RawEvidence,
    assign,
)
from netcheck.diagnosis.grid import ABSENT, Grid, Groups, Triple
from netcheck.diagnosis.paths import fold_into_loss, path_findings, raw_skipped_finding
from netcheck.model.findings import Finding, Severity
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.probe_table import OUTCOMES, ProbeTable
from netcheck.model.topology import LEVELS, VECTOR_NODEPORT, Endpoint, Role, Topology

Scope = tuple[str, tuple[str, ...]]  # (level, group key)


def diagnose(
    topology: Topology,
    results: Sequence[ProbeResult],
    agent_problems: tuple[tuple[str, str], ...] = (),
    evidence: tuple[ProbeResult, ...] = (),
    raw_skipped: tuple[str, ...] = (),
) -> tuple[Finding, ...]:
    """Ranked findings for a run.

    agent_problems are (endpoint, one-line message) pairs; evidence is the raw second pass
    (collector/evidence.py); raw_skipped names the endpoints whose agent could not send raw
    packets.
    """
    eps = {ep.name: ep for ep in topology.endpoints}
    outcome_of = Grid.of(topology.endpoints, results)
    unusable_agents = {name for name, _ in agent_problems}
    findings: list[Finding] = []
    for name, message in agent_problems:
        pairs = outcome_of.outgoing(name).present if name in outcome_of.index else 0
        findings.append(
            Finding(
                severity=Severity.WARNING,
                code="AGENT_UNAVAILABLE",
                summary=f"agent of {name} could not be used: {pairs} probes not measured",
                src_cluster=eps[name].cluster,
                dst_cluster="*",
                ports=(),
                affected_pairs=pairs,
                hint=message,
                src_scope=f"pod {name}",
                dst_scope="every endpoint",
                outcome=Outcome.NOT_MEASURED.value,
            )
        )
    usable = outcome_of.without_sources(unusable_agents)
    groups = usable.groups(eps)
    ev = RawEvidence.of(evidence, eps)
    assigned = assign(eps, usable, ev)
    by_key: dict[Assigned, set[Triple]] = defaultdict(set)
    for t, a in assigned.items():
        by_key[a].add(t)
    by_code: dict[str, list[tuple[str, _Rect]]] = defaultdict(list)
    alone = _explained_by_their_endpoint(usable, assigned)
    # the direction where a cause shows directly comes first: it names the source side
    for key in sorted(by_key, key=lambda k: (k.code, k.where == REPLIES_LOST, k.where)):
        covered = _cover(usable, groups, by_key[key], alone - by_key[key])
        for rect in _tightened(eps, covered):
            by_code[key.code].append((key.where, rect))
    nat_view = _translated(results, usable)
    if nat_view is not None:
        # a masquerade on a path that also stalls: the stall is the probes' cause, the
        # address the serving agent saw before the stall proves the NAT as well
        nat = {t for t, o in nat_view.not_open() if o is Outcome.NAT}
        by_code["SOURCE_NAT"] = [("", r) for r in _tightened(eps, _cover(nat_view, groups, nat))]
    for code, rects in by_code.items():
        outcomes = nat_view if code == "SOURCE_NAT" and nat_view is not None else usable
        findings.extend(_to_findings(topology, eps, outcomes, rects, CAUSES[code]))
    findings.extend(path_findings(topology, evidence, findings))
    findings = fold_into_loss(findings)
    if raw_skipped:
        findings.append(raw_skipped_finding(topology, raw_skipped))
    order = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}
    findings.sort(key=lambda f: (order[f.severity], -f.affected_pairs, f.summary))
    return tuple(findings)


def _translated(results: Sequence[ProbeResult], usable: Grid) -> Grid | None:
    """The outcomes with every translated probe as NAT, when some of them failed otherwise
    (a stall hides the NAT in the matrix); None when the matrix shows every NAT already.

    A failed probe whose peer never said which address it saw tells nothing about NAT: it is
    not measured in this view, so it does not split the NAT rectangle into pieces.
    """
    table = ProbeTable.of(results)
    seen = (table.row(i) for i in table.observing)  # the probes whose peer said what it saw
    hidden = {
        (r.src, r.dst, r.port)
        for r in seen
        if r.translated and r.outcome is not Outcome.NAT and (r.src, r.dst, r.port) in usable
    }
    if not hidden:
        return None
    unseen = {
        (r.src, r.dst, r.port): Outcome.NOT_MEASURED
        for r in table.not_open()
        if r.outcome.failed
        and r.outcome is not Outcome.NAT
        and not r.observed_source
        and (r.src, r.dst, r.port) in usable
    }
    return usable.with_outcomes(unseen | dict.fromkeys(hidden, Outcome.NAT))


def _explained_by_their_endpoint(usable: Grid, assigned: dict[Triple, Assigned]) -> set[Triple]:
    """The failures an endpoint explains by itself: every probe of an isolated pod, every
    probe into a destination that failed from every source on every port, every probe out of
    a source that failed to every destination. Other causes' rectangles grow over them (they
    are neither for nor against those causes), so one isolated pod does not split "7001
    dropped between the clusters" into racks and single pods."""
    out = {t for t, a in assigned.items() if a.code == "POD_ISOLATED"}
    ins = {name: usable.incoming(name) for name in usable.names}
    outs = {name: usable.outgoing(name) for name in usable.names}
    measured_in = {d for d, c in ins.items() if c.measured}
    measured_out = {s for s, c in outs.items() if c.measured}
    # at least two failures: one failed probe is not an endpoint's own fault
    dead_in = {d for d, c in ins.items() if c.measured >= 2 and c.failed == c.measured}
    dead_out = {s for s, c in outs.items() if c.measured >= 2 and c.failed == c.measured}
    if len(dead_in) == len(measured_in) or len(dead_out) == len(measured_out):
        return out  # everything fails: nothing stands out as one endpoint's fault
    out.update(t for t in assigned if t[1] in dead_in or t[0] in dead_out)
    return out


@dataclass(frozen=True, kw_only=True)
class _Rect:
    src: Scope
    dst: Scope
    ports: tuple[int, ...]
    pairs: frozenset[tuple[str, str]]


def _cover(
    outcomes: Grid,
    groups: Groups,
    failing: set[Triple],
    neutral: set[Triple] | frozenset[Triple] = frozenset(),
) -> list[_Rect]:
    """Rectangles of (source group, destination group) in which every measured triple is
    one of failing (the triples of one cause), neutral triples aside (another cause's, which
    its endpoint explains: _explained_by_their_endpoint).

    Each port's triples are marked in a byte grid (grid.py): FOR this cause, NEUTRAL (or not
    measured), AGAINST (measured, another outcome). A group is a run of indices, so a
    rectangle holds when no row slice of it contains AGAINST.
    """
    n, index = outcomes.n, outcomes.index
    status: dict[int, bytearray] = {}
    pending: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for s, d, p in failing:
        if p not in status:
            status[p] = outcomes.cells[p].translate(_STATUS)
        si, di = index[s], index[d]
        status[p][si * n + di] = _FOR
        pending[p].add((si, di))
    for s, d, p in neutral:
        cells = status.get(p)
        if cells is not None and cells[index[s] * n + index[d]] == _AGAINST:
            cells[index[s] * n + index[d]] = _NEUTRAL
    rack = LEVELS.index("rack")
    runs = groups.runs
    # the rack pairs still holding a triple to cover, per port: the candidates of every level
    # down to racks come from them, not from every triple
    rack_pending: dict[int, dict[tuple[int, int], int]] = {}
    for p, held in pending.items():
        counted: dict[tuple[int, int], int] = defaultdict(int)
        for si, di in held:
            counted[(runs[rack][si][0], runs[rack][di][0])] += 1
        rack_pending[p] = counted
    chosen: dict[tuple[Scope, Scope], tuple[set[int], set[tuple[int, int]]]] = {}
    for src_li, dst_li in sorted(product(range(len(LEVELS)), repeat=2), key=lambda c: (sum(c), c)):
        if not any(pending.values()):
            break
        for port in sorted(pending):
            todo = pending[port]
            if not todo:
                continue
            if src_li <= rack and dst_li <= rack:
                candidates = sorted(
                    {(runs[src_li][a], runs[dst_li][b]) for a, b in rack_pending[port]}
                )
            else:
                candidates = sorted({(runs[src_li][si], runs[dst_li][di]) for si, di in todo})
            for src_run, dst_run in candidates:
                pairs = _all_failing(status[port], n, src_run, dst_run)
                newly = [x for x in pairs if x in todo]
                if not newly:
                    continue
                todo.difference_update(newly)
                left = rack_pending[port]
                for si, di in newly:
                    key = (runs[rack][si][0], runs[rack][di][0])
                    left[key] -= 1
                    if not left[key]:
                        del left[key]
                sg = (LEVELS[src_li], groups.scopes[src_li][src_run[0]])
                dg = (LEVELS[dst_li], groups.scopes[dst_li][dst_run[0]])
                ports, covered = chosen.setdefault((sg, dg), (set(), set()))
                ports.add(port)
                covered.update(pairs)
    names = outcomes.names
    return [
        _Rect(
            src=sg,
            dst=dg,
            ports=tuple(sorted(ports)),
            pairs=frozenset((names[si], names[di]) for si, di in pairs),
        )
        for (sg, dg), (ports, pairs) in chosen.items()
    ]


_FOR, _NEUTRAL, _AGAINST = 1, 2, 0
# a grid's codes as a rectangle's status before this cause's triples are marked
_STATUS = bytes(
    _NEUTRAL
    if i == ABSENT or (i < len(OUTCOMES) and OUTCOMES[i] is Outcome.NOT_MEASURED)
    else _AGAINST
    for i in range(256)
)
_FOR_CELL = re.compile(bytes([_FOR]))


def _all_failing(
    status: bytearray, n: int, src_run: tuple[int, int], dst_run: tuple[int, int]
) -> list[tuple[int, int]]:
    """The rectangle's pairs when every measured one fails the same way; none as soon as a
    row holds a pair that does not (most candidates stop at their first row)."""
    (slo, shi), (dlo, dhi) = src_run, dst_run
    for si in range(slo, shi):
        if _AGAINST in status[si * n + dlo : si * n + dhi]:
            return []
    return [
        (si, m.start() - si * n)
        for si in range(slo, shi)
        for m in _FOR_CELL.finditer(status, si * n + dlo, si * n + dhi)
    ]


def describe(scope: Scope) -> str:
    level, key = scope
    if level == "all":
        return "every endpoint"
    if level == "cluster":
        return f"every {key[0]} endpoint"
    if level == "datacenter":
        return f"datacenter {key[0]}/{key[1]}"
    if level == "rack":
        return f"rack {key[0]}/{key[1]}/{key[2]}"
    return f"{key[3]}"


def in_scope(text: str, ep: Endpoint) -> bool:
    """Whether an endpoint is in a scope as describe() wrote it."""
    if text == "every endpoint":
        return True
    if text.startswith("every ") and text.endswith(" endpoint"):
        return ep.cluster == text[len("every ") : -len(" endpoint")]
    for level in ("datacenter", "rack"):
        if text.startswith(f"{level} "):
            return "/".join(ep.scope(level)) == text[len(level) + 1 :]
    return ep.name == text


def _cidrs(topology: Topology, eps: dict[str, Endpoint], scope: Scope) -> str:
    level, key = scope
    if level == "cluster":
        cidrs = topology.cluster(key[0]).pod_cidrs
        if cidrs:
            return ", ".join(cidrs)
    if level == "all":
        return "all clusters"
    addresses = sorted(ep.address for ep in eps.values() if ep.scope(level) == key)
    return ", ".join(addresses) if len(addresses) <= 4 else f"{len(addresses)} addresses"


def _cluster_of(scope: Scope) -> str:
    return scope[1][0] if scope[0] != "all" else "*"


def _tighten(eps: dict[str, Endpoint], scope: Scope, involved: set[str]) -> Scope:
    """Name one host when only one is involved; narrow 'every endpoint' to one cluster."""
    if len(involved) == 1:
        name = next(iter(involved))
        return ("pod", eps[name].scope("pod"))
    clusters = {eps[n].cluster for n in involved}
    if scope[0] == "all" and len(clusters) == 1:
        return ("cluster", (next(iter(clusters)),))
    return scope


def _tightened(eps: dict[str, Endpoint], rects: list[_Rect]) -> list[_Rect]:
    merged: dict[tuple[Scope, Scope], tuple[set[int], set[tuple[str, str]]]] = {}
    for r in rects:
        sc = _tighten(eps, r.src, {s for s, _ in r.pairs})
        dc = _tighten(eps, r.dst, {d for _, d in r.pairs})
        ports, pairs = merged.setdefault((sc, dc), (set(), set()))
        ports.update(r.ports)
        pairs.update(r.pairs)
    return _folded(eps, merged)


def _folded(
    eps: dict[str, Endpoint],
    merged: dict[tuple[Scope, Scope], tuple[set[int], set[tuple[str, str]]]],
) -> list[_Rect]:
    """Fold a rectangle into a wider one of the same outcome that contains both its sides.

    A port that only some endpoints serve (30600 on control-plane nodes) then joins the
    finding of the cause rather than standing alone.
    """

    memo: dict[Scope, frozenset[str]] = {}

    def members(scope: Scope) -> frozenset[str]:
        if scope not in memo:
            memo[scope] = frozenset(n for n, ep in eps.items() if ep.scope(scope[0]) == scope[1])
        return memo[scope]

    keys = sorted(merged, key=lambda k: -len(members(k[0])) * len(members(k[1])))
    for small in reversed(keys):
        for big in keys:
            if big == small or big not in merged or small not in merged:
                continue
            if members(small[0]) <= members(big[0]) and members(small[1]) <= members(big[1]):
                ports, pairs = merged.pop(small)
                merged[big][0].update(ports)
                merged[big][1].update(pairs)
                break
    return [
        _Rect(src=sc, dst=dc, ports=tuple(sorted(ports)), pairs=frozenset(pairs))
        for (sc, dc), (ports, pairs) in merged.items()
    ]


def _to_findings(
    topology: Topology,
    eps: dict[str, Endpoint],
    outcome_of: Mapping[Triple, Outcome],
    rects: list[tuple[str, _Rect]],
    cause: Cause,
) -> list[Finding]:
    out: list[Finding] = []
    used: set[int] = set()
    for i, (where, r) in enumerate(rects):
        if i in used:
            continue
        used.add(i)
        mirror = next(
            (
                j
                for j, (_, q) in enumerate(rects)
                if j not in used and q.src == r.dst and q.dst == r.src
            ),
            None,
        )
        src, dst = describe(r.src), describe(r.dst)
        wheres = [where]
        asymmetric = False
        if mirror is not None:
            used.add(mirror)
            back_where, back = rects[mirror]
            wheres.append(back_where)
            ports = tuple(sorted(set(r.ports) | set(back.ports)))
            pairs = len(r.pairs) + len(back.pairs)
            ports_s = ",".join(str(p) for p in ports)
            summary = (
                f"{ports_s} {cause.verb} between {src} and {dst}, both directions: {pairs} pairs"
            )
        else:
            ports = r.ports
            pairs = len(r.pairs)
            ports_s = ",".join(str(p) for p in ports)
            summary = f"{ports_s} {cause.verb} from {src} to {dst}: {pairs} pairs"
            if cause.code != "NOT_MEASURED":
                reverse = [outcome_of.get((d, s, p)) for s, d in r.pairs for p in r.ports]
                if reverse and all(o is Outcome.OPEN for o in reverse):
                    asymmetric = True
                    summary += " (one direction only: the reverse is open)"
        location = "; ".join(dict.fromkeys(w for w in wheres if w))
        if location:
            summary += f"; {location}"
        if VECTOR_NODEPORT in ports and all(
            eps[d].role is Role.CONTROL_PLANE_NODE for _, d in r.pairs
        ):
            summary += (
                f"; {VECTOR_NODEPORT} is Mission Control's Vector aggregator (a NodePort on "
                "the control plane's nodes): the data planes' logs and metrics do not arrive"
            )
        out.append(
            Finding(
                severity=cause.severity,
                code=cause.code,
                summary=summary,
                src_cluster=_cluster_of(r.src),
                dst_cluster=_cluster_of(r.dst),
                ports=ports,
                affected_pairs=pairs,
                hint=cause.hint.format(
                    ports=ports_s,
                    src=_cidrs(topology, eps, r.src),
                    dst=_cidrs(topology, eps, r.dst),
                ),
                src_scope=src,
                dst_scope=dst,
                outcome=_outcome(outcome_of, r),
                location=location,
                asymmetric=asymmetric,
            )
        )
    return out


def _outcome(outcome_of: Mapping[Triple, Outcome], r: _Rect) -> str:
    """The outcome most of the rectangle's probes ended in."""
    seen = (outcome_of.get((s, d, p)) for s, d in r.pairs for p in r.ports)
    failing = [o for o in seen if o is not None and o is not Outcome.OPEN]
    return max(sorted(set(failing)), key=failing.count).value if failing else ""


def group_text(items: list[str], unit: str) -> str:
    """A few names in full, many as a count and the first two."""
    items = sorted(set(items))
    if len(items) <= 3:
        return ", ".join(items)
    return f"{len(items)} {unit}: {', '.join(items[:2])}, ..."
