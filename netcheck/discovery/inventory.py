"""The inventory file: clusters and their endpoints, where Kubernetes discovery is not used.

Every error names the file, the path inside it and the fix, in one line.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlparse

import yaml

from netcheck.model.probe import ProbeKind
from netcheck.model.text import YamlLimitError, load_yaml, one_line
from netcheck.model.topology import Cluster, Endpoint, PortSpec, Role, Topology

TOP_KEYS = {"clusters", "token_file", "cassandra"}
CASSANDRA_EXECS = ("lab",)
CLUSTER_KEYS = {"name", "region", "pod_cidrs", "endpoints"}
ENDPOINT_KEYS = {
    "name",
    "address",
    "datacenter",
    "rack",
    "zone",
    "role",
    "agent",
    "ports",
    "stand_in",
}


MAX_INVENTORY_BYTES = 16 << 20


class InventoryError(ValueError):
    def __init__(self, source: str, path: str, problem: str, fix: str) -> None:
        where = f"{source}: {path}" if path else source
        # keys and values come from the file: a newline in one must not break the line
        super().__init__(one_line(f"{where}: {problem}; {fix}", limit=600))


class _Checker:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, problem: str, fix: str) -> InventoryError:
        return InventoryError(self.source, path, problem, fix)

    def mapping(self, value: Any, path: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(
                path,
                f"expected a mapping, found {type(value).__name__}",
                "see the inventory format in the README",
            )
        for key in value:
            if key not in keys:
                raise self.fail(
                    f"{path}.{str(key)[:64]}" if path else str(key)[:64],
                    "unknown key",
                    f"use one of: {', '.join(sorted(keys))}",
                )
        return value

    def string(self, obj: dict[str, Any], key: str, path: str, required: bool = True) -> str:
        value = obj.get(key)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or not value.strip():
            raise self.fail(
                f"{path}.{key}", "missing or not a non-empty string", f"give {key} as text"
            )
        return value.strip()


def load_inventory(path: str) -> Topology:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        raise InventoryError(
            path, "", f"cannot read it ({exc.strerror})", "check the path given to --inventory"
        ) from None
    if len(data) > MAX_INVENTORY_BYTES:
        raise InventoryError(
            path, "", f"larger than {MAX_INVENTORY_BYTES >> 20} MiB", "is this the inventory?"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InventoryError(
            path, "", f"not UTF-8 text (byte {exc.start})", "save the inventory as UTF-8"
        ) from None
    return parse_inventory(text, path)


def parse_inventory(text: str, source: str = "<inventory>") -> Topology:
    c = _Checker(source)
    try:
        doc = load_yaml(text)
    except YamlLimitError as exc:
        raise c.fail("", f"refused: {exc}", "write the inventory out plainly") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise c.fail(where, "not valid YAML", "fix the YAML syntax") from None
    top = c.mapping(doc, "", TOP_KEYS)
    clusters_json = top.get("clusters")
    if not isinstance(clusters_json, list) or not clusters_json:
        raise c.fail("clusters", "missing or empty", "list at least one cluster")
    clusters: list[Cluster] = []
    endpoints: list[Endpoint] = []
    seen_clusters: set[str] = set()
    seen_endpoints: dict[str, str] = {}
    seen_addresses: dict[str, str] = {}
    for i, cj in enumerate(clusters_json):
        cpath = f"clusters[{i}]"
        cm = c.mapping(cj, cpath, CLUSTER_KEYS)
        name = c.string(cm, "name", cpath)
        if name in seen_clusters:
            raise c.fail(
                f"{cpath}.name",
                f"cluster {name!r} is listed twice",
                "give each cluster a unique name",
            )
        seen_clusters.add(name)
        region = c.string(cm, "region", cpath)
        cidrs_json = cm.get("pod_cidrs", [])
        if not isinstance(cidrs_json, list):
            raise c.fail(f"{cpath}.pod_cidrs", "not a list", "write e.g. [198.18.0.0/20]")
        cidrs = []
        for j, cidr in enumerate(cidrs_json):
            try:
                cidrs.append(str(ipaddress.ip_network(str(cidr), strict=True)))
            except ValueError:
                raise c.fail(
                    f"{cpath}.pod_cidrs[{j}]",
                    f"{cidr!r} is not a network CIDR",
                    "write e.g. 198.18.0.0/20 (host bits zero)",
                ) from None
        clusters.append(Cluster(name=name, region=region, pod_cidrs=tuple(cidrs)))
        eps_json = cm.get("endpoints")
        if not isinstance(eps_json, list) or not eps_json:
            raise c.fail(f"{cpath}.endpoints", "missing or empty", "list the cluster's endpoints")
        for k, ej in enumerate(eps_json):
            ep = _endpoint(c, ej, f"{cpath}.endpoints[{k}]", name, region)
            if ep.name in seen_endpoints:
                raise c.fail(
                    f"{cpath}.endpoints[{k}].name",
                    f"endpoint {ep.name!r} is also at {seen_endpoints[ep.name]}",
                    "give each endpoint a unique name",
                )
            if ep.address in seen_addresses:
                raise c.fail(
                    f"{cpath}.endpoints[{k}].address",
                    f"{ep.address} is also the address of {seen_addresses[ep.address]}",
                    "give each endpoint its own address",
                )
            seen_endpoints[ep.name] = f"{cpath}.endpoints[{k}]"
            seen_addresses[ep.address] = ep.name
            endpoints.append(ep)
    token_file = top.get("token_file")
    if token_file is not None:
        if not isinstance(token_file, str) or not token_file:
            raise c.fail("token_file", "not a path", "give the path of the agent token file")
        if not os.path.isabs(token_file) and os.path.exists(source):
            token_file = os.path.join(os.path.dirname(os.path.abspath(source)), token_file)
    cassandra_exec = ""
    if top.get("cassandra") is not None:
        cm = c.mapping(top["cassandra"], "cassandra", {"exec"})
        cassandra_exec = str(cm.get("exec", ""))
        if cassandra_exec not in CASSANDRA_EXECS:
            raise c.fail(
                "cassandra.exec",
                f"unknown exec backend {cassandra_exec!r}",
                "write 'exec: lab' (the built-in lab) or remove the cassandra key",
            )
    if not any(ep.has_agent for ep in endpoints):
        raise c.fail(
            "clusters",
            "no endpoint has an agent",
            "set 'agent: http://ADDRESS:9925' on the endpoints where agents run",
        )
    return Topology(
        clusters=tuple(clusters),
        endpoints=tuple(endpoints),
        token_file=token_file,
        cassandra_exec=cassandra_exec,
    )


def _endpoint(c: _Checker, ej: Any, path: str, cluster: str, region: str) -> Endpoint:
    em = c.mapping(ej, path, ENDPOINT_KEYS)
    name = c.string(em, "name", path)
    address = c.string(em, "address", path)
    try:
        address = str(ipaddress.ip_address(address))
    except ValueError:
        raise c.fail(
            f"{path}.address",
            f"{address!r} is not an IP address",
            "write the endpoint's pod or node IP, e.g. 198.18.1.10",
        ) from None
    role_s = em.get("role", "database")
    if not isinstance(role_s, str) or role_s not in {r.value for r in Role}:
        raise c.fail(
            f"{path}.role",
            f"unknown role {role_s!r}",
            "use database, control-plane-node, api-server or other",
        )
    agent = em.get("agent")
    if agent is not None and not _agent_url(agent):
        raise c.fail(
            f"{path}.agent",
            f"{str(agent)[:100]!r} is not an agent URL",
            "write it as http://ADDRESS:9925",
        )
    ports = _ports(c, em.get("ports", []), f"{path}.ports")
    stand_in = em.get("stand_in", agent is not None)
    if not isinstance(stand_in, bool):
        raise c.fail(f"{path}.stand_in", "not true or false", "write true or false")
    return Endpoint(
        name=name,
        cluster=cluster,
        region=region,
        address=address,
        datacenter=c.string(em, "datacenter", path, required=False),
        rack=c.string(em, "rack", path, required=False),
        zone=c.string(em, "zone", path, required=False),
        role=Role(role_s),
        agent=str(agent) if agent is not None else None,
        ports=ports,
        stand_in=stand_in,
    )


def _agent_url(agent: Any) -> bool:
    if not isinstance(agent, str):
        return False
    try:
        parsed = urlparse(agent)
        port = parsed.port  # ValueError when out of range or not a number
    except ValueError:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.hostname) and port is not None


def _ports(c: _Checker, value: Any, path: str) -> tuple[PortSpec, ...]:
    if not isinstance(value, list):
        raise c.fail(path, "not a list", "write e.g. [7000, 7001, 8080]")
    specs: list[PortSpec] = []
    for i, p in enumerate(value):
        ppath = f"{path}[{i}]"
        if isinstance(p, dict):
            pm = c.mapping(p, ppath, {"port", "kind", "stand_in"})
            port, kind = pm.get("port"), pm.get("kind", "tcp")
            if not isinstance(kind, str) or kind not in {k.value for k in ProbeKind}:
                raise c.fail(
                    f"{ppath}.kind", f"unknown kind {str(kind)[:40]!r}", "use tcp, tls or http"
                )
            port_stand_in = pm.get("stand_in")
            if port_stand_in is not None and not isinstance(port_stand_in, bool):
                raise c.fail(f"{ppath}.stand_in", "not true or false", "write true or false")
        else:
            port, kind, port_stand_in = p, None, None
        if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
            raise c.fail(
                ppath, f"{str(port)[:40]!r} is not a port", "write a number from 1 to 65535"
            )
        spec = (
            PortSpec.default(port)
            if kind is None
            else PortSpec(port=port, kind=ProbeKind(kind), stand_in=port_stand_in)
        )
        if any(s.port == port for s in specs):
            raise c.fail(ppath, f"port {port} is listed twice", "list each port once")
        specs.append(spec)
    return tuple(specs)


def _port_doc(p: PortSpec) -> dict[str, Any]:
    doc: dict[str, Any] = {"port": p.port, "kind": p.kind.value}
    if p.stand_in is not None:
        doc["stand_in"] = p.stand_in
    return doc


def dump_inventory(topology: Topology) -> str:
    """The inventory YAML of a topology (what `netcheck lab inventory` prints)."""
    doc: dict[str, Any] = {"clusters": []}
    for cl in topology.clusters:
        eps = []
        for ep in topology.endpoints:
            if ep.cluster != cl.name:
                continue
            e: dict[str, Any] = {"name": ep.name, "address": ep.address}
            for key in ("datacenter", "rack", "zone"):
                if getattr(ep, key):
                    e[key] = getattr(ep, key)
            e["role"] = ep.role.value
            if ep.agent:
                e["agent"] = ep.agent
            e["ports"] = [
                p.port if PortSpec.default(p.port) == p else _port_doc(p) for p in ep.ports
            ]
            if ep.stand_in != ep.has_agent:
                e["stand_in"] = ep.stand_in
            eps.append(e)
        doc["clusters"].append(
            {
                "name": cl.name,
                "region": cl.region,
                "pod_cidrs": list(cl.pod_cidrs),
                "endpoints": eps,
            }
        )
    if topology.token_file:
        doc["token_file"] = topology.token_file
    if topology.cassandra_exec:
        doc["cassandra"] = {"exec": topology.cassandra_exec}
    return yaml.safe_dump(doc, sort_keys=False)
