"""The database side of a Mission Control install, on the lab's real Kubernetes clusters.

With `lab up --kubernetes --cassandra`, this module plays the operators and `mcctl register`
(none of them runs here: their images need a registry) and leaves what they leave, through the
real API servers:
- the CRDs netcheck reads (CassandraDatacenter, ClientConfig, MissionControlCluster; schemas
  kept open: the lab does not validate what the operators would);
- per cluster, namespace `demo` with a CassandraDatacenter and, as cass-operator makes them, a
  StatefulSet per rack (`netcheck-lab-<dc>-<rack>-sts`), whose pods the real StatefulSet
  controller creates and the real scheduler places one per node of the rack's zone; the lab
  kubelet runs them (lab/cassandra_pod.py: real Cassandra 5.0 and the Management API stand-in);
- the services cass-operator makes (`-seed-service`, `-<dc>-service`, `-<dc>-all-pods-service`,
  `-<dc>-additional-seed-service` without a selector) and, as k8ssandra-operator does, an
  EndpointSlice for the additional-seed service with the other clusters' seeds;
- the pod labels cass-operator keeps: `seed-node` on the seeds, `node-state` from
  Ready-to-Start to Started once the node serves;
- on every plane, a default StorageClass `standard`, and the Secrets Helm keeps for the
  release `mission-control` (installed, then upgraded once), labelled as Helm labels them;
- on the control plane, what `mcctl register` leaves for each data plane in `mission-control`:
  ClientConfig `<context>-dataplane1` (lower case, as object names must be) naming the context,
  and its Secret `<...>-config` holding a kubeconfig for it; and a MissionControlCluster shaped
  like the install guide's example, naming each datacenter's `k8sContext`.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import os
import time
from typing import Any

from netcheck.deploy.apply import apply_all
from netcheck.kube.client import KubeClient
from netcheck.kube.config import connection
from netcheck.kube.errors import KubeError
from netcheck.kube.resources import KINDS
from netcheck.lab.cassandra import (
    CASSANDRA_VERSION,
    CLUSTER_NAME,
    STARTED,
    ca_file,
    database_hosts,
    legacy_clusters,
    log_contains,
    log_tail,
    node_files,
    seeds_of,
)
from netcheck.lab.control_plane import kubeconfig_doc
from netcheck.lab.mgmt_standin import PORT as MGMT_PORT
from netcheck.lab.net import LabError
from netcheck.lab.pods import CASSANDRA_IMAGE, LOGGER_IMAGE

NAMESPACE = "demo"
IMAGE = f"{CASSANDRA_IMAGE}:{CASSANDRA_VERSION}"
LOGGER_CONTAINER = "server-system-logger"
NOBODY = 65534  # the lab's Cassandra files belong to nobody (cass-operator's images use 999)
CLUSTER = "cassandra.datastax.com/cluster"
DATACENTER = "cassandra.datastax.com/datacenter"
RACK = "cassandra.datastax.com/rack"
SEED = "cassandra.datastax.com/seed-node"
NODE_STATE = "cassandra.datastax.com/node-state"
ZONE = "topology.kubernetes.io/zone"
PORTS = (
    ("native", 9042),
    ("tls-native", 9142),
    ("internode", 7000),
    ("tls-internode", 7001),
    ("jmx", 7199),
    ("mgmt-api-http", MGMT_PORT),
    ("prometheus", 9103),
    ("metrics", 9000),
)
CRDS = (
    ("cassandra.datastax.com", "CassandraDatacenter", "cassandradatacenters", "v1beta1"),
    ("config.k8ssandra.io", "ClientConfig", "clientconfigs", "v1beta1"),
    ("missioncontrol.datastax.com", "MissionControlCluster", "missioncontrolclusters", "v1beta2"),
)


def crd(
    group: str,
    kind: str,
    plural: str,
    version: str,
    scope: str = "Namespaced",
    status: bool = True,
) -> dict[str, Any]:
    """A CRD that keeps whatever its objects hold. status: served as a subresource (as the
    real CRDs do; without it a test can write an object's status with the object)."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}} if status else {},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def _prefix(dc: str) -> str:
    return f"{CLUSTER_NAME}-{dc}"


def _racks(hosts: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    racks: dict[str, list[dict[str, Any]]] = {}
    for h in hosts:
        racks.setdefault(h["rack"], []).append(h)
    return racks


def statefulset(dc: str, rack: str, hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """cass-operator's StatefulSet of one rack: its pods land one per node of the rack's zone."""
    selector = {CLUSTER: CLUSTER_NAME, DATACENTER: dc, RACK: rack}
    labels = {
        **selector,
        "app.kubernetes.io/managed-by": "cass-operator",
        "app.kubernetes.io/name": "cassandra",
        "app.kubernetes.io/instance": f"cassandra-{CLUSTER_NAME}",
        "app.kubernetes.io/component": "database",
        NODE_STATE: "Ready-to-Start",
    }
    container = {
        "name": "cassandra",
        "image": IMAGE,
        "env": [
            {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "USE_MGMT_API", "value": "true"},
        ],
        "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in PORTS],
        "readinessProbe": {
            "httpGet": {"path": "/api/v0/probes/readiness", "port": MGMT_PORT},
            "periodSeconds": 5,
        },
    }
    # cass-operator's sidecar: system.log on its stdout, what `kubectl logs -c` reads
    logger = {
        "name": LOGGER_CONTAINER,
        "image": f"{LOGGER_IMAGE}:{CASSANDRA_VERSION}",
        "env": [
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "CLUSTER_NAME", "value": CLUSTER_NAME},
            {"name": "DATACENTER_NAME", "value": dc},
            {"name": "RACK_NAME", "value": rack},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {
            "name": f"{_prefix(dc)}-{rack}-sts",
            "namespace": NAMESPACE,
            "labels": {k: v for k, v in labels.items() if k != NODE_STATE},
        },
        "spec": {
            "replicas": len(hosts),
            "serviceName": f"{_prefix(dc)}-all-pods-service",
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    # the lab kubelet mounts no projected service account token
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsUser": NOBODY, "runAsGroup": NOBODY},
                    "terminationGracePeriodSeconds": 30,
                    "affinity": {
                        "nodeAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": {
                                "nodeSelectorTerms": [
                                    {
                                        "matchExpressions": [
                                            {
                                                "key": ZONE,
                                                "operator": "In",
                                                "values": [hosts[0]["zone"]],
                                            }
                                        ]
                                    }
                                ]
                            }
                        },
                        "podAntiAffinity": {
                            "requiredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "labelSelector": {"matchLabels": {CLUSTER: CLUSTER_NAME}},
                                    "topologyKey": "kubernetes.io/hostname",
                                }
                            ]
                        },
                    },
                    "containers": [container, logger],
                },
            },
        },
    }


