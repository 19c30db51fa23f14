"""Findings about paths rather than ports: path MTU, packet loss, and raw probes skipped."""

from __future__ import annotations

from dataclasses import replace

from netcheck.model.findings import Finding, Severity
from netcheck.model.paths import PathSummary, cluster_paths
from netcheck.model.probe import ProbeResult
from netcheck.model.topology import Topology

LOSS_WARN_PCT = 5.0  # below this a few lost SYNs are noise
LOSS_MIN_SENT = 20
# what a lossy path does to single probes: one cause (the loss), not one finding per probe
EXPLAINED_BY_LOSS = {"PORT_INTERMITTENT": "timed out", "TRANSFER_STALLED": "stalled"}


def path_findings(
    topology: Topology, evidence: tuple[ProbeResult, ...], found: list[Finding]
) -> list[Finding]:
    paths = {(p.src_cluster, p.dst_cluster): p for p in cluster_paths(topology, evidence)}
    explained = {
        frozenset((f.src_cluster, f.dst_cluster))
        for f in found
        if f.code in ("PATH_MTU_BLACK_HOLE", "PATH_MTU_STALL")
    }
    out: list[Finding] = []
    done: set[frozenset[str]] = set()
    for (a, b), p in sorted(paths.items()):
        pair = frozenset((a, b))
        back = paths.get((b, a))
        if pair in done:
            continue
        if p.path_mtu is not None and (p.black_hole or (back is not None and back.black_hole)):
            if pair not in explained:
                done.add(pair)
                out.append(_black_hole(p, back))
        elif p.path_mtu is not None and p.local_mtu is not None and p.path_mtu < p.local_mtu:
            done.add(pair)
            out.append(_reduced(p, back))
    lossy = {
        k: p for k, p in paths.items() if p.sent >= LOSS_MIN_SENT and p.loss_pct >= LOSS_WARN_PCT
    }
    for (a, b), p in sorted(lossy.items()):
        back = lossy.get((b, a))
        if back is not None and (b, a) < (a, b):
            continue  # said with the other direction: a round trip cannot tell them apart
        measured = f"{p.loss_pct}% of {p.sent} SYNs from {a} to {b}"
        pairs = p.pairs
        if back is not None and a != b:
            measured += f" and {back.loss_pct}% of {back.sent} SYNs from {b} to {a}"
            pairs += back.pairs
        out.append(
            Finding(
                severity=Severity.WARNING,
                code="PACKET_LOSS",
                summary=f"{measured} got no answer "
                f"({pairs} pairs; p50 {p.p50_ms} ms, p99 {p.p99_ms} ms from {a})",
                src_cluster=a,
                dst_cluster=b,
                ports=(),
                affected_pairs=pairs,
                hint="packets are lost on a path that otherwise works: look for a "
                "saturated link, a policer or a flapping tunnel between the clusters; "
                "Cassandra marks peers down under sustained loss",
                src_scope=f"every {a} endpoint",
                dst_scope=f"every {b} endpoint",
            )
        )
    return out


def fold_into_loss(findings: list[Finding]) -> list[Finding]:
    """Probes that timed out or stalled now and then on a path that measurably loses packets
    are that loss's doing: they join its finding (an error then), not a finding each."""
    loss = {(f.src_cluster, f.dst_cluster) for f in findings if f.code == "PACKET_LOSS"}
    # a round trip loses the probe or its answer: either direction's finding explains it
    folded: dict[tuple[str, str], list[Finding]] = {}
    out: list[Finding] = []
    for f in findings:
        key = (f.src_cluster, f.dst_cluster)
        key = key if key in loss else (f.dst_cluster, f.src_cluster)
        if f.code in EXPLAINED_BY_LOSS and key in loss:
            folded.setdefault(key, []).append(f)
        else:
            out.append(f)
    return [
        _explains(f, folded[(f.src_cluster, f.dst_cluster)])
        if f.code == "PACKET_LOSS" and (f.src_cluster, f.dst_cluster) in folded
        else f
        for f in out
    ]


