"""Discovery on Kubernetes: what one context holds that matters for Cassandra's network."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from netcheck.discovery import netpol
from netcheck.discovery.cni import CILIUM, CILIUM_CONFIG, CniFacts, PodNetwork, cni_facts
from netcheck.discovery.overlay import GATEWAY_LABEL, Overlay, calico, cilium, submariner
from netcheck.kube.client import KubeClient
from netcheck.kube.errors import ApiFailed, Forbidden, KubeError, NotFound
from netcheck.kube.resources import KINDS
from netcheck.model.text import ascii_int

CASS_CLUSTER = "cassandra.datastax.com/cluster"
CASS_DATACENTER = "cassandra.datastax.com/datacenter"
CASS_RACK = "cassandra.datastax.com/rack"
CASS_SEED = "cassandra.datastax.com/seed-node"
CASS_NODE_STATE = "cassandra.datastax.com/node-state"
DATABASE_SELECTOR = CASS_CLUSTER  # every pod cass-operator manages carries it
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
MISSION_CONTROL_NS = "mission-control"
AGENT_NAMESPACE = "netcheck"
AGENT_LABEL = "app.kubernetes.io/name"
AGENT_NAME = "netcheck-agent"
AGENT_SELECTOR = f"{AGENT_LABEL}={AGENT_NAME}"
NODE_READS = 8  # lists of one node's pods at once (one per database node in all)
INTERNODE_PORTS = (7000, 7001)


@dataclass(frozen=True, kw_only=True)
class NodeInfo:
    name: str
    internal_ip: str
    zone: str
    region: str
    pod_cidrs: tuple[str, ...]
    taints: tuple[str, ...]  # key=value:Effect


@dataclass(frozen=True, kw_only=True)
class DatabasePod:
    name: str
    namespace: str
    cluster: str  # the Cassandra cluster name
    datacenter: str
    rack: str
    seed: bool
    node_state: str
    pod_ip: str
    node: str
    ready: bool
    ports: tuple[int, ...]  # declared by the cassandra container (declared is not listening)
    containers: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()  # what a NetworkPolicy's podSelector matches
    named_ports: tuple[tuple[str, str, int], ...] = ()  # (name, protocol, port), every container

    def as_policy_pod(self) -> netpol.Pod:
        """The pod as NetworkPolicies see it (discovery/netpol.py)."""
        return netpol.Pod(
            namespace=self.namespace,
            name=self.name,
            labels=dict(self.labels),
            address=self.pod_ip,
            named_ports={(n, proto): port for n, proto, port in self.named_ports},
        )


@dataclass(frozen=True, kw_only=True)
class ServiceInfo:
    name: str
    namespace: str
    role: str  # seed, additional-seed, datacenter, all-pods, other
    cluster_ip: str
    endpoints: tuple[str, ...]  # addresses in its EndpointSlices


@dataclass(frozen=True, kw_only=True)
class PolicyInfo:
    name: str
    namespace: str
    pod_selector: str
    ingress_ports: tuple[int, ...]
    restricts_internode: bool  # selects database pods and limits who reaches 7000/7001


@dataclass(frozen=True, kw_only=True)
class ClientConfigInfo:
    name: str
    context_name: str
    secret: str
    secret_found: bool


DEFAULT_CLASS = (
    "storageclass.kubernetes.io/is-default-class",
    "storageclass.beta.kubernetes.io/is-default-class",
)


@dataclass(frozen=True, kw_only=True)
class StorageClassInfo:
    name: str
    default: bool  # annotated as the cluster's default class
    provisioner: str


def parse_storage_class(obj: dict[str, Any]) -> StorageClassInfo:
    notes = (obj.get("metadata") or {}).get("annotations") or {}
    return StorageClassInfo(
        name=_name(obj),
        default=any(str(notes.get(a, "")).lower() == "true" for a in DEFAULT_CLASS),
        provisioner=str(obj.get("provisioner", "")),
    )


@dataclass(frozen=True, kw_only=True)
class HelmRelease:
    """A Helm release in mission-control, from the labels Helm puts on its release Secrets
    (`owner=helm`, `name`, `status`, `version`): metadata only, never the release itself."""

    name: str
    revision: int
    status: str  # of the latest revision: deployed, failed, pending-upgrade, ...


def helm_releases(secrets: list[dict[str, Any]]) -> tuple[HelmRelease, ...]:
    """The latest revision of each release among Secrets' metadata (other Secrets ignored)."""
    latest: dict[str, HelmRelease] = {}
    for s in secrets:
        labels = _labels(s)
        name, revision = labels.get("name", ""), ascii_int(labels.get("version"), 12)
        if labels.get("owner") != "helm" or not name or revision is None or revision < 1:
            continue
        rel = HelmRelease(name=name, revision=revision, status=labels.get("status", ""))
        if name not in latest or rel.revision > latest[name].revision:
            latest[name] = rel
    return tuple(sorted(latest.values(), key=lambda r: r.name))


