"""`netcheck lint`: a MissionControlCluster manifest checked before it is applied.

Offline rules, each a finding in the run report's shape that names the field (its path in the
manifest and its line):
- MCC_SCHEMA (error): a field Mission Control requires is missing, or has the wrong type.
- MCC_DATACENTER_DUPLICATE (error): two datacenters of one cluster share a name.
- MCC_INTERNODE_ENCRYPTION_OFF (error): internode encryption not enabled; the multi-region guide
  requires it (`spec.encryption.internodeEncryption.enabled: true`).
- MCC_RACK_ZONES (warning): a rack that names no zone, racks that share one (a zone's failure
  takes both), or a size that does not spread evenly over the racks.
- MCC_INTERNODE_PORTS (info, warning): which internode ports the servers will listen on, from
  serverType/serverVersion and `legacy_ssl_storage_port_enabled`: the ports the firewalls
  between clusters must open.
- MCC_HEAP (error, warning): a heap above the memory request (the pod is killed), or above half
  of it (no room for off-heap memory and the page cache).
- MCC_DATACENTER_STOPPED (warning): a datacenter with `stopped: true` (no pods to probe).

With the control plane's context (`lint --context`), where each datacenter lands is read too:
its k8sContext registered there (registration_findings), and in the cluster it lands on, its
storage class (MCC_STORAGE_CLASS_MISSING) and a node in each rack's zone (MCC_RACK_ZONE_EMPTY).

The reading is PyYAML's composer, not a hand-written parser: its nodes carry the line of every
field, which the findings cite. Memory quantities are read by the Kubernetes client's parser.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import yaml

from netcheck.discovery.kube import ContextDiscovery
from netcheck.model.findings import Finding, Severity

KIND = "MissionControlCluster"
GROUP = "missioncontrol.datastax.com/"
ZONE_LABELS = ("topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone")
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # a manifest is a few KiB; bounds what is read
MAX_FIELDS = 200_000  # bounds the fields one document expands to
HEAP_SHARE_WARN = 0.5  # Cassandra's guidance: the heap at most half of the memory
STORAGE_PORT, SSL_STORAGE_PORT = 7000, 7001


class _Add(Protocol):
    """A finding at a field of the manifest (_lint_one's `add`)."""

    def __call__(
        self,
        severity: Severity,
        code: str,
        path: str,
        summary: str,
        hint: str,
        ports: tuple[int, ...] = (),
    ) -> None: ...


_Schema = Callable[[str, str], None]  # (field path, what it must be)


class ManifestError(ValueError):
    """The file is not YAML, or holds no MissionControlCluster: one line, naming the file."""


@dataclass(frozen=True, kw_only=True)
class RackPlace:
    name: str
    zone: str  # "" where the rack names none
    location: str


@dataclass(frozen=True, kw_only=True)
class DatacenterPlace:
    name: str
    k8s_context: str  # "" for the control plane's own cluster
    location: str  # `FILE: spec...datacenters[i].k8sContext (line N)`
    # storageClassName of the data volumes (the datacenter's, else the cluster's): None where
    # none is named (the cluster's default class), "" for no dynamic provisioning
    storage_class: str | None = None
    storage_location: str = ""
    racks: tuple[RackPlace, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Linted:
    source: str
    cluster: str  # metadata.name of the MissionControlCluster
    findings: tuple[Finding, ...]
    datacenters: tuple[DatacenterPlace, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Registration:
    """One ClientConfig on the control plane (what `mcctl register` left in mission-control)."""

    name: str
    context_name: str  # spec.contextName, or the ClientConfig's name when unset
    secret: str
    secret_found: bool


def quantity_bytes(value: object) -> float | None:
    """A Kubernetes memory quantity (`8Gi`, `512M`, 1073741824) in bytes, read by the
    Kubernetes client's own parser (imported here: the CLI starts without it)."""
    from kubernetes.utils import parse_quantity

    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = float(parse_quantity(value.strip() if isinstance(value, str) else value))  # type: ignore[no-untyped-call]
    except (ValueError, ArithmeticError):
        return None
    return amount if 0 <= amount < float("inf") else None  # a size, not a sign or infinity


def heap_bytes(value: object) -> float | None:
    """`heapSize` as cass-operator passes it to the JVM: a quantity, where `8G`/`8g` and
    `512M`/`512m` are what -Xmx means by them (binary units)."""
    if isinstance(value, str):
        jvm = re.fullmatch(r"\s*(\d+)\s*([gGmMkK])\s*", value)
        if jvm:
            return float(jvm.group(1)) * {"k": 2**10, "m": 2**20, "g": 2**30}[jvm.group(2).lower()]
    return quantity_bytes(value)


def lint(text: str, source: str) -> list[Linted]:
    """Every MissionControlCluster of one file (a file may hold several YAML documents)."""
    if len(text.encode("utf-8", errors="replace")) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{source}: larger than {MAX_MANIFEST_BYTES // 2**20} MiB; give the "
            "MissionControlCluster manifest itself"
        )
    try:
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}: line {mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ManifestError(f"{where}: {problem}; give a YAML manifest") from None
    out = []
    for node in nodes:
        if node is None:
            continue
        doc = _Doc(node, source)
        value = doc.value
        if not isinstance(value, dict) or value.get("kind") != KIND:
            continue
        out.append(_lint_one(doc, source))
    if not out:
        raise ManifestError(
            f"{source}: no {KIND} in it; give the manifest you will apply "
            f"(apiVersion {GROUP}v1beta2, kind {KIND})"
        )
    return out


class _Doc:
    """A YAML document's plain value beside the line of every field path in it."""

    def __init__(self, node: yaml.Node, source: str) -> None:
        self.lines: dict[str, int] = {}
        self._source = source
        self._loader = yaml.SafeLoader("")
        self._left = MAX_FIELDS
        self.value = self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> Any:
        # aliases share nodes: a few lines can name billions of fields ("billion laughs")
        self._left -= 1
        if self._left < 0:
            raise ManifestError(
                f"{self._source}: more than {MAX_FIELDS} fields (aliases expanded); give the "
                "manifest without YAML aliases"
            )
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node)
                name = str(key)
                out[key if isinstance(key, str | int | float | bool) or key is None else name] = (
                    self._walk(value_node, f"{path}.{name}" if path else name)
                )
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self._walk(v, f"{path}[{i}]") for i, v in enumerate(node.value)]
        return self._scalar(node)

    def _scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return str(node.start_mark.line + 1)  # a key that is a map or list: no field name
        try:
            return self._loader.construct_object(node)
        except yaml.YAMLError:
            return str(node.value)

    def at(self, path: str) -> str:
        """`path (line N)`, the nearest line known when the field itself is missing."""
        probe = path
        while probe and probe not in self.lines:
            probe = probe.rsplit(".", 1)[0] if "." in probe else ""
        line = self.lines.get(probe)
        return f"{path} (line {line})" if line else path


def _yaml_word(value: object) -> str:
    """A value as the manifest spells it (`false`, not Python's `False`)."""
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _get(value: Any, *keys: str | int) -> Any:
    for k in keys:
        if isinstance(k, int):
            value = value[k] if isinstance(value, list) and k < len(value) else None
        else:
            value = value.get(k) if isinstance(value, dict) else None
    return value


def _lint_one(doc: _Doc, source: str) -> Linted:
    v = doc.value
    name = str(_get(v, "metadata", "name") or "")
    out: list[Finding] = []

    def add(
        severity: Severity,
        code: str,
        path: str,
        summary: str,
        hint: str,
        ports: tuple[int, ...] = (),
    ) -> None:
        out.append(
            Finding(
                severity=severity,
                code=code,
                summary=summary,
                src_cluster=name or "*",
                dst_cluster=name or "*",
                ports=ports,
                affected_pairs=0,
                hint=hint,
                location=f"{source}: {doc.at(path)}",
            )
        )

    def schema(path: str, want: str) -> None:
        add(
            Severity.ERROR,
            "MCC_SCHEMA",
            path,
            f"{doc.at(path)}: {want}",
            f"fix the field as the {KIND} CRD describes it (`kubectl explain "
            f"missioncontrolcluster.{path.split('[')[0]}` on the control plane)",
        )

    api = _get(v, "apiVersion")
    if not isinstance(api, str) or not api.startswith(GROUP):
        schema("apiVersion", f"must be {GROUP}<version> (v1beta2 today), not {api!r}")
    if not name:
        schema("metadata.name", "the cluster needs a name")
    cassandra = _get(v, "spec", "k8ssandra", "cassandra")
    datacenters = _get(cassandra, "datacenters")
    if not isinstance(datacenters, list) or not datacenters:
        schema("spec.k8ssandra.cassandra.datacenters", "a list of at least one datacenter")
        datacenters = []
    encryption = _get(v, "spec", "encryption", "internodeEncryption", "enabled")
    if encryption is not True:
        add(
            Severity.ERROR,
            "MCC_INTERNODE_ENCRYPTION_OFF",
            "spec.encryption.internodeEncryption.enabled",
            f"{name}: internode encryption is "
            + ("not set" if encryption is None else _yaml_word(encryption))
            + ": traffic between the regions would be plaintext on 7000",
            "set spec.encryption.internodeEncryption.enabled: true (with createIssuer: true, or "
            "your own issuer); the multi-region guide requires it",
            (STORAGE_PORT,),
        )
    names: list[str] = []
    places: list[DatacenterPlace] = []
    for i, dc in enumerate(datacenters):
        base = f"spec.k8ssandra.cassandra.datacenters[{i}]"
        if not isinstance(dc, dict):
            schema(base, "a datacenter is an object (metadata.name, size, k8sContext, racks)")
            continue
        dc_name = _get(dc, "metadata", "name")
        if not isinstance(dc_name, str) or not dc_name:
            schema(f"{base}.metadata.name", "every datacenter needs a name")
            dc_name = f"datacenters[{i}]"
        else:
            names.append(dc_name)
        size = dc.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            schema(f"{base}.size", f"a whole number of nodes, at least 1, not {size!r}")
            size = None
        context = dc.get("k8sContext")
        if context is not None and not isinstance(context, str):
            schema(f"{base}.k8sContext", f"a kubeconfig context name, not {context!r}")
        else:
            claim = ("storageConfig", "cassandraDataVolumeClaimSpec", "storageClassName")
            own = _get(dc, *claim)
            storage_path = f"{base}.{'.'.join(claim)}"
            if own is None:
                own = _get(cassandra, *claim)
                storage_path = f"spec.k8ssandra.cassandra.{'.'.join(claim)}"
            places.append(
                DatacenterPlace(
                    name=dc_name,
                    k8s_context=context or "",
                    location=f"{source}: {doc.at(f'{base}.k8sContext')}",
                    storage_class=str(own) if own is not None else None,
                    storage_location=f"{source}: {doc.at(storage_path)}",
                    racks=_rack_places(dc, base, source, doc),
                )
            )
        if dc.get("stopped") is True:
            add(
                Severity.WARNING,
                "MCC_DATACENTER_STOPPED",
                f"{base}.stopped",
                f"{dc_name} is stopped: its pods are scaled to zero and nothing of it can be "
                "probed",
                "set stopped: false (or remove it) to start the datacenter",
            )
        _racks(dc, base, dc_name, size, add, schema)
        _heap(dc, cassandra, base, dc_name, add, schema)
    for dup, count in Counter(names).items():
        if count > 1:
            at = next(
                f"spec.k8ssandra.cassandra.datacenters[{i}].metadata.name"
                for i, dc in enumerate(datacenters)
                if i > 0 and _get(dc, "metadata", "name") == dup
            )
            add(
                Severity.ERROR,
                "MCC_DATACENTER_DUPLICATE",
                at,
                f"{count} datacenters are named {dup}: Cassandra would see one datacenter",
                "give every datacenter its own name (it is the Cassandra DC name, and "
                "replication settings refer to it)",
            )
    _ports(v, cassandra, name, encryption is True, add)
    return Linted(source=source, cluster=name, findings=tuple(out), datacenters=tuple(places))


def _rack_places(dc: dict[str, Any], base: str, source: str, doc: _Doc) -> tuple[RackPlace, ...]:
    racks = dc.get("racks")
    out = []
    for j, rack in enumerate(racks if isinstance(racks, list) else []):
        if not isinstance(rack, dict) or not isinstance(rack.get("name"), str):
            continue  # a schema finding already
        labels = rack.get("nodeAffinityLabels")
        labels = labels if isinstance(labels, dict) else {}
        zone = next((str(labels[k]) for k in ZONE_LABELS if k in labels), "")
        path = f"{base}.racks[{j}].nodeAffinityLabels"
        out.append(RackPlace(name=rack["name"], zone=zone, location=f"{source}: {doc.at(path)}"))
    return tuple(out)


def placement_findings(
    linted: Linted, control_plane: str, found: dict[str, ContextDiscovery]
) -> tuple[tuple[Finding, ...], tuple[str, ...]]:
    """Where each datacenter lands (its k8sContext, else the control plane), as that cluster
    is: the storage class of its volumes exists there (or a default one does), and a node in
    each rack's zone. found: the clusters read (a datacenter whose context was not is left to
    MCC_CONTEXT_NOT_IN_KUBECONFIG). Returns the findings and the checks not made (why)."""
    out: list[Finding] = []
    unread: list[str] = []
    for dc in linted.datacenters:
        ctx = dc.k8s_context or control_plane
        d = found.get(ctx)
        if d is None:
            continue
        if not d.storage_classes_read:
            unread.append(
                f"context {ctx}: storage classes not read, so {dc.name}'s is not checked; "
                "grant list on storageclasses (probes/rbac/netcheck-user.yaml)"
            )
        elif dc.storage_class != "":
            names = sorted(c.name for c in d.storage_classes)
            has = ", ".join(names) or "none"
            if dc.storage_class is None and not any(c.default for c in d.storage_classes):
                out.append(
                    _finding(
                        linted,
                        Severity.ERROR,
                        "MCC_STORAGE_CLASS_MISSING",
                        f"{dc.name}: no storageClassName, and {ctx} has no default StorageClass "
                        f"(it has: {has}): the data volumes' claims stay Pending",
                        "name one of its classes in storageConfig.cassandraDataVolumeClaimSpec"
                        ".storageClassName, or mark one default there",
                        dc.storage_location,
                    )
                )
            elif dc.storage_class is not None and dc.storage_class not in names:
                out.append(
                    _finding(
                        linted,
                        Severity.ERROR,
                        "MCC_STORAGE_CLASS_MISSING",
                        f"{dc.name}: storageClassName {dc.storage_class} is not a StorageClass of "
                        f"{ctx} (it has: {has}): the data volumes' claims stay Pending",
                        f"create StorageClass {dc.storage_class} on {ctx}, or name one it has",
                        dc.storage_location,
                    )
                )
        zones = sorted({n.zone for n in d.nodes if n.zone})
        for rack in dc.racks:
            if rack.zone and rack.zone not in zones:
                out.append(
                    _finding(
                        linted,
                        Severity.ERROR,
                        "MCC_RACK_ZONE_EMPTY",
                        f"{dc.name} rack {rack.name}: no node of {ctx} is in zone {rack.zone} "
                        f"(zones there: {', '.join(zones) or 'none labelled'}): its pods stay "
                        "Pending",
                        f"label the rack with a zone {ctx}'s nodes are in "
                        "(topology.kubernetes.io/zone), or add nodes in that zone",
                        rack.location,
                    )
                )
    return tuple(out), tuple(unread)


def _racks(
    dc: dict[str, Any], base: str, dc_name: str, size: int | None, add: _Add, schema: _Schema
) -> None:
    racks = dc.get("racks")
    if racks is None:
        return
    if not isinstance(racks, list):
        schema(f"{base}.racks", "a list of racks (name, nodeAffinityLabels)")
        return
    zones: dict[str, list[str]] = {}
    unzoned = []
    for j, rack in enumerate(racks):
        path = f"{base}.racks[{j}]"
        if not isinstance(rack, dict) or not isinstance(rack.get("name"), str):
            schema(f"{path}.name", "every rack needs a name")
            continue
        labels = rack.get("nodeAffinityLabels") or {}
        if not isinstance(labels, dict):
            schema(f"{path}.nodeAffinityLabels", "a map of node label to value")
            continue
        zone = next((str(labels[k]) for k in ZONE_LABELS if k in labels), "")
        if zone:
            zones.setdefault(zone, []).append(rack["name"])
        else:
            unzoned.append(rack["name"])
    if unzoned and len(racks) > 1:
        add(
            Severity.WARNING,
            "MCC_RACK_ZONES",
            f"{base}.racks",
            f"{dc_name}: rack(s) {', '.join(unzoned)} name no zone: their pods may land in any "
            "zone, and a rack stops being a failure domain",
            "give each rack nodeAffinityLabels with topology.kubernetes.io/zone of its own zone",
        )
    for zone, shared in sorted(zones.items()):
        if len(shared) > 1:
            add(
                Severity.WARNING,
                "MCC_RACK_ZONES",
                f"{base}.racks",
                f"{dc_name}: racks {', '.join(shared)} land in one zone {zone}: that zone's "
                "failure takes them both",
                "one zone per rack (as many racks as the region has zones, usually 3)",
            )
    if size is not None and racks and size % len(racks):
        add(
            Severity.WARNING,
            "MCC_RACK_ZONES",
            f"{base}.size",
            f"{dc_name}: {size} nodes over {len(racks)} racks: the racks are uneven, and so is "
            "the data each holds with NetworkTopologyStrategy",
            f"a size that is a multiple of {len(racks)}",
        )


def _heap(
    dc: dict[str, Any], cassandra: Any, base: str, dc_name: str, add: _Add, schema: _Schema
) -> None:
    """The datacenter's own settings win over the cluster-wide ones, as k8ssandra merges them."""
    heap_value, heap_path = None, ""
    for where, owner in ((base, dc), ("spec.k8ssandra.cassandra", cassandra)):
        jvm = _get(owner, "config", "jvmOptions")
        for key in ("heapSize", "heap_max_size"):
            if isinstance(jvm, dict) and key in jvm:
                heap_value, heap_path = jvm[key], f"{where}.config.jvmOptions.{key}"
                break
        if heap_path:
            break
    memory_value, memory_path = None, ""
    for where, owner in ((base, dc), ("spec.k8ssandra.cassandra", cassandra)):
        for kind in ("requests", "limits"):
            value = _get(owner, "resources", kind, "memory")
            if value is not None:
                memory_value, memory_path = value, f"{where}.resources.{kind}.memory"
                break
        if memory_path:
            break
    if heap_path and heap_bytes(heap_value) is None:
        schema(heap_path, f"a heap size such as 8Gi or 8G, not {heap_value!r}")
        return
    if memory_path and quantity_bytes(memory_value) is None:
        schema(memory_path, f"a memory quantity such as 32Gi, not {memory_value!r}")
        return
    heap, memory = heap_bytes(heap_value), quantity_bytes(memory_value)
    if heap is None or memory is None or memory <= 0:
        return
    if heap >= memory:
        add(
            Severity.ERROR,
            "MCC_HEAP",
            heap_path,
            f"{dc_name}: heap {heap_value} is not below the memory {memory_value} "
            f"({memory_path.rsplit('.', 2)[-2]}): the container is killed when the heap fills",
            "a heap of at most half the memory request (and at most 31G), or more memory",
        )
    elif heap > memory * HEAP_SHARE_WARN:
        add(
            Severity.WARNING,
            "MCC_HEAP",
            heap_path,
            f"{dc_name}: heap {heap_value} is more than half of the memory {memory_value}: "
            "little is left for off-heap structures and the page cache",
            "a heap of at most half the memory request",
        )


def _ports(v: Any, cassandra: Any, name: str, encrypted: bool, add: _Add) -> None:
    server_type = str(_get(cassandra, "serverType") or "cassandra").lower()
    version = str(_get(cassandra, "serverVersion") or "")
    major = re.match(r"^(\d+)\.(\d+)", version)
    if not major:
        return
    release = (int(major.group(1)), int(major.group(2)))
    yaml_conf = _get(cassandra, "config", "cassandraYaml")
    legacy = _get(yaml_conf, "server_encryption_options", "legacy_ssl_storage_port_enabled")
    path = "spec.k8ssandra.cassandra.serverVersion"
    if server_type == "dse" or release < (4, 0):
        what = f"{server_type} {version}"
        if encrypted:
            add(
                Severity.WARNING,
                "MCC_INTERNODE_PORTS",
                path,
                f"{name}: {what} encrypts internode traffic on 7001 (ssl_storage_port): open "
                "7001 between the clusters, 7000 is used only unencrypted",
                "the firewalls between the regions must pass 7001 (and 7000 for a rolling "
                "move to TLS)",
                (SSL_STORAGE_PORT,),
            )
        return
    if legacy is True:
        add(
            Severity.WARNING,
            "MCC_INTERNODE_PORTS",
            "spec.k8ssandra.cassandra.config.cassandraYaml.server_encryption_options",
            f"{name}: Cassandra {version} with legacy_ssl_storage_port_enabled: it listens on "
            "7001 as well as 7000: open both between the clusters",
            "turn the legacy port off once no 3.x node is left (it exists for upgrades)",
            (STORAGE_PORT, SSL_STORAGE_PORT),
        )
    else:
        add(
            Severity.INFO,
            "MCC_INTERNODE_PORTS",
            path,
            f"{name}: Cassandra {version} speaks internode on 7000 only"
            + (" (TLS on it)" if encrypted else "")
            + ": 7001 will not listen, and netcheck counts 7001 refused as normal",
            "open 7000 between the clusters (the guide lists 7001 too: harmless to open)",
            (STORAGE_PORT,),
        )


def registration_findings(
    linted: Linted,
    control_plane: str,
    registrations: tuple[Registration, ...],
    kube_contexts: frozenset[str],
) -> tuple[Finding, ...]:
    """Every datacenter's k8sContext against what the control plane holds: a ClientConfig
    that names that context, and its Secret (what `mcctl register` leaves). A datacenter
    with no k8sContext, or the control plane's own context, lands on the control plane.
    kube_contexts: the contexts of the user's kubeconfig (where netcheck can reach a plane)."""
    by_context = {r.context_name: r for r in registrations}
    out: list[Finding] = []
    for dc in linted.datacenters:
        ctx = dc.k8s_context
        if not ctx or ctx == control_plane:
            continue
        reg = by_context.get(ctx)
        if reg is None:
            known = ", ".join(sorted(by_context)) or "none"
            out.append(
                _finding(
                    linted,
                    Severity.ERROR,
                    "MCC_CONTEXT_NOT_REGISTERED",
                    f"{dc.name}: k8sContext {ctx} is not registered on {control_plane} "
                    f"(ClientConfigs there name: {known}): the operator fails it with "
                    '"No known client for context-name"',
                    f"mcctl register --source-context {ctx} --dest-context {control_plane}",
                    dc.location,
                )
            )
        elif not reg.secret_found:
            out.append(
                _finding(
                    linted,
                    Severity.ERROR,
                    "MCC_REGISTRATION_SECRET_MISSING",
                    f"{dc.name}: ClientConfig {reg.name} on {control_plane} names k8sContext "
                    f"{ctx}, but its Secret {reg.secret} is missing from mission-control",
                    f"mcctl register --source-context {ctx} --dest-context {control_plane} "
                    "(again: it writes the Secret with the data plane's kubeconfig)",
                    dc.location,
                )
            )
        if ctx not in kube_contexts:
            out.append(
                _finding(
                    linted,
                    Severity.INFO,
                    "MCC_CONTEXT_NOT_IN_KUBECONFIG",
                    f"{dc.name}: no context named {ctx} in your kubeconfig: to check that "
                    "data plane, netcheck needs a context for it",
                    f"give `netcheck preflight` that data plane's context (named {ctx} or as "
                    "your kubeconfig names it) beside the control plane's",
                    dc.location,
                )
            )
    return tuple(out)


def _finding(
    linted: Linted, severity: Severity, code: str, summary: str, hint: str, location: str
) -> Finding:
    return Finding(
        severity=severity,
        code=code,
        summary=summary,
        src_cluster=linted.cluster or "*",
        dst_cluster=linted.cluster or "*",
        ports=(),
        affected_pairs=0,
        hint=hint,
        location=location,
    )


def registrations_of(d: ContextDiscovery) -> tuple[Registration, ...]:
    """The ClientConfigs discovery read in mission-control, with whether each Secret exists."""
    return tuple(
        Registration(
            name=c.name,
            context_name=c.context_name or c.name,
            secret=c.secret,
            secret_found=c.secret_found,
        )
        for c in d.client_configs
    )