def _service(name: str, selector: dict[str, str] | None, ports: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterIP": "None", "publishNotReadyAddresses": True}
    if selector is not None:
        spec["selector"] = selector
    if ports:
        spec["ports"] = [
            {"name": n, "port": p, "protocol": "TCP"}
            for n, p in PORTS
            if n in ("native", "internode", "mgmt-api-http")
        ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {CLUSTER: CLUSTER_NAME}},
        "spec": spec,
    }


def datacenter_objects(
    dc: str, hosts: list[dict[str, Any]], other_seeds: list[str]
) -> list[dict[str, Any]]:
    """A CassandraDatacenter and what cass-operator and k8ssandra-operator make for it."""
    racks = _racks(hosts)
    by_dc = {CLUSTER: CLUSTER_NAME, DATACENTER: dc}
    prefix = _prefix(dc)
    return [
        {
            "apiVersion": "cassandra.datastax.com/v1beta1",
            "kind": "CassandraDatacenter",
            "metadata": {"name": dc, "namespace": NAMESPACE},
            "spec": {
                "clusterName": CLUSTER_NAME,
                "serverType": "cassandra",
                "serverVersion": CASSANDRA_VERSION,
                "size": len(hosts),
                "racks": [
                    {"name": r, "nodeAffinityLabels": {ZONE: rh[0]["zone"]}}
                    for r, rh in sorted(racks.items())
                ],
                "additionalSeeds": other_seeds,
                "config": {
                    "cassandra-yaml": {"server_encryption_options": {"internode_encryption": "all"}}
                },
            },
        },
        *(statefulset(dc, r, rh) for r, rh in sorted(racks.items())),
        _service(f"{prefix}-service", by_dc, ports=True),
        _service(f"{prefix}-all-pods-service", by_dc, ports=True),
        _service(f"{prefix}-additional-seed-service", None, ports=False),
        {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": {
                "name": f"{prefix}-additional-seed-service",
                "namespace": NAMESPACE,
                "labels": {
                    "kubernetes.io/service-name": f"{prefix}-additional-seed-service",
                    "endpointslice.kubernetes.io/managed-by": "k8ssandra-operator",
                },
            },
            "addressType": "IPv4",
            "endpoints": [{"addresses": [a]} for a in other_seeds],
            "ports": [{"name": "internode", "port": 7000, "protocol": "TCP"}],
        },
    ]


