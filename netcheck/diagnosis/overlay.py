"""The overlay between the clusters, folded into the diagnosis (discovery/overlay.py reads it).

- OVERLAY (info): what carries pod traffic between the clusters, per cluster: Submariner (its
  cable driver, gateway nodes, Globalnet), Cilium's or Calico's tunnel and encryption.
- SUBMARINER_NO_GATEWAY (error): Submariner installed, no node labelled as its gateway.
- SUBMARINER_CONNECTION_DOWN (error): a gateway's connection to another cluster is not
  `connected`, with Submariner's own message.
- Folded into the findings of the mesh: a failure between two clusters names the Submariner
  gateways its traffic crosses (the likely place of a cross-cluster fault); an MTU finding on
  a tunnelled path says how many bytes the tunnel takes; between two clusters that both run
  Globalnet, SOURCE_NAT (the translation is Globalnet's own: the verdict leaves those probes
  out too, RunReport.nat_by_design) and overlapping pod or service ranges are info, not
  errors (joining such clusters is what Globalnet is for).
"""

from __future__ import annotations

import dataclasses

from netcheck.discovery.kube import ContextDiscovery
from netcheck.discovery.overlay import Overlay
from netcheck.model.findings import Finding, Severity, cluster_finding

OVERLAP_CODES = ("POD_CIDR_OVERLAP", "SERVICE_CIDR_OVERLAP")
MTU_CODES = ("PATH_MTU_BLACK_HOLE", "PATH_MTU_STALL", "TRANSFER_STALLED", "PATH_MTU_REDUCED")
SUBMARINER_PORTS = "UDP 4500 (IPsec NAT-T) and 4490 (NAT discovery) by default"


def describe(o: Overlay) -> str:
    parts = []
    if o.kind == "submariner":
        parts.append(f"Submariner ({', '.join(o.tunnels)} between gateways)")
        if o.gateways:
            active = f", active: {', '.join(o.active_gateways)}" if o.active_gateways else ""
            parts.append(f"gateway node(s) {', '.join(o.gateways)}{active}")
        if o.globalnet:
            parts.append(f"Globalnet {o.globalnet} (pod addresses translated between clusters)")
    else:
        name = o.kind.capitalize()
        parts.append(f"{name} {' + '.join(o.tunnels)} tunnel" if o.tunnels else f"{name}, routed")
        if o.cluster_mesh:
            parts.append(f"Cluster Mesh as {o.cluster_mesh}")
    if o.overhead:
        parts.append(f"up to {o.overhead} bytes of each packet go to the tunnel")
    return "; ".join(parts)


def overlay_findings(discoveries: list[ContextDiscovery]) -> tuple[Finding, ...]:
    out: list[Finding] = []
    for d in discoveries:
        o = d.overlay
        if not o.kind:
            continue
        out.append(
            cluster_finding(
                Severity.INFO,
                "OVERLAY",
                d.context,
                f"{d.context}: {describe(o)}",
                "the MTU findings and the failures between clusters below take it into account",
            )
        )
        if o.kind != "submariner":
            continue
        if not o.gateways:
            out.append(
                cluster_finding(
                    Severity.ERROR,
                    "SUBMARINER_NO_GATEWAY",
                    d.context,
                    f"{d.context}: Submariner is installed but no node is labelled "
                    "submariner.io/gateway=true: nothing carries pod traffic to the other "
                    "clusters",
                    "kubectl label node NODE submariner.io/gateway=true (a node the other "
                    f"clusters' gateways reach on {SUBMARINER_PORTS})",
                )
            )
        for c in o.connections:
            if c.status == "connected":
                continue
            out.append(
                cluster_finding(
                    Severity.ERROR,
                    "SUBMARINER_CONNECTION_DOWN",
                    d.context,
                    f"{d.context}: Submariner gateway {c.gateway} to cluster {c.remote_cluster} "
                    f"(gateway {c.remote_gateway}) is {c.status}"
                    + (f": {c.message}" if c.message else ""),
                    f"subctl show connections and subctl diagnose all on {d.context}; the "
                    f"gateways must reach each other on {SUBMARINER_PORTS}",
                )
            )
    return tuple(out)


def nat_by_design(discoveries: list[ContextDiscovery]) -> tuple[tuple[str, str], ...]:
    """The cluster pairs (both ways) whose pod addresses Globalnet translates: a `nat` outcome
    between them is the overlay's design (RunReport.nat_by_design)."""
    joined = [d.context for d in discoveries if d.overlay.globalnet]
    return tuple((a, b) for a in joined for b in joined if a != b)


def fold(findings: tuple[Finding, ...], discoveries: list[ContextDiscovery]) -> tuple[Finding, ...]:
    """The run's findings with what the overlay explains of them: their text; and between two
    Globalnet clusters, overlapping ranges and SOURCE_NAT are info (Globalnet is there to
    join such clusters, by translating their addresses). Every other severity stands."""
    overlay = {d.context: d.overlay for d in discoveries}
    out = []
    for f in findings:
        a, b = overlay.get(f.src_cluster), overlay.get(f.dst_cluster)
        between = f.src_cluster != f.dst_cluster
        if f.code in OVERLAP_CODES and between and a and b and a.globalnet and b.globalnet:
            # Globalnet exists to join clusters whose ranges overlap: not a fault there
            out.append(
                dataclasses.replace(
                    f,
                    severity=Severity.INFO,
                    summary=f.summary + "; Submariner Globalnet joins these clusters through "
                    f"global addresses ({a.globalnet}, {b.globalnet}): overlapping ranges are "
                    "what it is for",
                )
            )
            continue
        if a is None or b is None or f.src_cluster == f.dst_cluster or not f.ports:
            out.append(f)
            continue
        location, hint, summary = f.location, f.hint, f.summary
        gateways = [
            f"{ctx}: {', '.join(o.active_gateways or o.gateways)}"
            for ctx, o in ((f.src_cluster, a), (f.dst_cluster, b))
            if o.kind == "submariner" and o.gateways
        ]
        if gateways and f.severity is not Severity.INFO:
            location = "; ".join(
                x
                for x in (location, f"through the Submariner gateways ({'; '.join(gateways)})")
                if x
            )
            hint += " (between the clusters, look at the gateways first: subctl diagnose all)"
        tunnel = max(a.overhead, b.overhead)
        if f.code in MTU_CODES and tunnel:
            names = " + ".join(a.tunnels if a.overhead >= b.overhead else b.tunnels)
            hint += (
                f"; the {names} tunnel takes up to {tunnel} bytes of each packet: the pods' "
                "MTU must leave that room below the path's"
            )
        severity = f.severity
        if f.code == "SOURCE_NAT" and a.globalnet and b.globalnet:
            summary += (
                f"; Submariner Globalnet translates pod addresses between these clusters "
                f"({a.globalnet}, {b.globalnet}): the peers see global addresses by design"
            )
            severity = Severity.INFO  # and the verdict leaves these probes out (nat_by_design)
        out.append(
            dataclasses.replace(f, severity=severity, location=location, hint=hint, summary=summary)
        )
    return tuple(out)