def _explains(loss: Finding, failed: list[Finding]) -> Finding:
    what = [
        f"{','.join(str(p) for p in f.ports)} from {f.src_scope} to {f.dst_scope} "
        f"{EXPLAINED_BY_LOSS[f.code]}"
        for f in sorted(failed, key=lambda f: (f.ports, f.src_scope, f.dst_scope))
    ]
    shown = "; ".join(what[:3]) + (f"; and {len(what) - 3} more" if len(what) > 3 else "")
    return replace(
        loss,
        severity=Severity.ERROR,
        summary=f"{loss.summary}; because of it probes failed now and then: {shown}",
        ports=tuple(sorted({p for f in failed for p in f.ports})),
        hint=f"{loss.hint}. The failed probes answered raw SYNs or carried data at other "
        "times: no rule blocks them",
    )


def _both(p: PathSummary, back: PathSummary | None) -> str:
    if back is not None and back.path_mtu is not None:
        return f"between {p.src_cluster} and {p.dst_cluster}"
    return f"from {p.src_cluster} to {p.dst_cluster}"


def _black_hole(p: PathSummary, back: PathSummary | None) -> Finding:
    mtu = min(x.path_mtu for x in (p, back) if x is not None and x.path_mtu is not None)
    return Finding(
        severity=Severity.ERROR,
        code="PATH_MTU_BLACK_HOLE",
        summary=f"packets above {mtu} bytes vanish {_both(p, back)} without ICMP "
        "fragmentation-needed (path MTU black hole)",
        src_cluster=p.src_cluster,
        dst_cluster=p.dst_cluster,
        ports=(),
        affected_pairs=p.pairs + (back.pairs if back else 0),
        hint=f"a link on this path has MTU {mtu}: allow ICMP type 3 code 4 back to the "
        f"senders, or clamp the TCP MSS to {mtu - 40} on the tunnel/WAN, or lower the pod MTU",
        src_scope=f"every {p.src_cluster} endpoint",
        dst_scope=f"every {p.dst_cluster} endpoint",
        location=f"path MTU {mtu}",
    )


def _reduced(p: PathSummary, back: PathSummary | None) -> Finding:
    assert p.path_mtu is not None
    mtu = min(x.path_mtu for x in (p, back) if x is not None and x.path_mtu is not None)
    by = p.frag_needed_from or (back.frag_needed_from if back else "")
    return Finding(
        severity=Severity.INFO,
        code="PATH_MTU_REDUCED",
        summary=f"path MTU {mtu} {_both(p, back)} (interfaces {p.local_mtu}); path MTU "
        f"discovery works" + (f": {by} answers fragmentation-needed" if by else ""),
        src_cluster=p.src_cluster,
        dst_cluster=p.dst_cluster,
        ports=(),
        affected_pairs=0,
        hint="no action needed while ICMP fragmentation-needed keeps coming back; a firewall "
        f"that starts dropping it turns this into a black hole. Clamping the MSS to {mtu - 40} "
        "avoids depending on it",
        src_scope=f"every {p.src_cluster} endpoint",
        dst_scope=f"every {p.dst_cluster} endpoint",
        location=f"frag-needed from {by}" if by else "",
    )


def raw_skipped_finding(topology: Topology, endpoints: tuple[str, ...]) -> Finding:
    names = sorted(endpoints)
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    clusters = sorted({topology.endpoint(n).cluster for n in names})
    return Finding(
        severity=Severity.INFO,
        code="RAW_PROBES_SKIPPED",
        summary=f"raw probes skipped from {len(names)} agents without CAP_NET_RAW ({shown}): "
        "DROP vs REJECT, traceroute, path MTU and latency were not measured from them",
        src_cluster=clusters[0] if len(clusters) == 1 else "*",
        dst_cluster="*",
        ports=(),
        affected_pairs=0,
        hint="deploy with the raw-probes component (adds only NET_RAW), or run the agent "
        "with CAP_NET_RAW; the plain probes above are complete without it",
        src_scope=", ".join(f"every {c} endpoint" for c in clusters),
        dst_scope="every endpoint",
    )