@dataclass(frozen=True, kw_only=True)
class AgentPod:
    name: str
    node: str
    pod_ip: str
    ready: bool
    phase: str
    reason: str  # why it is not ready, from container state
    # what a netcheck container in a database pod copies (kube/ephemeral.py): the agent's
    # image, its command (python-netraw where it holds NET_RAW), its user and security context
    image: str = ""
    command: tuple[str, ...] = ()
    pod_security: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    security: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True, kw_only=True)
class ContextDiscovery:
    context: str
    server: str
    api_host: str
    api_port: int
    version: str
    nodes: tuple[NodeInfo, ...]
    database_pods: tuple[DatabasePod, ...]
    services: tuple[ServiceInfo, ...]
    network_policies: tuple[PolicyInfo, ...]
    client_configs: tuple[ClientConfigInfo, ...]
    secrets: tuple[str, ...]  # names only: netcheck never reads secret data
    agents: tuple[AgentPod, ...]
    service_cidrs: tuple[str, ...]
    warnings: tuple[str, ...]
    # the optional reads RBAC refused (also in warnings): the report lacks what they tell
    denied: tuple[str, ...] = ()
    # the database namespaces' NetworkPolicies as Kubernetes evaluates them, and every
    # namespace's labels (what their namespaceSelectors match; without `list namespaces` only
    # each namespace's own name label is known); policy_unread: the policies that could not be
    # read (RBAC) or parsed: the isolation audit of their namespace is not done
    policies: tuple[netpol.NetworkPolicy, ...] = ()
    namespace_labels: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()
    policy_unread: tuple[tuple[str, str], ...] = ()  # (namespace, why)
    # per node that runs database pods, the other workloads it runs: pods that are neither
    # database pods, nor DaemonSet pods (CNI, log shippers, netcheck's agents: every node has
    # them), nor in kube-system, nor static; None where that read failed
    node_workloads: tuple[tuple[str, tuple[str, ...]], ...] | None = ()
    # Mission Control's install: the kubeconfig's name for this cluster (what a ClientConfig
    # may name instead of the context), the Helm releases in mission-control, and whether the
    # ClientConfigs and the Secrets there were read (False: not known, see warnings)
    kube_cluster: str = ""
    helm_releases: tuple[HelmRelease, ...] = ()
    # the pod networks the CNI publishes (Calico, Cilium), where node podCIDR is not the truth;
    # cni_unread: those reads that failed (RBAC, the server): the pod networks are not known
    cni: CniFacts = field(default_factory=CniFacts)
    cni_unread: tuple[str, ...] = ()
    # how its pods reach other clusters' (Submariner, the CNI's tunnel; "" kind: routed)
    overlay: Overlay = field(default_factory=Overlay)
    # False: the ServiceCIDR API is not served (before 1.33); then the `kubernetes` Service's
    # address (the first of the service range) is what is known of it
    service_cidr_api: bool = True
    api_service_ip: str = ""
    # where a datacenter's volumes come from (lint --context); read: False where RBAC refused
    storage_classes: tuple[StorageClassInfo, ...] = ()
    storage_classes_read: bool = False
    client_configs_read: bool = False
    client_configs_served: bool = True  # False: no ClientConfig CRD (no Mission Control)
    secrets_read: bool = False

    def policy_cluster(self) -> netpol.Cluster:
        return netpol.Cluster(
            policies=self.policies,
            namespace_labels={ns: dict(labels) for ns, labels in self.namespace_labels},
        )

    @property
    def pod_cidrs(self) -> tuple[str, ...]:
        """Where pods take their addresses: the CNI's networks where it publishes them, else
        the nodes' podCIDRs."""
        if self.cni.pod_networks:
            return tuple(n.cidr for n in self.cni.pod_networks)
        return self.node_pod_cidrs

    @property
    def node_pod_cidrs(self) -> tuple[str, ...]:
        return tuple(c for n in self.nodes for c in n.pod_cidrs)

    def pod_networks(self) -> tuple[PodNetwork, ...]:
        """pod_cidrs with where each was read."""
        if self.cni.pod_networks:
            return self.cni.pod_networks
        return tuple(
            PodNetwork(cidr=c, source=f"node {n.name} podCIDR")
            for n in self.nodes
            for c in n.pod_cidrs
        )

    def node(self, name: str) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == name), None)


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in ((obj.get("metadata") or {}).get("labels") or {}).items()}


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _ns(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("namespace", ""))


