"""The lab's kubelet: the Nodes (here) and the pods bound to them (lab/pods.py).

One process per lab cluster, in that cluster's control-plane namespace (so `lab down` and the
crash clean-up stop it). For every database host of the cluster it registers a Node the way a
kubelet does, with the node's own credentials (user system:node:NAME in group system:nodes, so
the API server's Node authorizer applies): InternalIP the host's node address, podCIDR a /30 of
the cluster's network (the addresses of its pods other than Cassandra's; the Cassandra pods have
the host's database address, outside the podCIDR, as pods of a routed network can), zone and
region labels from the lab spec, kubelet port 10250. Then it keeps each Node Ready: a Lease in
kube-node-lease renewed every 10 s and the Ready condition's heartbeat, as the node lifecycle
controller expects. The DaemonSet controller then makes a pod per Node and the scheduler binds
it.

It serves the kubelet API for `pods/log` and `pods/exec` (lab/kubelet_api.py). Why a
kubelet of our own and not kwok: kwok simulates pods without running them, and the lab's pods
must run (the agents probe for real).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from netcheck.kube.client import KubeClient
from netcheck.kube.config import connection
from netcheck.kube.errors import Conflict, KubeError
from netcheck.lab.kubelet_api import KUBELET_PORT, serve
from netcheck.lab.pods import NodePods

HEARTBEAT_S = 10.0
POD_SYNC_S = 1.0
LEASE_S = 40
KUBELET_VERSION = "v1.34.4"


@dataclass(frozen=True, kw_only=True)
class LabNode:
    name: str
    internal_ip: str
    pod_cidr: str
    zone: str
    region: str


def node_name(host: dict[str, Any]) -> str:
    return f"node-{host['name']}"


def lab_nodes(hosts: list[dict[str, Any]], cluster: str) -> list[LabNode]:
    """The cluster's Kubernetes nodes: its database hosts (the node in the host's network
    namespace, each pod in one of its own behind it: lab/pods.py)."""
    return [
        LabNode(
            name=node_name(h),
            internal_ip=h["node_address"],
            pod_cidr=h.get("node_pod_cidr") or f"{h['address']}/32",
            zone=h["zone"],
            region=h["region"],
        )
        for h in hosts
        if h["cluster"] == cluster and h["role"] == "database"
    ]


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _micro_now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(n: LabNode) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": n.name,
            "labels": {
                "kubernetes.io/hostname": n.name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "topology.kubernetes.io/zone": n.zone,
                "topology.kubernetes.io/region": n.region,
            },
        },
        "spec": {"podCIDR": n.pod_cidr, "podCIDRs": [n.pod_cidr]},
    }


def node_status(n: LabNode, ready: bool = True) -> dict[str, Any]:
    now = _now()
    return {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": n.internal_ip},
                {"type": "Hostname", "address": n.name},
            ],
            "capacity": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "8Gi", "pods": "110"},
            "daemonEndpoints": {"kubeletEndpoint": {"Port": KUBELET_PORT}},
            "nodeInfo": {
                "kubeletVersion": KUBELET_VERSION,
                "kubeProxyVersion": "",
                "operatingSystem": "linux",
                "architecture": "amd64",
                "containerRuntimeVersion": "netcheck-lab://0.1",
                "kernelVersion": "",
                "osImage": "netcheck lab",
                "machineID": "",
                "systemUUID": "",
                "bootID": "",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True" if ready else "False",
                    "reason": "KubeletReady" if ready else "KubeletNotReady",
                    "message": "netcheck lab kubelet is posting ready status",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                },
                *(
                    {
                        "type": t,
                        "status": "False",
                        "reason": f"KubeletHas{r}",
                        "message": "",
                        "lastHeartbeatTime": now,
                        "lastTransitionTime": now,
                    }
                    for t, r in (
                        ("MemoryPressure", "SufficientMemory"),
                        ("DiskPressure", "NoDiskPressure"),
                        ("PIDPressure", "SufficientPID"),
                    )
                ),
            ],
        }
    }


def lease_object(n: LabNode) -> dict[str, Any]:
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": n.name, "namespace": "kube-node-lease"},
        "spec": {
            "holderIdentity": n.name,
            "leaseDurationSeconds": LEASE_S,
            "renewTime": _micro_now(),
        },
    }


async def _send(client: KubeClient, method: str, path: str, body: Any, verb: str, res: str) -> None:
    headers = {"Content-Type": "application/merge-patch+json"} if method == "PATCH" else None
    status, raw = await client.request(
        method,
        path,
        verb=verb,
        resource=res,
        data=json.dumps(body).encode(),
        headers=headers or {"Content-Type": "application/json"},
    )
    if not 200 <= status < 300:
        raise KubeError(client.context, f"{verb} {res}: HTTP {status}: {raw[:200]!r}")


async def register(client: KubeClient, n: LabNode) -> None:
    with contextlib.suppress(Conflict):  # a kubelet that restarts finds its Node
        await _send(client, "POST", "/api/v1/nodes", node_object(n), "create", "nodes")
    await heartbeat(client, n)


async def heartbeat(client: KubeClient, n: LabNode) -> None:
    await _send(
        client, "PATCH", f"/api/v1/nodes/{n.name}/status", node_status(n), "patch", "nodes/status"
    )
    lease = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{n.name}"
    try:
        await _send(client, "PATCH", lease, {"spec": lease_object(n)["spec"]}, "patch", "leases")
    except KubeError:
        await _send(
            client,
            "POST",
            "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases",
            lease_object(n),
            "create",
            "leases",
        )


async def keep_node(client: KubeClient, n: LabNode, pods: NodePods, stop: asyncio.Event) -> None:
    """Register the Node, keep it Ready and run its pods until stopped; errors are logged and
    retried."""
    registered = False
    next_beat = 0.0
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            try:
                if not registered:
                    await register(client, n)
                    registered = True
                    next_beat = loop.time() + HEARTBEAT_S
                elif loop.time() >= next_beat:
                    await heartbeat(client, n)
                    next_beat = loop.time() + HEARTBEAT_S
                await pods.sync()
            except KubeError as exc:
                print(f"kubelet {n.name}: {exc}", file=sys.stderr, flush=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POD_SYNC_S)
    finally:
        await pods.stop_all()


async def run(state: dict[str, Any], state_dir: str, cluster: str, stop: asyncio.Event) -> None:
    kube = state["kubernetes"]
    plane = next(p for p in kube["planes"] if p["cluster"] == cluster)
    kubeconfig = kube["node_kubeconfigs"][cluster]
    host_of = {node_name(h): h for h in state["hosts"]}
    pods_dir = os.path.join(state_dir, "pods")
    nodes = lab_nodes(state["hosts"], cluster)
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            n.name: await stack.enter_async_context(KubeClient(connection(kubeconfig, n.name)))
            for n in nodes
        }
        pods = {
            n.name: NodePods(
                clients[n.name],
                n.name,
                host_of[n.name],
                os.path.join(pods_dir, n.name),
                state_dir,
            )
            for n in nodes
        }
        api = await serve(
            {n.internal_ip: pods[n.name] for n in nodes},
            plane["kubelet_cert"],
            plane["kubelet_key"],
            plane["ca_file"],
        )
        try:
            await asyncio.gather(
                *(keep_node(clients[n.name], n, pods[n.name], stop) for n in nodes)
            )
        finally:
            await api.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m netcheck.lab.kubelet")
    parser.add_argument("--state", required=True, help="the lab's state.json")
    parser.add_argument("--cluster", required=True)
    args = parser.parse_args(argv)
    with open(args.state, encoding="utf-8") as f:
        state = json.load(f)
    state_dir = os.path.dirname(os.path.abspath(args.state))

    async def go() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await run(state, state_dir, args.cluster, stop)

    asyncio.run(go())


if __name__ == "__main__":
    main()
