"""Lab faults: drop, reject, blackhole, mtu, masquerade, route, loss.

Selectors name a cluster (CP_EAST), a rack (CP_EAST/r1 or CP_EAST/dc1/r1) or a lab host by
name (cp-dc1-r1-p0). A fault between two clusters is applied where it would be in the field:
the WAN router (firewalls), the cluster router (routes, masquerade) or the WAN links (MTU).
Inside one cluster it is applied at the destination hosts (firewalls) or the sources (routes).
A missing route between clusters drops silently, as a cloud route table does; inside a
cluster the source host has no route and fails at once (unreachable).
Every fault records the exact commands that undo it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from netcheck.lab import net
from netcheck.lab.build import WAN_NS, require_state, save_state
from netcheck.lab.net import LabError

KINDS = ("drop", "reject", "blackhole", "mtu", "masquerade", "route", "loss")
REJECT_WITH = (
    "icmp-admin-prohibited",
    "tcp-reset",
    "icmp-port-unreachable",
    "icmp-host-unreachable",
    "icmp-net-unreachable",
)


@dataclass(frozen=True, kw_only=True)
class Selection:
    text: str
    cluster: str
    cidr: str  # the selector's addresses as one CIDR
    hosts: tuple[dict[str, Any], ...]  # the lab hosts it contains


def select(state: dict[str, Any], text: str) -> Selection:
    clusters = {c["name"]: c for c in state["clusters"]}
    hosts = state["hosts"]
    parts = text.split("/")
    if parts[0] in clusters and len(parts) == 1:
        chosen = [h for h in hosts if h["cluster"] == text]
        return Selection(text=text, cluster=text, cidr=clusters[text]["site"], hosts=tuple(chosen))
    if parts[0] in clusters and len(parts) in (2, 3):
        rack = parts[-1]
        dc = parts[1] if len(parts) == 3 else None
        chosen = [
            h
            for h in hosts
            if h["cluster"] == parts[0]
            and h["rack"] == rack
            and (dc is None or h["datacenter"] == dc)
        ]
        if not chosen:
            raise LabError(
                f"selector {text!r}: no rack {rack!r} in {parts[0]}; see `netcheck lab inventory`"
            )
        if len({h["datacenter"] for h in chosen}) > 1:
            raise LabError(
                f"selector {text!r}: rack {rack!r} is in several datacenters; "
                f"write {parts[0]}/DATACENTER/{rack}"
            )
        net_ = ipaddress.ip_network(f"{chosen[0]['address']}/24", strict=False)
        return Selection(text=text, cluster=parts[0], cidr=str(net_), hosts=tuple(chosen))
    for h in hosts:
        if h["name"] == text:
            return Selection(text=text, cluster=h["cluster"], cidr=f"{h['address']}/32", hosts=(h,))
    names = ", ".join(sorted(clusters))
    raise LabError(
        f"selector {text!r}: not a cluster ({names}), CLUSTER/RACK or a lab host "
        "name; see `netcheck lab inventory`"
    )


def _router(state: dict[str, Any], cluster: str) -> dict[str, Any]:
    return next(c for c in state["clusters"] if c["name"] == cluster)


class _Undo:
    """Applies commands and remembers their inverses."""

    def __init__(self) -> None:
        self.undo: list[list[str]] = []

    def iptables(self, ns: str, table: str, chain: str, rule: list[str]) -> None:
        net.iptables(ns, "-t", table, "-I", chain, *rule)
        self.undo.append(
            ["ip", "netns", "exec", ns, "iptables", "-w", "5", "-t", table, "-D", chain, *rule]
        )

    def rule(self, ns: str, args: list[str]) -> None:
        net.ip(ns, "rule", "add", *args)
        self.undo.append(["ip", "-n", ns, "rule", "del", *args])

    def mtu(self, ns: str, dev: str, mtu: int) -> None:
        net.ip(ns, "link", "set", "dev", dev, "mtu", str(mtu))
        self.undo.append(["ip", "-n", ns, "link", "set", "dev", dev, "mtu", "1500"])

    def rollback(self) -> None:
        for cmd in reversed(self.undo):
            net.run(*cmd, check=False)


def _host_chains(state: dict[str, Any], h: dict[str, Any]) -> tuple[str, ...]:
    """Where a host filters what comes to it: INPUT, and FORWARD too on a Kubernetes node,
    whose pods sit behind it in namespaces of their own (lab/pods.py)."""
    return ("INPUT", "FORWARD") if h["name"] in (state.get("node_hosts") or ()) else ("INPUT",)


def _filter(
    u: _Undo, state: dict[str, Any], src: Selection, dst: Selection, port: int, target: list[str]
) -> None:
    match = ["-s", src.cidr, "-d", dst.cidr, "-p", "tcp", "--dport", str(port)]
    if src.cluster != dst.cluster:
        u.iptables(WAN_NS, "filter", "FORWARD", [*match, "-j", *target])
        return
    for h in dst.hosts:
        for chain in _host_chains(state, h):
            u.iptables(h["namespace"], "filter", chain, [*match, "-j", *target])


def _route(u: _Undo, state: dict[str, Any], src: Selection, dst: Selection, pref: int) -> None:
    if src.cluster != dst.cluster:
        # A cloud route table without the peering route drops silently (and Linux rate-limits
        # the ICMP a router would send): blackhole keeps the lab deterministic.
        u.rule(
            _router(state, src.cluster)["router_ns"],
            ["from", src.cidr, "to", dst.cidr, "blackhole", "pref", str(pref)],
        )
        return
    for h in src.hosts:
        u.rule(h["namespace"], ["to", dst.cidr, "unreachable", "pref", str(pref)])


def add_fault(
    kind: str,
    *,
    src: str | None = None,
    dst: str | None = None,
    port: int | None = None,
    both: bool = True,
    mtu: int = 1200,
    reject_with: str = "icmp-admin-prohibited",
    allow_frag_needed: bool = False,
    percent: float = 10.0,
) -> dict[str, Any]:
    state = require_state()
    if kind not in KINDS:
        raise LabError(f"unknown fault kind {kind!r}: use one of {', '.join(KINDS)}")
    fid = int(state["next_fault"])
    u = _Undo()
    try:
        _apply(
            u, state, kind, fid, src, dst, port, both, mtu, reject_with, allow_frag_needed, percent
        )
    except BaseException:
        u.rollback()
        raise
    fault = {
        "id": fid,
        "kind": kind,
        "src": src,
        "dst": dst,
        "port": port,
        "direction": "both" if both else "one",
        "mtu": mtu if kind == "mtu" else None,
        "reject_with": reject_with if kind == "reject" else None,
        "allow_frag_needed": allow_frag_needed if kind == "mtu" else None,
        "percent": percent if kind == "loss" else None,
        "undo": u.undo,
    }
    state["faults"].append(fault)
    state["next_fault"] = fid + 1
    save_state(state)
    return fault


def _need(value: Any, what: str, kind: str) -> Any:
    if value is None:
        raise LabError(f"fault {kind}: {what} is required")
    return value


def _apply(
    u: _Undo,
    state: dict[str, Any],
    kind: str,
    fid: int,
    src_t: str | None,
    dst_t: str | None,
    port: int | None,
    both: bool,
    mtu: int,
    reject_with: str,
    allow_frag_needed: bool,
    percent: float,
) -> None:
    if kind == "loss":
        # random loss of every TCP packet (any port unless --port), as a congested or
        # policed link loses them: iptables' statistic match, no tc needed
        if not 0 < percent < 100:
            raise LabError(f"--percent {percent}: use a value above 0 and below 100")
        src = select(state, _need(src_t, "--src", kind))
        dst = select(state, _need(dst_t, "--dst", kind))
        ports = ["--dport", str(port)] if port else []
        rule = ["-m", "statistic", "--mode", "random", "--probability", f"{percent / 100:.4f}"]
        pairs = [(src, dst), (dst, src)] if both else [(src, dst)]
        for s, d in pairs:
            match = ["-s", s.cidr, "-d", d.cidr, "-p", "tcp", *ports]
            if s.cluster != d.cluster:
                u.iptables(WAN_NS, "filter", "FORWARD", [*match, *rule, "-j", "DROP"])
            else:
                for h in d.hosts:
                    for chain in _host_chains(state, h):
                        u.iptables(h["namespace"], "filter", chain, [*match, *rule, "-j", "DROP"])
    elif kind in ("drop", "reject"):
        src = select(state, _need(src_t, "--src", kind))
        dst = select(state, _need(dst_t, "--dst", kind))
        p = int(_need(port, "--port", kind))
        if reject_with not in REJECT_WITH:
            raise LabError(f"--with {reject_with!r}: use one of {', '.join(REJECT_WITH)}")
        target = ["DROP"] if kind == "drop" else ["REJECT", "--reject-with", reject_with]
        _filter(u, state, src, dst, p, target)
        if both:
            _filter(u, state, dst, src, p, target)
    elif kind == "blackhole":
        sel = select(state, _need(src_t, "--src", kind))
        for h in sel.hosts:
            for chain in _host_chains(state, h):
                u.iptables(h["namespace"], "filter", chain, ["-i", "eth0", "-j", "DROP"])
    elif kind == "route":
        src = select(state, _need(src_t, "--src", kind))
        dst = select(state, _need(dst_t, "--dst", kind))
        _route(u, state, src, dst, 1000 + fid)
        if both:
            _route(u, state, dst, src, 1000 + fid)
    elif kind == "masquerade":
        src = select(state, _need(src_t, "--src", kind))
        pairs = (
            [(src, select(state, dst_t))]
            if dst_t
            else [
                (src, select(state, c["name"]))
                for c in state["clusters"]
                if c["name"] != src.cluster
            ]
        )
        if both:
            pairs += [(d, s) for s, d in pairs]
        for s, d in pairs:
            if s.cluster == d.cluster:
                raise LabError(
                    "fault masquerade: --src and --dst must be in different clusters "
                    "(traffic inside a cluster is bridged, not routed)"
                )
            u.iptables(
                _router(state, s.cluster)["router_ns"],
                "nat",
                "POSTROUTING",
                ["-s", s.cidr, "-d", d.cidr, "-o", "wan0", "-j", "MASQUERADE"],
            )
    elif kind == "mtu":
        if not 576 <= mtu <= 1500:
            raise LabError(f"--mtu {mtu}: use a value from 576 to 1500")
        names = [select(state, src_t).cluster] if src_t else [c["name"] for c in state["clusters"]]
        block = ["-p", "icmp", "--icmp-type", "fragmentation-needed", "-j", "DROP"]
        for name in names:
            c = _router(state, name)
            u.mtu(c["router_ns"], "wan0", mtu)
            u.mtu(WAN_NS, f"to-{c['short']}", mtu)
            if not allow_frag_needed:
                u.iptables(c["router_ns"], "filter", "OUTPUT", block)
        if not allow_frag_needed:
            u.iptables(WAN_NS, "filter", "OUTPUT", block)


def list_faults() -> list[dict[str, Any]]:
    faults: list[dict[str, Any]] = require_state()["faults"]
    return faults


def clear_faults() -> int:
    state = require_state()
    for fault in reversed(state["faults"]):
        for cmd in reversed(fault["undo"]):
            net.run(*cmd, check=False)
    n = len(state["faults"])
    state["faults"] = []
    save_state(state)
    # Path MTUs the hosts learned under an MTU fault would outlive it (10 minutes) and hide
    # the next one: forget them, as a fresh cluster would not know them either.
    for ns in net.lab_namespaces():  # the hosts, and the pods of the lab's Kubernetes
        net.ip(ns, "route", "flush", "cache", check=False)
    return n
