"""How pods of one cluster reach another's: routed pod CIDRs, a Submariner tunnel, or Cilium's
own tunnel and Cluster Mesh. Read from what each publishes:

- Submariner: its operator's `Submariner` object (`spec.cableDriver`: libreswan IPsec by
  default, wireguard or vxlan; `spec.globalCIDR` set when Globalnet translates pod addresses),
  the nodes labelled `submariner.io/gateway=true`, and each `Gateway` object's status: its HA
  state and its connections to the other clusters' gateways (`connected`, `connecting`,
  `error` with a message).
- Cilium: `cilium-config` (discovery/cni.py): `routing-mode` (or the older `tunnel`),
  `tunnel-protocol`, `enable-wireguard`, `enable-ipsec`, `cluster-id` (non-zero for Cluster Mesh).
- Calico: each IPPool's `ipipMode`/`vxlanMode` (Always or CrossSubnet: encapsulated).

Objects of the wrong shape are read as far as they go; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

GATEWAY_LABEL = "submariner.io/gateway"
# bytes a tunnel adds to each packet (outer headers; IPv4 outside), which the pod MTU must leave
OVERHEAD = {
    "VXLAN": 50,  # outer Ethernet 14 + IP 20 + UDP 8 + VXLAN 8
    "Geneve": 50,  # as VXLAN, without options
    "IPIP": 20,  # an outer IP header
    "WireGuard": 60,  # IP 20 + UDP 8 + WireGuard 32
    "IPsec": 73,  # ESP in UDP (NAT-T) with AES-GCM, at most: IP 20 + UDP 8 + ESP 45
}
CABLE_DRIVERS = {"libreswan": "IPsec", "wireguard": "WireGuard", "vxlan": "VXLAN"}


@dataclass(frozen=True, kw_only=True)
class GatewayConnection:
    gateway: str  # this cluster's gateway node
    remote_cluster: str
    remote_gateway: str
    status: str  # connected, connecting, error
    message: str


@dataclass(frozen=True, kw_only=True)
class Overlay:
    """kind: "submariner", "cilium", "calico" or "" (routed, or a CNI netcheck does not read);
    tunnels: what wraps the pods' packets ("IPsec", "WireGuard", "VXLAN", ...)."""

    kind: str = ""
    tunnels: tuple[str, ...] = ()
    gateways: tuple[str, ...] = ()  # nodes labelled as Submariner gateways
    active_gateways: tuple[str, ...] = ()
    globalnet: str = ""  # Globalnet's CIDR: pod addresses are translated across clusters
    cluster_mesh: str = ""  # Cilium's cluster-name/id where Cluster Mesh is set up
    connections: tuple[GatewayConnection, ...] = ()

    @property
    def overhead(self) -> int:
        return sum(OVERHEAD.get(t, 0) for t in self.tunnels)


def _get(value: Any, *keys: str) -> Any:
    for k in keys:
        value = value.get(k) if isinstance(value, dict) else None
    return value


def _name(obj: Any) -> str:
    return str(_get(obj, "metadata", "name") or "")


def submariner(
    operators: list[dict[str, Any]], gateways: list[dict[str, Any]], labelled: tuple[str, ...]
) -> Overlay | None:
    """Submariner's view, or None where it is not installed (no Submariner object)."""
    if not operators:
        return None
    spec = _get(operators[0], "spec") or {}
    driver = str(spec.get("cableDriver") or "libreswan") if isinstance(spec, dict) else ""
    conns: list[GatewayConnection] = []
    active: list[str] = []
    for g in gateways:
        st = _get(g, "status")
        if not isinstance(st, dict):
            continue
        host = str(_get(st, "localEndpoint", "hostname") or _name(g))
        if st.get("haStatus") == "active":
            active.append(host)
        for c in st.get("connections") or []:
            if not isinstance(c, dict):
                continue
            conns.append(
                GatewayConnection(
                    gateway=host,
                    remote_cluster=str(_get(c, "endpoint", "cluster_id") or "?"),
                    remote_gateway=str(_get(c, "endpoint", "hostname") or "?"),
                    status=str(c.get("status") or "unknown"),
                    message=str(c.get("statusMessage") or "")[:300],
                )
            )
    return Overlay(
        kind="submariner",
        tunnels=(CABLE_DRIVERS.get(driver, driver),),
        gateways=labelled,
        active_gateways=tuple(sorted(active)),
        globalnet=str(spec.get("globalCIDR") or "") if isinstance(spec, dict) else "",
        connections=tuple(conns),
    )


def cilium(config: dict[str, str]) -> Overlay | None:
    """Cilium's tunnel and encryption from cilium-config (None where it was not read)."""
    if not config:
        return None
    tunnels = []
    mode = config.get("routing-mode") or ("native" if config.get("tunnel") == "disabled" else "")
    protocol = config.get("tunnel-protocol") or config.get("tunnel") or "vxlan"
    if mode != "native" and protocol in ("vxlan", "geneve"):
        tunnels.append("VXLAN" if protocol == "vxlan" else "Geneve")
    if config.get("enable-wireguard") == "true":
        tunnels.append("WireGuard")
    if config.get("enable-ipsec") == "true":
        tunnels.append("IPsec")
    cluster_id = config.get("cluster-id", "0")
    mesh = (
        f"{config.get('cluster-name', '?')} (id {cluster_id})"
        if cluster_id not in ("", "0")
        else ""
    )
    return Overlay(kind="cilium", tunnels=tuple(tunnels), cluster_mesh=mesh)


def calico(pools: list[dict[str, Any]]) -> Overlay | None:
    """IPIP or VXLAN where a pool encapsulates (Always, or CrossSubnet: between subnets)."""
    if not pools:
        return None
    tunnels = []
    for key, name in (("ipipMode", "IPIP"), ("vxlanMode", "VXLAN")):
        if any(_get(p, "spec", key) in ("Always", "CrossSubnet") for p in pools):
            tunnels.append(name)
    return Overlay(kind="calico", tunnels=tuple(tunnels))