def _ready(pod: dict[str, Any]) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def parse_node(obj: dict[str, Any]) -> NodeInfo:
    spec, st, labels = obj.get("spec") or {}, obj.get("status") or {}, _labels(obj)
    addresses = {a.get("type"): a.get("address") for a in st.get("addresses") or []}
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    taints = tuple(
        f"{t.get('key', '')}{'=' + t['value'] if t.get('value') else ''}:{t.get('effect', '')}"
        for t in spec.get("taints") or []
    )
    return NodeInfo(
        name=_name(obj),
        internal_ip=str(addresses.get("InternalIP") or ""),
        zone=labels.get(ZONE, ""),
        region=labels.get(REGION, ""),
        pod_cidrs=tuple(str(c) for c in cidrs),
        taints=taints,
    )


def parse_database_pod(obj: dict[str, Any]) -> DatabasePod:
    labels, spec, st = _labels(obj), obj.get("spec") or {}, obj.get("status") or {}
    containers = spec.get("containers") or []
    cassandra: dict[str, Any] = next((c for c in containers if c.get("name") == "cassandra"), {})
    ports = tuple(
        sorted(
            int(p["containerPort"]) for p in cassandra.get("ports") or [] if "containerPort" in p
        )
    )
    return DatabasePod(
        name=_name(obj),
        namespace=str((obj.get("metadata") or {}).get("namespace", "")),
        cluster=labels.get(CASS_CLUSTER, ""),
        datacenter=labels.get(CASS_DATACENTER, ""),
        rack=labels.get(CASS_RACK, ""),
        seed=labels.get(CASS_SEED) == "true",
        node_state=labels.get(CASS_NODE_STATE, ""),
        pod_ip=str(st.get("podIP") or ""),
        node=str(spec.get("nodeName") or ""),
        ready=_ready(obj),
        ports=ports,
        containers=tuple(str(c.get("name", "")) for c in containers if isinstance(c, dict)),
        labels=tuple(sorted(labels.items())),
        named_ports=tuple(
            sorted(
                (str(p["name"]), str(p.get("protocol") or "TCP"), int(p["containerPort"]))
                for c in containers
                if isinstance(c, dict)
                for p in c.get("ports") or []
                if isinstance(p, dict) and p.get("name") and isinstance(p.get("containerPort"), int)
            )
        ),
    )


