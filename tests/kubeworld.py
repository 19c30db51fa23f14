"""Objects shaped like a Mission Control install, fed to the fake API servers (tests/kubefake.py).

One Kubernetes node per host of the default lab spec (no lab is started: nothing answers and
no packet leaves loopback); pods on it get the host's address.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from netcheck.lab.spec import default_spec, lab_hosts
from tests.kubefake import FakeApiServer, FakeClusters, FakeNode

DB_NAMESPACE = "demo"
CASS_CLUSTER = "demo"


def spec_hosts() -> list[dict[str, Any]]:
    """The default lab's hosts without building the lab (for tests that send no packets)."""
    return [asdict(h) for h in lab_hosts(default_spec())]


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def cassandra_pod(h: dict[str, Any], node: str, index: int) -> dict[str, Any]:
    dc, rack = h["datacenter"], h["rack"]
    ports = [
        ("native", 9042),
        ("tls-native", 9142),
        ("internode", 7000),
        ("tls-internode", 7001),
        ("jmx", 7199),
        ("mgmt-api-http", 8080),
        ("prometheus", 9103),
        ("metrics", 9000),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{CASS_CLUSTER}-{dc}-{rack}-sts-{index}",
            "namespace": DB_NAMESPACE,
            "labels": {
                "app.kubernetes.io/managed-by": "cass-operator",
                "app.kubernetes.io/name": "cassandra",
                "cassandra.datastax.com/cluster": CASS_CLUSTER,
                "cassandra.datastax.com/datacenter": dc,
                "cassandra.datastax.com/rack": rack,
                "cassandra.datastax.com/node-state": "Started",
                "statefulset.kubernetes.io/pod-name": f"{CASS_CLUSTER}-{dc}-{rack}-sts-{index}",
            }
            | ({"cassandra.datastax.com/seed-node": "true"} if index == 0 else {}),
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "cassandra",
                    "image": "cr.dtsx.io/datastax/cassandra:5.0.2",
                    "ports": [{"name": n, "containerPort": p, "protocol": "TCP"} for n, p in ports],
                },
                {"name": "server-system-logger", "image": "cr.dtsx.io/datastax/vector:0.39"},
            ],
            "initContainers": [{"name": "server-config-init", "image": "config-builder"}],
        },
        "status": {
            "phase": "Running",
            "podIP": h["address"],
            "podIPs": [{"ip": h["address"]}],
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def populate(api: FakeApiServer, hosts: list[dict[str, Any]], cluster: str) -> None:
    mine = [h for h in hosts if h["cluster"] == cluster and h["role"] == "database"]
    for ns in ("default", "kube-system", DB_NAMESPACE, "netcheck"):
        api.put(namespace(ns))
    dcs: set[str] = set()
    per_rack: dict[str, int] = {}
    seeds: list[str] = []
    for h in mine:
        node = f"node-{h['name']}"
        api.add_node(
            FakeNode(
                name=node,
                internal_ip=h["node_address"],
                zone=h["zone"],
                region=h["region"],
                pod_cidr=f"{h['address']}/32",
            )
        )
        i = per_rack.get(h["rack"], 0)
        per_rack[h["rack"]] = i + 1
        pod = cassandra_pod(h, node, i)
        api.put(pod)
        if i == 0:
            seeds.append(h["address"])
        dcs.add(h["datacenter"])
    for dc in sorted(dcs):
        for suffix, selector in (
            ("service", True),
            ("all-pods-service", True),
            ("additional-seed-service", False),
        ):
            name = f"{CASS_CLUSTER}-{dc}-{suffix}"
            svc: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": DB_NAMESPACE,
                    "labels": {"cassandra.datastax.com/cluster": CASS_CLUSTER},
                },
                "spec": {"clusterIP": "None", "ports": [{"name": "internode", "port": 7000}]},
            }
            if selector:
                svc["spec"]["selector"] = {"cassandra.datastax.com/datacenter": dc}
            api.put(svc)
        others = [
            h["address"]
            for h in hosts
            if h["cluster"] != cluster and h["role"] == "database" and h["name"].endswith("-p0")
        ]
        api.put(
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": f"{CASS_CLUSTER}-{dc}-additional-seed-service-abcde",
                    "namespace": DB_NAMESPACE,
                    "labels": {
                        "kubernetes.io/service-name": f"{CASS_CLUSTER}-{dc}-additional-seed-service"
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [a]} for a in others],
                "ports": [{"name": "internode", "port": 7000}],
            }
        )
    api.put(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": f"{CASS_CLUSTER}-seed-service",
                "namespace": DB_NAMESPACE,
                "labels": {"cassandra.datastax.com/cluster": CASS_CLUSTER},
            },
            "spec": {
                "clusterIP": "None",
                "selector": {"cassandra.datastax.com/seed-node": "true"},
            },
        }
    )
    api.put(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "cassandra-internode", "namespace": DB_NAMESPACE},
            "spec": {
                "podSelector": {"matchLabels": {"cassandra.datastax.com/cluster": CASS_CLUSTER}},
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [
                            {
                                "podSelector": {
                                    "matchLabels": {"cassandra.datastax.com/cluster": CASS_CLUSTER}
                                }
                            }
                        ],
                        "ports": [{"port": 7000}, {"port": 7001}],
                    }
                ],
            },
        }
    )


def register_mission_control(api: FakeApiServer, data_plane: str) -> None:
    """What `mcctl register` leaves on the control plane."""
    api.put(namespace("mission-control"))
    name = f"{data_plane.lower().replace('_', '-')}-demo"
    api.put(
        {
            "apiVersion": "config.k8ssandra.io/v1beta1",
            "kind": "ClientConfig",
            "metadata": {"name": name, "namespace": "mission-control"},
            "spec": {"contextName": data_plane, "kubeConfigSecret": {"name": f"{name}-config"}},
        }
    )
    api.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-config", "namespace": "mission-control"},
            "type": "Opaque",
            "data": {"kubeconfig": "c2VjcmV0LWRhdGEtdGhhdC1tdXN0LW5ldmVyLWxlYXZl"},
        }
    )


def mission_control_world(fakes: FakeClusters, hosts: list[dict[str, Any]]) -> None:
    for ctx, api in fakes.apis.items():
        populate(api, hosts, ctx)
    register_mission_control(fakes.apis["CP_EAST"], "DP_WEST")
