"""The table of NetworkPolicy shapes (tests/netpol_cases.py) on the lab's real Kubernetes: each
case's policies applied to CP_EAST's real API server, enforced on real packets by the lab's
enforcer (kube-network-policies on every node), and every connection of the case tried from
its source pod; the enforcer, the table and netcheck's own evaluator (discovery/netpol.py, fed
with the pods and namespaces as the API server returns them) must all agree."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from netcheck.cassandra.exec import ExecTarget
from netcheck.cassandra.kube_exec import KubeExec
from netcheck.deploy.apply import apply_all
from netcheck.discovery.netpol import Cluster, Pod, evaluate, parse_policies
from netcheck.kube.client import KubeClient
from netcheck.kube.config import connection
from netcheck.kube.resources import KINDS
from netcheck.lab import build
from tests.lab_support import lab_down_keeping_logs, require_agent_image, require_root
from tests.netpol_cases import CASES, NAMED_PORTS, NAMESPACE_LABELS, POD, Case, resolve

pytestmark = pytest.mark.lab

AGENT_IMAGE = "ghcr.io/netcheck/agent:0.1.0"
PORTS = (7000, 7001, 8080)
# every pod listens on the ports the cases try; as the image's user (10001), not root
LISTEN = """
import socket, threading
def serve(port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port)); s.listen(64)
    while True:
        c, _ = s.accept(); c.close()
for p in (7000, 7001, 8080):
    threading.Thread(target=serve, args=(p,), daemon=True).start()
threading.Event().wait()
"""
# from a source pod: each (address, port) as open, refused or timeout, at once
CONNECT = """
import json, socket, sys
from concurrent.futures import ThreadPoolExecutor
def one(t):
    s = socket.socket(); s.settimeout(1.5)
    try:
        s.connect((t[0], t[1])); return "open"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "timeout"
    finally:
        s.close()
with ThreadPoolExecutor(16) as ex:
    print(json.dumps(list(ex.map(one, json.loads(sys.argv[1])))))
"""
# where each pod of the table runs: the CP_EAST pods on four nodes (web shares db0's), the two
# outside sources on DP_WEST
PLACED = {
    "db0": ("CP_EAST", "node-cp-dc1-r1-p0"),
    "db1": ("CP_EAST", "node-cp-dc1-r2-p0"),
    "reaper": ("CP_EAST", "node-cp-dc1-r1-p1"),
    "agent": ("CP_EAST", "node-cp-dc1-r2-p1"),
    "web": ("CP_EAST", "node-cp-dc1-r1-p0"),
    "west-db": ("DP_WEST", "node-dp-dc2-r1-p0"),
    "elsewhere": ("DP_WEST", "node-dp-dc2-r2-p0"),
}
POLICY_NAMESPACES = ("demo", "netcheck", "shop")


def admin(kc: str, cluster: str) -> KubeClient:
    return KubeClient(connection(kc, cluster))


def pod_object(key: str) -> dict[str, Any]:
    _, node = PLACED[key]
    p = POD.get(key)
    namespace, name, labels = (p.namespace, p.name, p.labels) if p else ("demo", key, {})
    ports = NAMED_PORTS if p and p.ports else {}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1,
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
            "containers": [
                {
                    "name": "main",
                    "image": AGENT_IMAGE,
                    "command": ["python3", "-c", LISTEN],
                    "ports": [
                        {"name": n, "containerPort": port, "protocol": "TCP"}
                        for n, port in ports.items()
                    ],
                }
            ],
        },
    }


@pytest.fixture(scope="module")
def world(request):
    """The table's pods on the lab, Ready, and what the API server says of them."""
    require_root()
    require_agent_image()
    failed = request.session.testsfailed
    state, _ = build.lab_up(kubernetes=True)
    kc = state["kubernetes"]["kubeconfig"]
    set_up = False
    try:

        async def create() -> None:
            async with admin(kc, "CP_EAST") as cp, admin(kc, "DP_WEST") as dp:
                for client in (cp, dp):
                    await apply_all(
                        client,
                        [
                            {
                                "apiVersion": "v1",
                                "kind": "Namespace",
                                "metadata": {"name": ns, "labels": NAMESPACE_LABELS[ns]},
                            }
                            for ns in POLICY_NAMESPACES
                        ],
                    )
                for key, (cluster, _) in PLACED.items():
                    await apply_all(cp if cluster == "CP_EAST" else dp, [pod_object(key)])

        asyncio.run(create())
        pods = wait_running(kc)
        set_up = True
        yield {"kubeconfig": kc, "pods": pods, "state": state}
    finally:
        lab_down_keeping_logs(request, failed, failed=not set_up)