def is_other_workload(obj: dict[str, Any]) -> bool:
    """A pod that shares a database node with the database without having to: not a database
    pod, not a DaemonSet's, not in kube-system, not a static (mirror) pod."""
    meta = obj.get("metadata") or {}
    owners = {str(o.get("kind")) for o in meta.get("ownerReferences") or [] if isinstance(o, dict)}
    return not (
        CASS_CLUSTER in _labels(obj)
        or "DaemonSet" in owners
        or meta.get("namespace") == "kube-system"
        or "kubernetes.io/config.mirror" in (meta.get("annotations") or {})
        or (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed")
    )


def parse_agent_pod(obj: dict[str, Any]) -> AgentPod:
    st = obj.get("status") or {}
    reason = ""
    for cs in st.get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting")
        if waiting:
            reason = f"{waiting.get('reason', '')}: {waiting.get('message', '')}".strip(": ")
    if not reason:
        for c in st.get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False":
                reason = f"{c.get('reason', 'Unschedulable')}: {c.get('message', '')}"
    spec = obj.get("spec") or {}
    agent = next(iter(spec.get("containers") or []), None) or {}
    pod_security, security = spec.get("securityContext"), agent.get("securityContext")
    # a pod being deleted (a redeploy rolls the agents) may still say Ready for its grace
    # period: its node's new agent is the one to use
    terminating = bool((obj.get("metadata") or {}).get("deletionTimestamp"))
    return AgentPod(
        name=_name(obj),
        node=str(spec.get("nodeName") or ""),
        pod_ip=str(st.get("podIP") or ""),
        ready=_ready(obj) and not terminating,
        phase=str(st.get("phase") or ""),
        reason="Terminating" if terminating else reason,
        image=str(agent.get("image") or ""),
        command=tuple(str(c) for c in agent.get("command") or []),
        pod_security=pod_security if isinstance(pod_security, dict) else {},
        security=security if isinstance(security, dict) else {},
    )


def _service_role(name: str) -> str:
    for suffix, role in (
        ("-additional-seed-service", "additional-seed"),
        ("-seed-service", "seed"),
        ("-all-pods-service", "all-pods"),
        ("-service", "datacenter"),
    ):
        if name.endswith(suffix):
            return role
    return "other"


def parse_policy(obj: dict[str, Any]) -> PolicyInfo:
    spec = obj.get("spec") or {}
    selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
    ports: list[int] = []
    for rule in spec.get("ingress") or []:
        for p in rule.get("ports") or []:
            if isinstance(p.get("port"), int):
                ports.append(p["port"])
    types = spec.get("policyTypes") or ["Ingress"]
    selects_db = not selector or any(k.startswith("cassandra.datastax.com/") for k in selector)
    return PolicyInfo(
        name=_name(obj),
        namespace=str((obj.get("metadata") or {}).get("namespace", "")),
        pod_selector=",".join(f"{k}={v}" for k, v in sorted(selector.items())) or "(all pods)",
        ingress_ports=tuple(sorted(set(ports))),
        restricts_internode="Ingress" in types and selects_db,
    )


@dataclass(frozen=True)
class _Notes:
    """What discovery could not read: every problem, and those RBAC refused."""

    warnings: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # APIs this server does not serve


async def _read(
    coro: Any, notes: _Notes, what: str, absent_ok: bool = False
) -> list[dict[str, Any]] | None:
    """A part of discovery the rest does not depend on: a failure becomes a warning and None.
    absent_ok: an API this server does not serve is no news (ServiceCIDR before 1.33)."""
    try:
        result: list[dict[str, Any]] = await coro
        return result
    except NotFound:
        notes.absent.append(what)
        if not absent_ok:
            notes.warnings.append(f"{what}: not served by this API server")
    except (Forbidden, ApiFailed) as exc:
        line = f"{what}: {exc.detail}"
        notes.warnings.append(line)
        if isinstance(exc, Forbidden):
            notes.denied.append(line)
    return None


async def _optional(
    coro: Any, notes: _Notes, what: str, absent_ok: bool = False
) -> list[dict[str, Any]]:
    """_read, with nothing where the read failed."""
    return await _read(coro, notes, what, absent_ok) or []


Rows = list[dict[str, Any]]


async def _one(coro: Any) -> list[dict[str, Any]]:
    return [await coro]


async def _cni(
    client: KubeClient, notes: _Notes, node_objs: list[dict[str, Any]]
) -> tuple[CniFacts, tuple[str, ...], Overlay]:
    """The CNI's objects, each read where served (their absence is the common case), the
    reads of them that failed, and the overlay: Submariner where it is installed (its tunnel
    carries the traffic between clusters), else the tunnel the CNI's settings name."""
    cni_notes = _Notes()
    (ippools, nodes, pools, config, enis), (operators, gateways) = await asyncio.gather(
        _cni_reads(client, cni_notes),
        asyncio.gather(
            _optional(client.list(KINDS["Submariner"]), notes, "submariners", absent_ok=True),
            _optional(client.list(KINDS["Gateway"]), notes, "submariner gateways", absent_ok=True),
        ),
    )
    facts = cni_facts(
        ippools=ippools,
        cilium_nodes=nodes,
        cilium_pools=pools,
        cilium_config=config[0] if config else None,
        eniconfigs=enis,
    )
    unread = tuple(cni_notes.warnings)  # every one a failed read: absent APIs are not warned
    notes.warnings.extend((*unread, *facts.warnings))
    notes.denied.extend(cni_notes.denied)
    notes.absent.extend(cni_notes.absent)
    tunnel = cilium(dict(facts.cilium_config)) if facts.name == CILIUM else calico(ippools)
    labelled = tuple(sorted(_name(n) for n in node_objs if _labels(n).get(GATEWAY_LABEL) == "true"))
    overlay = submariner(operators, gateways, labelled) or tunnel or Overlay()
    return facts, unread, overlay


async def _cni_reads(
    client: KubeClient, notes: _Notes
) -> tuple[Rows, Rows, Rows, Rows | None, Rows]:
    got: tuple[Rows, Rows, Rows, Rows | None, Rows] = await asyncio.gather(
        _optional(client.list(KINDS["IPPool"]), notes, "Calico ippools", absent_ok=True),
        _optional(client.list(KINDS["CiliumNode"]), notes, "ciliumnodes", absent_ok=True),
        _optional(client.list(KINDS["CiliumPodIPPool"]), notes, "ciliumpodippools", absent_ok=True),
        _read(
            _one(client.get(KINDS["ConfigMap"], CILIUM_CONFIG, "kube-system")),
            notes,
            f"configmap kube-system/{CILIUM_CONFIG}",
            absent_ok=True,
        ),
        _optional(client.list(KINDS["ENIConfig"]), notes, "eniconfigs", absent_ok=True),
    )
    return got


async def _cluster_reads(
    client: KubeClient, notes: _Notes
) -> tuple[Rows | None, Rows | None, Rows, Rows, Rows, Rows]:
    """mission-control's ClientConfigs and Secret names (None: not read), the agents, the
    service ranges and the namespaces' labels, read together."""
    got: tuple[Rows | None, Rows | None, Rows, Rows, Rows, Rows] = await asyncio.gather(
        _read(
            client.list(KINDS["ClientConfig"], MISSION_CONTROL_NS),
            notes,
            f"clientconfigs in {MISSION_CONTROL_NS}",
        ),
        _read(
            client.list(KINDS["Secret"], MISSION_CONTROL_NS, metadata_only=True),
            notes,
            f"secrets in {MISSION_CONTROL_NS}",
        ),
        _optional(
            client.list(KINDS["Pod"], AGENT_NAMESPACE, label_selector=AGENT_SELECTOR),
            notes,
            f"netcheck agents in {AGENT_NAMESPACE}",
        ),
        _optional(client.list(KINDS["ServiceCIDR"]), notes, "servicecidrs", absent_ok=True),
        _optional(
            client.list(KINDS["Service"], "default", field_selector="metadata.name=kubernetes"),
            notes,
            "service default/kubernetes",
        ),
        _optional(client.list(KINDS["Namespace"], metadata_only=True), notes, "namespaces"),
    )
    return got


async def discover(client: KubeClient, *, namespaces: tuple[str, ...] = ()) -> ContextDiscovery:
    """Read one context. Version, nodes and pods are required; the rest degrades to warnings."""
    version = await client.version()
    node_objs = await client.list(KINDS["Node"])
    pod_kind = KINDS["Pod"]
    if namespaces:
        pod_objs = [
            p
            for ns in namespaces
            for p in await client.list(pod_kind, ns, label_selector=DATABASE_SELECTOR)
        ]
    else:
        pod_objs = await client.list(pod_kind, label_selector=DATABASE_SELECTOR)
    pods = tuple(parse_database_pod(p) for p in pod_objs)
    db_namespaces = sorted({p.namespace for p in pods} | set(namespaces))
    notes = _Notes()

    unread: list[tuple[str, str]] = []

    async def per_namespace(
        ns: str,
    ) -> tuple[list[ServiceInfo], list[PolicyInfo], list[netpol.NetworkPolicy]]:
        svcs, slices, pols = await asyncio.gather(
            _optional(
                client.list(KINDS["Service"], ns, label_selector=CASS_CLUSTER),
                notes,
                f"services in {ns}",
            ),
            _optional(
                client.list(
                    KINDS["EndpointSlice"], ns, label_selector="kubernetes.io/service-name"
                ),
                notes,
                f"endpointslices in {ns}",
            ),
            _optional(client.list(KINDS["NetworkPolicy"], ns), notes, f"networkpolicies in {ns}"),
        )
        # cass-operator's additional-seed service has no selector, so no label either: by name
        names = {_name(s) for s in svcs}
        addresses: dict[str, list[str]] = {}
        for sl in slices:
            svc = _labels(sl).get("kubernetes.io/service-name", "")
            for ep in sl.get("endpoints") or []:
                addresses.setdefault(svc, []).extend(str(a) for a in ep.get("addresses") or [])
        for svc in addresses:
            if svc not in names and svc.endswith("-additional-seed-service"):
                svcs.append({"metadata": {"name": svc, "namespace": ns}, "spec": {}})
        services = [
            ServiceInfo(
                name=_name(s),
                namespace=ns,
                role=_service_role(_name(s)),
                cluster_ip=str((s.get("spec") or {}).get("clusterIP") or ""),
                endpoints=tuple(sorted(set(addresses.get(_name(s), [])))),
            )
            for s in svcs
        ]
        parsed = []
        for p in pols:
            try:
                parsed.append(netpol.parse_policy(p))
            except netpol.PolicyError as exc:
                unread.append((ns, str(exc)))
        unread.extend((ns, w) for w in notes.warnings if w.startswith(f"networkpolicies in {ns}:"))
        return services, [parse_policy(p) for p in pols], parsed

    reads = asyncio.Semaphore(NODE_READS)

    async def on_node(node: str) -> tuple[str, tuple[str, ...]]:
        async with reads:
            objs = await client.list(pod_kind, field_selector=f"spec.nodeName={node}")
        return node, tuple(sorted(f"{_ns(o)}/{_name(o)}" for o in objs if is_other_workload(o)))

    db_nodes = sorted({p.node for p in pods if p.node})
    try:
        workloads: tuple[tuple[str, tuple[str, ...]], ...] | None = tuple(
            await asyncio.gather(*(on_node(n) for n in db_nodes))
        )
    except (Forbidden, ApiFailed) as exc:
        notes.warnings.append(f"pods on the database nodes: {exc.detail}")
        workloads = None
    per_ns = await asyncio.gather(*(per_namespace(ns) for ns in db_namespaces))
    (cni, cni_unread, overlay), cluster, classes = await asyncio.gather(
        _cni(client, notes, node_objs),
        _cluster_reads(client, notes),
        _read(client.list(KINDS["StorageClass"]), notes, "storageclasses"),
    )
    ccs_read, secrets_read, agents, cidrs, api_svc, ns_objs = cluster
    secrets = secrets_read or []
    secret_names = tuple(sorted(_name(s) for s in secrets))
    client_configs = []
    for cc in ccs_read or []:
        spec = cc.get("spec") or {}
        secret = str((spec.get("kubeConfigSecret") or {}).get("name", ""))
        client_configs.append(
            ClientConfigInfo(
                name=_name(cc),
                context_name=str(spec.get("contextName", "")),
                secret=secret,
                secret_found=secret in secret_names,
            )
        )
    return ContextDiscovery(
        context=client.context,
        server=client.conn.server,
        api_host=client.conn.host,
        api_port=client.conn.port,
        version=str(version.get("gitVersion", "")),
        nodes=tuple(parse_node(n) for n in node_objs),
        database_pods=pods,
        services=tuple(s for svcs, _, _ in per_ns for s in svcs),
        network_policies=tuple(p for _, pols, _ in per_ns for p in pols),
        policies=tuple(p for _, _, parsed in per_ns for p in parsed),
        namespace_labels=tuple(
            sorted((_name(n), tuple(sorted(_labels(n).items()))) for n in ns_objs)
        ),
        policy_unread=tuple(unread),
        node_workloads=workloads,
        client_configs=tuple(client_configs),
        secrets=secret_names,
        agents=tuple(parse_agent_pod(a) for a in agents),
        service_cidrs=tuple(
            str(c) for obj in cidrs for c in (obj.get("spec") or {}).get("cidrs") or []
        ),
        warnings=tuple(notes.warnings),
        denied=tuple(notes.denied),
        kube_cluster=client.conn.cluster,
        helm_releases=helm_releases(secrets),
        client_configs_read=ccs_read is not None,
        client_configs_served=f"clientconfigs in {MISSION_CONTROL_NS}" not in notes.absent,
        cni=cni,
        cni_unread=cni_unread,
        overlay=overlay,
        storage_classes=tuple(parse_storage_class(c) for c in classes or []),
        storage_classes_read=classes is not None,
        service_cidr_api="servicecidrs" not in notes.absent,
        api_service_ip=next(
            (str((o.get("spec") or {}).get("clusterIP") or "") for o in api_svc), ""
        ),
        secrets_read=secrets_read is not None,
    )


__all__ = ["ContextDiscovery", "KubeError", "discover"]
