"""Pod networks as the CNI publishes them, where node `podCIDR` is not the truth.

- Calico: its IPAM hands out blocks of its IPPools (`crd.projectcalico.org/v1` IPPool,
  `spec.cidr`), whatever the nodes' podCIDR says.
- Cilium: in cluster-pool IPAM (its default) each CiliumNode carries the blocks the operator
  gave it (`spec.ipam.podCIDRs`) from `cluster-pool-ipv4-cidr` in the `cilium-config`
  ConfigMap; multi-pool IPAM takes CiliumPodIPPools (`spec.ipv4.cidrs`); in `kubernetes` IPAM
  the nodes' podCIDRs are the truth.
- AWS VPC CNI: pods take addresses of the VPC's subnets, which no Kubernetes object gives as a
  CIDR; with custom networking, ENIConfigs name the pods' subnets by ID (`spec.subnet`).

Each object is read as the cluster has it; a field of the wrong shape or a CIDR that does not
parse is skipped and said (a warning), never guessed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

CILIUM_CONFIG = "cilium-config"  # ConfigMap in kube-system
# what cilium-config says that netcheck uses (IPAM and the overlay)
CILIUM_KEYS = (
    "ipam",
    "cluster-pool-ipv4-cidr",
    "cluster-pool-ipv6-cidr",
    "routing-mode",
    "tunnel",
    "tunnel-protocol",
    "enable-wireguard",
    "enable-ipsec",
    "cluster-name",
    "cluster-id",
    "mtu",
)
CALICO, CILIUM, AWS_VPC_CNI = "calico", "cilium", "aws-vpc-cni"


@dataclass(frozen=True, kw_only=True)
class PodNetwork:
    cidr: str
    source: str  # where it was read: "Calico IPPool default-ipv4-ippool", ...


@dataclass(frozen=True, kw_only=True)
class CniFacts:
    """What the CNI's own objects say. name: "" where none of them was found."""

    name: str = ""
    pod_networks: tuple[PodNetwork, ...] = ()
    eni_subnets: tuple[str, ...] = ()  # AWS custom networking: the pods' subnet IDs
    cilium_config: tuple[tuple[str, str], ...] = ()  # CILIUM_KEYS found in cilium-config
    warnings: tuple[str, ...] = ()


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, dict) else ""


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _cidr(value: Any, where: str, warnings: list[str]) -> str | None:
    """A CIDR as the network it names (host bits cleared), or None and a warning."""
    try:
        if not isinstance(value, str):
            raise ValueError
        return str(ipaddress.ip_network(value.strip(), strict=False))
    except ValueError:
        warnings.append(f"{where}: {str(value)[:60]!r} is not a CIDR; skipped")
        return None


def _strings(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def calico_pools(objs: list[dict[str, Any]], warnings: list[str]) -> list[PodNetwork]:
    """Every IPPool, disabled ones too: their addresses may still be in use."""
    out = []
    for o in objs:
        where = f"Calico IPPool {_name(o)}"
        cidr = _cidr(_spec(o).get("cidr"), where, warnings)
        if cidr:
            disabled = _spec(o).get("disabled") is True
            out.append(PodNetwork(cidr=cidr, source=where + (" (disabled)" if disabled else "")))
    return out


def cilium_networks(
    nodes: list[dict[str, Any]],
    pools: list[dict[str, Any]],
    config: dict[str, str],
    warnings: list[str],
) -> list[PodNetwork]:
    """The cluster pool where cilium-config names it, else the CiliumNodes' blocks; the
    multi-pool IPAM's pools; nothing in `kubernetes` IPAM (node podCIDRs are the truth)."""
    mode = config.get("ipam", "")
    if mode == "kubernetes":
        return []
    out: list[PodNetwork] = []
    for key in ("cluster-pool-ipv4-cidr", "cluster-pool-ipv6-cidr"):
        for item in config.get(key, "").replace(",", " ").split():
            if cidr := _cidr(item, f"cilium-config {key}", warnings):
                out.append(PodNetwork(cidr=cidr, source=f"cilium-config {key}"))
    if not out:
        for n in nodes:
            ipam = _spec(n).get("ipam")
            where = f"CiliumNode {_name(n)}"
            for item in _strings(ipam.get("podCIDRs") if isinstance(ipam, dict) else None):
                if cidr := _cidr(item, where, warnings):
                    out.append(PodNetwork(cidr=cidr, source=where))
    for p in pools:
        where = f"CiliumPodIPPool {_name(p)}"
        for family in ("ipv4", "ipv6"):
            block = _spec(p).get(family)
            for item in _strings(block.get("cidrs") if isinstance(block, dict) else None):
                if cidr := _cidr(item, where, warnings):
                    out.append(PodNetwork(cidr=cidr, source=where))
    return out


def cni_facts(
    *,
    ippools: list[dict[str, Any]],
    cilium_nodes: list[dict[str, Any]],
    cilium_pools: list[dict[str, Any]],
    cilium_config: dict[str, Any] | None,
    eniconfigs: list[dict[str, Any]],
) -> CniFacts:
    """The CNI's view from its objects (each list empty where its API is not served)."""
    warnings: list[str] = []
    data = (cilium_config or {}).get("data")
    config = {
        k: str(v) for k, v in (data if isinstance(data, dict) else {}).items() if k in CILIUM_KEYS
    }
    if ippools:
        name, nets = CALICO, calico_pools(ippools, warnings)
    elif cilium_config is not None or cilium_nodes or cilium_pools:
        name, nets = CILIUM, cilium_networks(cilium_nodes, cilium_pools, config, warnings)
    elif eniconfigs:
        name, nets = AWS_VPC_CNI, []
    else:
        name, nets = "", []
    subnets = sorted({str(_spec(e).get("subnet", "")) for e in eniconfigs} - {""})
    unique = list({n.cidr: n for n in reversed(nets)}.values())[::-1]  # first source wins
    return CniFacts(
        name=name,
        pod_networks=tuple(unique),
        eni_subnets=tuple(subnets),
        cilium_config=tuple(sorted(config.items())),
        warnings=tuple(warnings),
    )
