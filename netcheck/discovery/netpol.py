"""NetworkPolicies with their real semantics: who may open a connection to a pod, on a port.

What Kubernetes says (networking.k8s.io/v1, the API reference and "Network Policies"):
- A pod is isolated for ingress when some policy of its namespace selects it (`podSelector`,
  empty = every pod of the namespace) and lists `Ingress` in `policyTypes`. `policyTypes`
  left out means `Ingress`, plus `Egress` when the policy has `egress` rules. The same for
  egress on the source's side.
- A pod that is not isolated admits everything. An isolated pod admits a connection when at
  least one policy that selects it has a rule that admits both the peer and the port: the
  policies add up, none takes away.
- A rule with `from` (`to`) left out or empty admits every peer; with `ports` left out or empty,
  every port. A port is a number or a name (resolved against the destination pod's container
  ports, with its protocol), optionally a range to `endPort`; the protocol defaults to TCP.
- A peer is an `ipBlock` (a CIDR minus its `except` CIDRs), or pods: `podSelector` alone is the
  policy's namespace, `namespaceSelector` alone every pod of the namespaces it selects, both
  together the selected pods of the selected namespaces.
- A label selector is `matchLabels` and `matchExpressions` (In, NotIn, Exists, DoesNotExist),
  all of them; an empty selector selects everything. NotIn and DoesNotExist hold for a label
  that is absent. Every namespace has the label `kubernetes.io/metadata.name`.
- A connection needs the source's egress and the destination's ingress to admit it. Replies of
  an admitted connection are always admitted.

One choice where the reference leaves it to the implementation: an `ipBlock` is matched against
the source's address whoever it is, also a pod of the cluster (kube-network-policies and most
CNIs do; the reference says pod IPs "may or may not" match). A pod of another Kubernetes
cluster is, to this cluster's policies, only an address: only an `ipBlock` can admit it.

Parsing is strict: the API server validated these objects, so anything this module cannot read
is a PolicyError that names the policy and the field, and the caller reports the audit of that
namespace as not done rather than guessing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from netcheck.model.text import ascii_int

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class PolicyError(ValueError):
    """A NetworkPolicy this module cannot read: the message names it and the field."""


@dataclass(frozen=True, kw_only=True)
class Requirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()

    def holds(self, labels: Mapping[str, str]) -> bool:
        if self.operator == "In":
            return labels.get(self.key) in self.values
        if self.operator == "NotIn":
            return labels.get(self.key) not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist

    def describe(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        op = "in" if self.operator == "In" else "notin"
        return f"{self.key} {op} ({','.join(self.values)})"


@dataclass(frozen=True, kw_only=True)
class LabelSelector:
    match_labels: tuple[tuple[str, str], ...] = ()
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.holds(labels) for r in self.requirements
        )

    @property
    def everything(self) -> bool:
        return not self.match_labels and not self.requirements

    def describe(self) -> str:
        terms = [f"{k}={v}" for k, v in self.match_labels] + [
            r.describe() for r in self.requirements
        ]
        return ",".join(terms) or "(all)"


@dataclass(frozen=True, kw_only=True)
class IpBlock:
    cidr: IpNetwork
    excepts: tuple[IpNetwork, ...] = ()

    def contains(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return (
            ip.version == self.cidr.version
            and ip in self.cidr
            and not any(ip in e for e in self.excepts if e.version == ip.version)
        )

    def describe(self) -> str:
        text = str(self.cidr)
        return text + (f" except {', '.join(str(e) for e in self.excepts)}" if self.excepts else "")


@dataclass(frozen=True, kw_only=True)
class Peer:
    """One entry of `from`/`to`: an ipBlock, or pods (selectors None where left out)."""

    pods: LabelSelector | None = None
    namespaces: LabelSelector | None = None
    ip_block: IpBlock | None = None

    def describe(self, policy_namespace: str) -> str:
        if self.ip_block is not None:
            return f"addresses {self.ip_block.describe()}"
        pods = self.pods.describe() if self.pods is not None else "(all)"
        if self.namespaces is None:
            return f"pods {pods} in namespace {policy_namespace}"
        where = (
            "every namespace"
            if self.namespaces.everything
            else f"namespaces {self.namespaces.describe()}"
        )
        return f"pods {pods} in {where}"


@dataclass(frozen=True, kw_only=True)
class PortRule:
    protocol: str = "TCP"
    port: int | str | None = None  # None: every port of the protocol
    end_port: int | None = None

    def admits(self, port: int, protocol: str, named: Mapping[tuple[str, str], int]) -> bool:
        if protocol != self.protocol:
            return False
        if self.port is None:
            return True
        if isinstance(self.port, str):
            return named.get((self.port, protocol)) == port
        return self.port <= port <= (self.end_port or self.port)

    def describe(self) -> str:
        if self.port is None:
            return f"{self.protocol.lower()}/all"
        end = f"-{self.end_port}" if self.end_port else ""
        return f"{self.protocol.lower()}/{self.port}{end}"


@dataclass(frozen=True, kw_only=True)
class Rule:
    peers: tuple[Peer, ...] = ()  # empty: every peer
    ports: tuple[PortRule, ...] = ()  # empty: every port


@dataclass(frozen=True, kw_only=True)
class NetworkPolicy:
    name: str
    namespace: str
    pod_selector: LabelSelector
    ingress: tuple[Rule, ...] = ()
    egress: tuple[Rule, ...] = ()
    types: frozenset[str] = frozenset({"Ingress"})

    def selects(self, pod: Pod) -> bool:
        return pod.namespace == self.namespace and self.pod_selector.matches(pod.labels)


@dataclass(frozen=True, kw_only=True)
class Pod:
    """A pod as policies see it: namespace, labels, address, named container ports."""

    namespace: str
    name: str
    labels: Mapping[str, str]
    address: str
    named_ports: Mapping[tuple[str, str], int]  # (name, protocol) -> port

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Whether one direction admits the connection, and why, in a line a user can check."""

    admitted: bool
    why: str
    policies: tuple[str, ...] = ()  # the policies whose rules admit it, or that isolate