INTERNODE_TLS_SECRET = "netcheck-lab-internode-tls"


def internode_tls_secret(state_dir: str, host: dict[str, Any]) -> dict[str, Any]:
    """What cert-manager leaves for a node's Certificate when Mission Control manages
    internode encryption: a kubernetes.io/tls Secret with the node's `tls.crt` and `tls.key`
    and the issuing CA in `ca.crt` (`run --ca-secret demo/netcheck-lab-internode-tls`). Its key
    is a real private key, so the tests can check it never leaves netcheck."""
    files = node_files(state_dir, host)
    with open(os.path.join(files.conf, "node.pem"), "rb") as f:
        node = f.read()
    with open(ca_file(state_dir), "rb") as f:
        ca = f.read()
    cut = node.index(b"-----BEGIN CERTIFICATE-----")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": INTERNODE_TLS_SECRET, "namespace": NAMESPACE},
        "type": "kubernetes.io/tls",
        "data": {"tls.crt": b64(node[cut:]), "tls.key": b64(node[:cut]), "ca.crt": b64(ca)},
    }


def cluster_objects(state: dict[str, Any], cluster: str) -> list[dict[str, Any]]:
    hosts = database_hosts(state)
    seeds = seeds_of(hosts)
    mine = [h for h in hosts if h["cluster"] == cluster]
    other_seeds = [h["address"] for h in hosts if h["cluster"] != cluster and h["address"] in seeds]
    dcs: dict[str, list[dict[str, Any]]] = {}
    for h in mine:
        dcs.setdefault(h["datacenter"], []).append(h)
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        *(o for dc, dh in sorted(dcs.items()) for o in datacenter_objects(dc, dh, other_seeds)),
        _service(f"{CLUSTER_NAME}-seed-service", {CLUSTER: CLUSTER_NAME, SEED: "true"}, False),
    ]


# a cluster's default StorageClass, as every installer leaves one (the lab's pods keep their
# data on the lab's disk: nothing provisions volumes here)
STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {
        "name": "standard",
        "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
    },
    "provisioner": "kubernetes.io/no-provisioner",
    "volumeBindingMode": "WaitForFirstConsumer",
}
RELEASE = "mission-control"  # the guide's Helm release name, the same on every plane
CHART_VERSION = "1.14.0"


def helm_release_objects(
    release: str, control_plane: bool, revisions: tuple[str, ...] = ("superseded", "deployed")
) -> list[dict[str, Any]]:
    """The Secrets `helm install` and one `helm upgrade` leave in mission-control, as Helm
    stores a release (its storage driver's labels; the release itself gzipped JSON, base64),
    so that netcheck reads them as it would a real install's: by their labels only."""
    objects = []
    for version, status in enumerate(revisions, start=1):
        body = {
            "name": release,
            "namespace": "mission-control",
            "version": version,
            "info": {"status": status, "description": "Install complete"},
            "chart": {"metadata": {"name": "mission-control", "version": CHART_VERSION}},
            "config": {"controlPlane": control_plane},
        }
        encoded = base64.b64encode(gzip.compress(json.dumps(body).encode())).decode()
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "helm.sh/release.v1",
                "metadata": {
                    "name": f"sh.helm.release.v1.{release}.v{version}",
                    "namespace": "mission-control",
                    "labels": {
                        "owner": "helm",
                        "name": release,
                        "status": status,
                        "version": str(version),
                    },
                },
                "data": {"release": base64.b64encode(encoded.encode()).decode()},
            }
        )
    return objects


