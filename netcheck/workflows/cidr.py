"""`cidr plan` and `cidr check`: address ranges across clusters, read from discovery only (no
agent is deployed).

    import asyncio, ipaddress
    from netcheck.workflows.cidr import check_cidrs, plan_cidrs, Sizing

    checked = asyncio.run(check_cidrs("kubeconfig", ["CP_EAST", "DP_WEST"]))
    print([f.code for f in checked.findings], checked.problems, checked.errors)
    planned = asyncio.run(plan_cidrs(Sizing(nodes=100), kubeconfig="kubeconfig",
                                     contexts=["CP_EAST", "DP_WEST"]))
    print(planned.plan, planned.no_room)
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from netcheck.diagnosis.cidr_plan import PRIVATE_POOLS, CidrPlan, PlanError, known_ranges, plan
from netcheck.diagnosis.cidrs import cidr_findings, cidr_problems
from netcheck.diagnosis.overlay import fold, overlay_findings
from netcheck.discovery.kube import ContextDiscovery
from netcheck.model.findings import Finding
from netcheck.workflows.contexts import denied_lines, discover_all

Net = ipaddress.IPv4Network


@dataclass(frozen=True, kw_only=True)
class Sizing:
    """The new cluster: its nodes, the pods a node may run, the services to hold."""

    nodes: int
    pods_per_node: int = 110
    services: int = 4000


@dataclass(frozen=True, kw_only=True)
class Avoided:
    """A range the plan keeps clear of, and what it is (`--taken`, `CP_EAST pods (...)`)."""

    net: Net
    what: str


@dataclass(frozen=True, kw_only=True)
class PlanDone:
    """plan: the proposal, or None with no_room saying what to change; avoided: every known
    range inside the pools planned in (node addresses as /32s); not_planned_around: known
    ranges a plan of IPv4 ranges has nothing to keep clear of (IPv6), or that discovery gave
    unreadable; errors: one line per context that could not be read (its ranges are not
    avoided)."""

    plan: CidrPlan | None
    no_room: str = ""
    avoided: tuple[Avoided, ...] = ()
    not_planned_around: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


def discovered_ranges(found: Sequence[ContextDiscovery]) -> tuple[list[Avoided], list[str]]:
    """The IPv4 ranges each cluster uses; anything else (a dual-stack cluster's IPv6 range, a
    range discovery read but cannot parse) is named, never a reason to stop planning."""
    ranges: list[Avoided] = []
    other: list[str] = []
    for d in found:
        for cidr, what in known_ranges(d):
            try:
                net = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                other.append(f"{what}: {cidr!r} is not a CIDR")
                continue
            if isinstance(net, Net):
                ranges.append(Avoided(net=net, what=what))
            else:
                other.append(f"{what}: {cidr} (IPv6; the plan is IPv4)")
    return ranges, other


async def plan_cidrs(
    sizing: Sizing,
    *,
    taken: Sequence[Net] = (),
    within: Sequence[Net] = (),
    kubeconfig: str | None = None,
    contexts: Sequence[str] = (),
) -> PlanDone:
    """Pod and service CIDRs for a new cluster, clear of `taken` and of every range the
    clusters of `contexts` use; inside `within` (RFC 1918 by default)."""
    known = [Avoided(net=t, what="--taken") for t in taken]
    other: list[str] = []
    errors: dict[str, str] = {}
    if contexts and kubeconfig is not None:
        found = await discover_all(kubeconfig, list(contexts), (), errors)
        read, other = discovered_ranges([found[c] for c in contexts if c in found])
        known += read
    pools = tuple(within) or PRIVATE_POOLS
    avoided = tuple(a for a in known if any(a.net.overlaps(p) for p in pools))
    try:
        proposal: CidrPlan | None = plan(
            [a.net for a in known], sizing.nodes, sizing.pods_per_node, sizing.services, pools
        )
        no_room = ""
    except PlanError as exc:
        proposal, no_room = None, str(exc)
    return PlanDone(
        plan=proposal,
        no_room=no_room,
        avoided=avoided,
        not_planned_around=tuple(other),
        errors=tuple(errors.values()),
    )


@dataclass(frozen=True, kw_only=True)
class CheckDone:
    """clusters: what discovery read of each; findings: overlaps and the overlays; problems:
    what could not be read inside a cluster that was (its CNI's pools); denied: a line per
    optional read RBAC refused; errors: one line per context that could not be read."""

    clusters: tuple[ContextDiscovery, ...]
    findings: tuple[Finding, ...]
    problems: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()


async def check_cidrs(kubeconfig: str, contexts: Sequence[str]) -> CheckDone:
    """Each cluster's pod networks (its CNI's where it publishes them), service CIDRs and
    nodes, and every overlap between the clusters."""
    errors: dict[str, str] = {}
    found = await discover_all(kubeconfig, list(contexts), (), errors)
    read = [found[c] for c in contexts if c in found]
    return CheckDone(
        clusters=tuple(read),
        findings=tuple(fold(cidr_findings(read), read)) + tuple(overlay_findings(read)),
        problems=tuple(cidr_problems(read)),
        denied=tuple(denied_lines(found)),
        errors=tuple(errors[c] for c in contexts if c in errors),
    )