@dataclass(frozen=True, kw_only=True)
class Verdict:
    admitted: bool
    egress: Decision
    ingress: Decision

    @property
    def why(self) -> str:
        if self.admitted:
            return self.ingress.why
        return self.egress.why if not self.egress.admitted else self.ingress.why


# --- parsing -------------------------------------------------------------------------------


def parse_policy(obj: Mapping[str, Any]) -> NetworkPolicy:
    meta = obj.get("metadata") or {}
    name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        raise PolicyError(f"networkpolicy {name}: spec is not an object")
    where = f"networkpolicy {name}"
    ingress = _rules(spec.get("ingress"), "from", f"{where} spec.ingress")
    egress = _rules(spec.get("egress"), "to", f"{where} spec.egress")
    raw_types = spec.get("policyTypes")
    if raw_types is None:
        types = {"Ingress"} | ({"Egress"} if spec.get("egress") else set())
    elif isinstance(raw_types, list) and all(t in ("Ingress", "Egress") for t in raw_types):
        types = set(raw_types)
    else:
        raise PolicyError(f"{where} spec.policyTypes: {raw_types!r} is not Ingress/Egress")
    return NetworkPolicy(
        name=str(meta.get("name", "")),
        namespace=str(meta.get("namespace", "")),
        pod_selector=parse_selector(spec.get("podSelector") or {}, f"{where} spec.podSelector"),
        ingress=ingress,
        egress=egress,
        types=frozenset(types),
    )