def dataplane_name(context: str) -> str:
    return f"{context.lower().replace('_', '-')}-dataplane1"


def control_plane_objects(
    state: dict[str, Any], control_plane: str, kubeconfigs: dict[str, str]
) -> list[dict[str, Any]]:
    """What `mcctl register` leaves per data plane, and the MissionControlCluster.
    kubeconfigs: data plane context -> the kubeconfig registration stores for it."""
    objects: list[dict[str, Any]] = []
    for ctx, text in sorted(kubeconfigs.items()):
        name = dataplane_name(ctx)
        objects += [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-config", "namespace": "mission-control"},
                "type": "Opaque",
                "data": {"kubeconfig": base64.b64encode(text.encode()).decode()},
            },
            {
                "apiVersion": "config.k8ssandra.io/v1beta1",
                "kind": "ClientConfig",
                "metadata": {"name": name, "namespace": "mission-control"},
                "spec": {"contextName": ctx, "kubeConfigSecret": {"name": f"{name}-config"}},
            },
        ]
    datacenters = []
    hosts = database_hosts(state)
    for dc in sorted({h["datacenter"] for h in hosts}):
        dh = [h for h in hosts if h["datacenter"] == dc]
        racks = _racks(dh)
        datacenters.append(
            {
                "metadata": {"name": dc},
                "k8sContext": "" if dh[0]["cluster"] == control_plane else dh[0]["cluster"],
                "size": len(dh),
                "racks": [
                    {"name": r, "nodeAffinityLabels": {ZONE: rh[0]["zone"]}}
                    for r, rh in sorted(racks.items())
                ],
            }
        )
    objects.append(
        {
            "apiVersion": "missioncontrol.datastax.com/v1beta2",
            "kind": "MissionControlCluster",
            "metadata": {"name": CLUSTER_NAME, "namespace": NAMESPACE},
            "spec": {
                "createIssuer": True,
                "encryption": {"internodeEncryption": {"enabled": True}},
                "k8ssandra": {
                    "cassandra": {"serverVersion": CASSANDRA_VERSION, "datacenters": datacenters}
                },
            },
        }
    )
    return objects


async def established(
    client: KubeClient, timeout_s: float, crds: tuple[tuple[str, str, str, str], ...] = CRDS
) -> None:
    deadline = time.monotonic() + timeout_s
    for group, _, plural, _ in crds:
        while True:
            doc = await client.get(KINDS["CustomResourceDefinition"], f"{plural}.{group}")
            conds = (doc.get("status") or {}).get("conditions") or []
            if any(c.get("type") == "Established" and c.get("status") == "True" for c in conds):
                break
            if time.monotonic() > deadline:
                raise LabError(f"CRD {plural}.{group} not established within {timeout_s:.0f}s")
            await asyncio.sleep(0.2)


async def install(state: dict[str, Any], state_dir: str) -> None:
    """Apply everything above, as the lab's admin of each cluster; the first cluster is the
    control plane, the others its registered data planes."""
    kube = state["kubernetes"]
    planes = kube["planes"]
    control_plane = planes[0]["cluster"]
    kubeconfigs = {p["cluster"]: kubeconfig_for(p) for p in planes[1:]}
    try:
        for plane in planes:
            async with KubeClient(connection(kube["kubeconfig"], plane["cluster"])) as client:
                await apply_all(client, [crd(*c) for c in CRDS])
                await established(client, 30.0)
                objects = [STORAGE_CLASS, *cluster_objects(state, plane["cluster"])]
                mine = [h for h in database_hosts(state) if h["cluster"] == plane["cluster"]]
                objects += [internode_tls_secret(state_dir, h) for h in mine[:1]]
                objects += helm_release_objects(RELEASE, plane["cluster"] == control_plane)
                if plane["cluster"] == control_plane:
                    objects += control_plane_objects(state, control_plane, kubeconfigs)
                await apply_all(client, objects)
    except KubeError as exc:
        raise LabError(f"installing the lab's Cassandra objects: {exc}") from None