def wait_running(kc: str, timeout_s: float = 90.0) -> dict[str, dict[str, Any]]:
    """Until every pod of PLACED runs with an IP; key -> the pod as the API server has it."""

    async def read() -> dict[str, dict[str, Any]]:
        out = {}
        async with admin(kc, "CP_EAST") as cp, admin(kc, "DP_WEST") as dp:
            for key, (cluster, _) in PLACED.items():
                obj = pod_object(key)
                client = cp if cluster == "CP_EAST" else dp
                got = await client.get(
                    KINDS["Pod"], obj["metadata"]["name"], obj["metadata"]["namespace"]
                )
                st = got.get("status") or {}
                if st.get("phase") == "Running" and st.get("podIP"):
                    out[key] = got
        return out

    deadline = time.monotonic() + timeout_s
    while True:
        pods = asyncio.run(read())
        if len(pods) == len(PLACED):
            return pods
        if time.monotonic() > deadline:
            pytest.fail(
                f"pods not running after {timeout_s:.0f}s: {sorted(set(PLACED) - set(pods))}"
            )
        time.sleep(1)


def address(world: dict[str, Any], key: str) -> str:
    return str(world["pods"][key]["status"]["podIP"])


def connect_all(world: dict[str, Any], case: Case) -> dict[tuple[str, str, int], str]:
    """Every connection of the case, from its source pod (one exec per source, in parallel)."""
    by_source: dict[str, list[tuple[str, int]]] = {}
    for src, dst, port, _ in case.expect:
        by_source.setdefault(src, []).append((address(world, dst), port))

    async def from_source(src: str, targets: list[tuple[str, int]]) -> list[str]:
        cluster, _ = PLACED[src]
        meta = world["pods"][src]["metadata"]
        target = ExecTarget(
            endpoint=src,
            address="",
            namespace=meta["namespace"],
            context=cluster,
            pod=meta["name"],
            container="main",
        )
        async with admin(world["kubeconfig"], cluster) as client:
            got = await KubeExec({cluster: client}).run(
                target, ["python3", "-c", CONNECT, json.dumps(targets)], 30
            )
        assert got.ok, (src, got.error)
        return list(json.loads(got.output))

    async def all_sources() -> dict[tuple[str, str, int], str]:
        keys = list(by_source)
        results = await asyncio.gather(*(from_source(k, by_source[k]) for k in keys))
        out = {}
        for src, outcomes in zip(keys, results, strict=True):
            dsts = [(d, p) for s, d, p, _ in case.expect if s == src]
            for (dst, port), outcome in zip(dsts, outcomes, strict=True):
                out[(src, dst, port)] = outcome
        return out

    return asyncio.run(all_sources())


def set_policies(world: dict[str, Any], policies: list[dict[str, Any]]) -> None:
    async def go() -> None:
        async with admin(world["kubeconfig"], "CP_EAST") as cp:
            for ns in POLICY_NAMESPACES:
                for p in await cp.list(KINDS["NetworkPolicy"], ns):
                    await cp.delete(KINDS["NetworkPolicy"], p["metadata"]["name"], ns)
            await apply_all(cp, policies)

    asyncio.run(go())