def parse_selector(raw: Any, where: str) -> LabelSelector:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: not a label selector")
    labels = raw.get("matchLabels") or {}
    exprs = raw.get("matchExpressions") or []
    if not isinstance(labels, dict) or not isinstance(exprs, list):
        raise PolicyError(f"{where}: matchLabels is not a map or matchExpressions not a list")
    reqs = []
    for i, e in enumerate(exprs):
        op = e.get("operator") if isinstance(e, dict) else None
        values = e.get("values") or [] if isinstance(e, dict) else []
        if op not in ("In", "NotIn", "Exists", "DoesNotExist") or not isinstance(values, list):
            raise PolicyError(f"{where}.matchExpressions[{i}]: operator {op!r} is not known")
        reqs.append(
            Requirement(
                key=str(e.get("key", "")), operator=op, values=tuple(str(v) for v in values)
            )
        )
    return LabelSelector(
        match_labels=tuple(sorted((str(k), str(v)) for k, v in labels.items())),
        requirements=tuple(reqs),
    )


def _rules(raw: Any, peers_key: str, where: str) -> tuple[Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise PolicyError(f"{where}: not a list")
    out = []
    for i, rule in enumerate(raw):
        here = f"{where}[{i}]"
        if not isinstance(rule, dict):
            raise PolicyError(f"{here}: not an object")
        peers = rule.get(peers_key) or []
        ports = rule.get("ports") or []
        if not isinstance(peers, list) or not isinstance(ports, list):
            raise PolicyError(f"{here}: {peers_key} or ports is not a list")
        out.append(
            Rule(
                peers=tuple(_peer(p, f"{here}.{peers_key}[{j}]") for j, p in enumerate(peers)),
                ports=tuple(_port(p, f"{here}.ports[{j}]") for j, p in enumerate(ports)),
            )
        )
    return tuple(out)


def _peer(raw: Any, where: str) -> Peer:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: not an object")
    block = raw.get("ipBlock")
    if block is not None:
        try:
            cidr = ipaddress.ip_network(str(block["cidr"]), strict=False)
            excepts = tuple(
                ipaddress.ip_network(str(e), strict=False) for e in block.get("except") or []
            )
        except (KeyError, TypeError, ValueError):
            raise PolicyError(f"{where}.ipBlock: not a CIDR with its except list") from None
        return Peer(ip_block=IpBlock(cidr=cidr, excepts=excepts))
    pods, namespaces = raw.get("podSelector"), raw.get("namespaceSelector")
    if pods is None and namespaces is None:
        raise PolicyError(f"{where}: neither ipBlock, podSelector nor namespaceSelector")
    return Peer(
        pods=None if pods is None else parse_selector(pods, f"{where}.podSelector"),
        namespaces=(
            None if namespaces is None else parse_selector(namespaces, f"{where}.namespaceSelector")
        ),
    )


def _port(raw: Any, where: str) -> PortRule:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: not an object")
    protocol = str(raw.get("protocol") or "TCP")
    port, end = raw.get("port"), raw.get("endPort")
    if port is not None and not isinstance(port, int | str):
        raise PolicyError(f"{where}.port: {port!r} is neither a number nor a name")
    if isinstance(port, str) and (number := ascii_int(port, 5)) is not None:
        port = number  # an IntOrString written as a string of digits
    if end is not None and not (isinstance(end, int) and isinstance(port, int) and end >= port):
        raise PolicyError(f"{where}.endPort: {end!r} needs a numeric port at most it")
    return PortRule(protocol=protocol, port=port, end_port=end)


# --- evaluation ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Cluster:
    """What the policies of one Kubernetes cluster are evaluated against: its policies and the
    labels of its namespaces (each with its metadata.name label, added if missing)."""

    policies: tuple[NetworkPolicy, ...]
    namespace_labels: Mapping[str, Mapping[str, str]]

    def labels_of(self, namespace: str) -> Mapping[str, str]:
        return {**self.namespace_labels.get(namespace, {}), NAMESPACE_NAME_LABEL: namespace}


def _peer_admits(
    peer: Peer, policy: NetworkPolicy, other: Pod | None, address: str, cluster: Cluster
) -> bool:
    if peer.ip_block is not None:
        return peer.ip_block.contains(address)
    if other is None:  # an address outside this cluster: only an ipBlock names it
        return False
    if peer.namespaces is None:
        in_namespace = other.namespace == policy.namespace
    else:
        in_namespace = peer.namespaces.matches(cluster.labels_of(other.namespace))
    return in_namespace and (peer.pods is None or peer.pods.matches(other.labels))


def _direction(
    cluster: Cluster,
    subject: Pod,
    direction: str,
    other: Pod | None,
    address: str,
    port: int,
    protocol: str,
    named: Mapping[tuple[str, str], int],
) -> Decision:
    """Does `subject` (the destination for Ingress, the source for Egress) admit the
    connection with `other`/`address` on port?"""
    isolating = [p for p in cluster.policies if direction in p.types and p.selects(subject)]
    if not isolating:
        return Decision(admitted=True, why=f"no {direction.lower()} policy selects {subject.ref}")
    admitting = []
    for p in isolating:
        rules = p.ingress if direction == "Ingress" else p.egress
        for r in rules:
            peers_ok = not r.peers or any(
                _peer_admits(peer, p, other, address, cluster) for peer in r.peers
            )
            ports_ok = not r.ports or any(pr.admits(port, protocol, named) for pr in r.ports)
            if peers_ok and ports_ok:
                admitting.append(p.name)
                break
    names = tuple(f"{p.namespace}/{p.name}" for p in isolating)
    if admitting:
        return Decision(
            admitted=True,
            why=f"{direction.lower()} of {subject.ref} admitted by {', '.join(admitting)}",
            policies=tuple(f"{subject.namespace}/{n}" for n in admitting),
        )
    return Decision(
        admitted=False,
        why=f"{subject.ref} is isolated for {direction.lower()} by {', '.join(names)} and no "
        f"rule admits {protocol.lower()}/{port}",
        policies=names,
    )


def evaluate(
    dst_cluster: Cluster,
    dst: Pod,
    port: int,
    *,
    src: Pod | None,
    src_address: str,
    src_cluster: Cluster | None = None,
    protocol: str = "TCP",
) -> Verdict:
    """May a connection from src (a pod of src_cluster, or only an address) to dst:port open?

    When src is a pod of the destination's cluster, src_cluster is dst_cluster; a pod of
    another cluster has its own cluster's egress policies (src_cluster), and to the
    destination's policies it is only its address."""
    same_cluster = src_cluster is None or src_cluster is dst_cluster
    if src is not None:
        egress = _direction(
            src_cluster or dst_cluster,
            src,
            "Egress",
            dst if same_cluster else None,
            dst.address,
            port,
            protocol,
            dst.named_ports if same_cluster else {},
        )
    else:
        egress = Decision(admitted=True, why="the source is outside the cluster's policies")
    ingress = _direction(
        dst_cluster,
        dst,
        "Ingress",
        src if same_cluster else None,
        src_address,
        port,
        protocol,
        dst.named_ports,
    )
    return Verdict(admitted=egress.admitted and ingress.admitted, egress=egress, ingress=ingress)


def admitted_peers(cluster: Cluster, dst: Pod, port: int, protocol: str = "TCP") -> tuple[str, ...]:
    """Who the ingress policies let reach dst:port, as the policies say it: ("everyone",) when
    no policy isolates dst; () when it is isolated and no rule admits the port."""
    isolating = [p for p in cluster.policies if "Ingress" in p.types and p.selects(dst)]
    if not isolating:
        return ("everyone",)
    said: list[str] = []
    for p in isolating:
        for r in p.ingress:
            if r.ports and not any(pr.admits(port, protocol, dst.named_ports) for pr in r.ports):
                continue
            if not r.peers:
                return ("everyone",)
            said += [peer.describe(p.namespace) for peer in r.peers]
    return tuple(dict.fromkeys(said))


def parse_policies(objects: Iterable[Mapping[str, Any]]) -> tuple[NetworkPolicy, ...]:
    return tuple(parse_policy(o) for o in objects)