async def _pods(client: KubeClient) -> list[dict[str, Any]]:
    return await client.list(KINDS["Pod"], NAMESPACE, label_selector=CLUSTER)


async def _label(client: KubeClient, pod: dict[str, Any], labels: dict[str, str]) -> None:
    meta = pod["metadata"]
    if all((meta.get("labels") or {}).get(k) == v for k, v in labels.items()):
        return
    status, _ = await client.request(
        "PATCH",
        KINDS["Pod"].path(NAMESPACE, meta["name"]),
        verb="patch",
        resource="pods",
        namespace=NAMESPACE,
        data=json.dumps({"metadata": {"labels": labels}}).encode(),
        headers={"Content-Type": "application/merge-patch+json"},
    )
    if status != 200 and status != 404:  # 404: the pod went meanwhile
        raise LabError(f"labelling pod {NAMESPACE}/{meta['name']}: HTTP {status}")


def _cannot_start(pod: dict[str, Any]) -> str:
    """Why the kubelet cannot create the pod's container, if it says so."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CreateContainerError":
            return str(waiting.get("message", ""))
    return ""


async def label_pods(state: dict[str, Any], started: bool) -> dict[str, str]:
    """Seed labels (by the pod's address), node-state Starting or Started; returns pod IP ->
    `namespace/pod` of every pod that has an IP. A pod whose container cannot be created is an
    error at once (waiting for it would only time out)."""
    kube = state["kubernetes"]
    seeds = set(seeds_of(database_hosts(state)))
    placed: dict[str, str] = {}
    for plane in kube["planes"]:
        async with KubeClient(connection(kube["kubeconfig"], plane["cluster"])) as client:
            for pod in await _pods(client):
                ip = (pod.get("status") or {}).get("podIP")
                if not ip:
                    continue
                placed[ip] = f"{NAMESPACE}/{pod['metadata']['name']}"
                why = _cannot_start(pod)
                if why:
                    raise LabError(f"pod {placed[ip]} in {plane['cluster']} cannot start: {why}")
                labels = {NODE_STATE: "Started" if started else "Starting"}
                if ip in seeds:
                    labels[SEED] = "true"
                await _label(client, pod, labels)
    return placed


def wait_started(state: dict[str, Any], state_dir: str, timeout_s: float) -> None:
    """Until every database host's node logged its start; a timeout names the nodes and what
    their pods and logs say."""
    hosts = database_hosts(state)
    deadline = time.monotonic() + timeout_s
    while True:
        placed = asyncio.run(label_pods(state, started=False))
        waiting = [
            h for h in hosts if not log_contains(node_files(state_dir, h).system_log, STARTED)
        ]
        if not waiting:
            return
        if time.monotonic() > deadline:
            what = [
                f"{h['name']} ({placed.get(h['address'], 'no pod placed')}: "
                f"{log_tail(node_files(state_dir, h).system_log)})"
                for h in waiting
            ]
            raise LabError(
                f"Cassandra did not start in its pods within {timeout_s:.0f}s: " + "; ".join(what)
            )
        time.sleep(2.0)


def record(state: dict[str, Any], lib: str, mgmt_classes: str) -> dict[str, Any]:
    hosts = database_hosts(state)
    return {
        "version": CASSANDRA_VERSION,
        "lib": lib,
        "mgmt_classes": mgmt_classes,
        "kubernetes": {"namespace": NAMESPACE, "cluster": CLUSTER_NAME},
        "nodes": [h["name"] for h in hosts],
        "encryption": {h["name"]: "all" for h in hosts},
        "legacy_ssl_port": sorted(
            h["name"] for h in hosts if h["cluster"] in legacy_clusters(state)
        ),
    }


def kubeconfig_for(plane: dict[str, Any]) -> str:
    """The kubeconfig registration stores for a data plane (a service account's token in a
    real install; here the plane's CI user, bound by netcheck-user.yaml)."""
    context, user = plane["cluster"], f"{plane['cluster']}-registration"
    return json.dumps(
        kubeconfig_doc(
            {context: (plane["server"], plane["ca_file"])},
            {user: plane["ci_token"]},
            [(context, context, user)],
            embed_ca=True,
        )
    )