def until(
    world: dict[str, Any], case: Case, want: dict[tuple[str, str, int], str], timeout_s: float
) -> dict[tuple[str, str, int], str]:
    """Connect until the outcomes are `want` (the enforcer syncs within about a second of a
    change it has seen) or the time is up; the last outcomes."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = connect_all(world, case)
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def evaluator_says(
    world: dict[str, Any], policies: list[dict[str, Any]], case: Case
) -> dict[tuple[str, str, int], str]:
    """netcheck's evaluator on the pods and namespaces as the API server returns them."""

    def as_pod(obj: dict[str, Any]) -> Pod:
        meta = obj["metadata"]
        named = {
            (str(p["name"]), str(p.get("protocol", "TCP"))): int(p["containerPort"])
            for c in obj["spec"]["containers"]
            for p in c.get("ports") or []
            if p.get("name")
        }
        return Pod(
            namespace=meta["namespace"],
            name=meta["name"],
            labels=meta.get("labels") or {},
            address=obj["status"]["podIP"],
            named_ports=named,
        )

    cluster = Cluster(policies=parse_policies(policies), namespace_labels=NAMESPACE_LABELS)
    out = {}
    for src, dst, port, _ in case.expect:
        inside = PLACED[src][0] == "CP_EAST"
        v = evaluate(
            cluster,
            as_pod(world["pods"][dst]),
            port,
            src=as_pod(world["pods"][src]) if inside else None,
            src_address=address(world, src),
        )
        out[(src, dst, port)] = "open" if v.admitted else "timeout"
    return out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_enforcer_and_netcheck_agree_with_the_table(world, case):
    """Per case: with no policy every connection opens; with the case's policies the enforcer
    drops exactly the ones the table refuses (a dropped SYN: timeout), and netcheck's
    evaluator says the same of each."""
    all_open = {(s, d, p): "open" for s, d, p, _ in case.expect}
    set_policies(world, [])
    assert until(world, case, all_open, 15) == all_open
    places = {"$WEST_CIDR": "198.18.32.0/19", "$WEST_DB": address(world, "west-db")}
    policies = resolve(case.policies, places)
    set_policies(world, policies)
    want = {(s, d, p): "open" if ok else "timeout" for s, d, p, ok in case.expect}
    got = until(world, case, want, 15)
    assert got == want, {k: (got[k], v) for k, v in want.items() if got[k] != v}
    assert evaluator_says(world, policies, case) == want


def test_an_ephemeral_container_joins_its_pods_network_and_speaks_with_its_address(world):
    """As `kubectl debug` adds one (pods/ephemeralcontainers): the lab kubelet starts it once
    in the pod's network namespace; a connection it opens leaves with the pod's address, its
    log is read by its name, and its status says it completed."""
    web = world["pods"]["web"]["metadata"]
    script = (
        "import socket, sys; "
        "print(socket.create_connection((sys.argv[1], 7000), 5).getsockname()[0])"
    )
    debug = {
        "name": "probe",
        "image": AGENT_IMAGE,
        "command": ["python3", "-c", script, address(world, "db0")],
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
    }
    path = f"/api/v1/namespaces/{web['namespace']}/pods/{web['name']}"

    async def add_and_read() -> tuple[dict[str, Any], str]:
        async with admin(world["kubeconfig"], "CP_EAST") as cp:
            status, raw = await cp.request(
                "PATCH",
                f"{path}/ephemeralcontainers",
                verb="patch",
                resource="pods/ephemeralcontainers",
                namespace=web["namespace"],
                data=json.dumps({"spec": {"ephemeralContainers": [debug]}}).encode(),
                headers={"Content-Type": "application/strategic-merge-patch+json"},
            )
            assert status == 200, raw
            deadline = time.monotonic() + 30
            while True:
                pod = await cp.get(KINDS["Pod"], web["name"], web["namespace"])
                states = (pod.get("status") or {}).get("ephemeralContainerStatuses") or []
                if states and "terminated" in states[0]["state"]:
                    break
                assert time.monotonic() < deadline, pod.get("status")
                await asyncio.sleep(0.5)
            log = await cp.logs(web["namespace"], web["name"], "probe", 600, 10)
            return states[0], log

    state, log = asyncio.run(add_and_read())
    assert state["name"] == "probe" and state["state"]["terminated"]["exitCode"] == 0, state
    assert state["state"]["terminated"]["reason"] == "Completed"
    assert log.strip() == address(world, "web")  # the pod's own address, not its node's
