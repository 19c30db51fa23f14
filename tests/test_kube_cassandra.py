"""Real Cassandra in pods of the lab's real Kubernetes clusters (`lab up --kubernetes
--cassandra`): the StatefulSet controller makes the pods, the scheduler places them, the lab
kubelet runs Cassandra 5.0 in them; `netcheck run --context` reads nodetool through the API
server's exec, the logs through its logs API, CQL through the agents and the Management API,
as it would on a user's clusters. Nothing here is a fake but the kubelet (see test_kube_real)."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from netcheck.deploy.apply import apply_all
from netcheck.kube.ca_secret import secret_ref
from netcheck.kube.client import KubeClient
from netcheck.kube.config import connection
from netcheck.kube.resources import KINDS
from netcheck.lab import build, faults, operator
from netcheck.lab.cassandra import node_files
from netcheck.lab.operator import INTERNODE_TLS_SECRET
from netcheck.lab.spec import spec_from_yaml
from netcheck.workflows.contexts import CaRead, ca_from_secrets, clients_for
from tests.lab_support import (
    Run,
    lab_down_keeping_logs,
    netcheck,
    require_agent_image,
    require_root,
)
from tests.test_kube_real import (
    FOR_NEWER_SERVERS,
    NEEDED_BY,
    ONLY_WITH_CASSANDRA,
    ONLY_WITHOUT_CASSANDRA,
    Atom,
    Without,
    audited,
    error,
    get,
    grant_failures,
    granted,
    unused_grants,
    warning,
)
from tests.test_lab_cassandra import SPEC

pytestmark = pytest.mark.lab
RBAC = (Path(__file__).resolve().parents[1] / "probes" / "rbac" / "netcheck-user.yaml").read_text()
PODS = (
    "netcheck-lab-dc1-r1-sts-0",
    "netcheck-lab-dc1-r2-sts-0",
    "netcheck-lab-dc2-r1-sts-0",
    "netcheck-lab-dc2-r2-sts-0",
)


def admin(state: dict[str, Any], cluster: str) -> KubeClient:
    return KubeClient(connection(state["kubernetes"]["kubeconfig"], cluster))


async def _apply(state: dict[str, Any], cluster: str, objects: list[dict[str, Any]]) -> None:
    async with admin(state, cluster) as client:
        await apply_all(client, objects)


def cql_secret() -> dict[str, Any]:
    """The Secret the README tells a user to create for CQL reads (the lab's superuser)."""
    data = {k: base64.b64encode(b"cassandra").decode() for k in ("username", "password")}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "netcheck-cql", "namespace": "netcheck"},
        "data": data,
    }


def guide_policy(state: dict[str, Any], cluster: str) -> dict[str, Any]:
    """The isolation Mission Control's guide requires, as a user writes it for the lab: only
    database pods reach 7000/7001, those of its own cluster by label and those of the other
    cluster by address (the lab's database pods have their hosts' addresses, where a real
    cluster's policy names the other cluster's pod CIDR); 8080, 9042 and 9142 stay open to
    their clients (cass-operator, the agents' CQL reads, clients over TLS)."""
    selector = {"matchLabels": {"cassandra.datastax.com/cluster": "netcheck-lab"}}
    others = sorted(
        h["address"] for h in state["hosts"] if h["role"] == "database" and h["cluster"] != cluster
    )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "cassandra-internode", "namespace": "demo"},
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": selector}]
                    + [{"ipBlock": {"cidr": f"{a}/32"}} for a in others],
                    "ports": [{"port": 7000}, {"port": 7001}],
                },
                {"ports": [{"port": 8080}, {"port": 9042}, {"port": 9142}]},
            ],
        },
    }


def isolate(state: dict[str, Any]) -> None:
    for plane in state["kubernetes"]["planes"]:
        asyncio.run(_apply(state, plane["cluster"], [guide_policy(state, plane["cluster"])]))


@pytest.fixture(scope="module")
def kube_cassandra(request):
    """The lab with real Cassandra, the CQL Secret, the guide's NetworkPolicy in both
    clusters (a healthy install is an isolated one) and the agents deployed."""
    require_root()
    require_agent_image()
    failed = request.session.testsfailed
    state, _ = build.lab_up(spec_from_yaml(SPEC, "test spec"), cassandra=True, kubernetes=True)
    set_up = False
    try:
        kc = state["kubernetes"]["kubeconfig"]
        for plane in state["kubernetes"]["planes"]:
            asyncio.run(_apply(state, plane["cluster"], [cql_secret()]))
        isolate(state)
        args = ("--kubeconfig", kc, "--context", "CP_EAST-ci", "--context", "DP_WEST-ci")
        deploy = netcheck("deploy", *args)
        assert deploy.returncode == 0, deploy.stderr
        set_up = True
        yield state, args
    finally:
        lab_down_keeping_logs(request, failed, failed=not set_up)


def run_context(args: tuple[str, ...], *extra: str) -> Run:
    proc = netcheck(
        "run", *args, "-o", "json", "--json-probes", "all", "--timeout", "1", "--no-progress",
        *extra,
    )  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr
    return Run(code=proc.returncode, report=json.loads(proc.stdout), stderr=proc.stderr)


def test_the_database_side_is_what_cass_operator_and_mcctl_leave(kube_cassandra):
    state, _ = kube_cassandra
    hosts = {h["address"]: h for h in state["hosts"] if h["role"] == "database"}
    seeds = {"198.18.1.10", "198.18.33.10"}  # the first pod of each datacenter
    for plane in state["kubernetes"]["planes"]:
        token = plane["admin_token"]
        status, body = get(plane, "/api/v1/namespaces/demo/pods", token)
        assert status == 200
        pods = json.loads(body)["items"]
        assert len(pods) == 2
        for pod in pods:
            meta, st = pod["metadata"], pod["status"]
            assert meta["ownerReferences"][0]["kind"] == "StatefulSet"
            assert st["phase"] == "Running"
            assert [c["status"] for c in st["conditions"] if c["type"] == "Ready"] == ["True"]
            # as cass-operator's: the cassandra container and the server-system-logger sidecar
            assert [(c["name"], c["ready"]) for c in st["containerStatuses"]] == [
                ("cassandra", True),
                ("server-system-logger", True),
            ]
            host = hosts[st["podIP"]]  # a pod has its node's lab address
            assert pod["spec"]["nodeName"] == f"node-{host['name']}"
            labels = meta["labels"]
            assert labels["cassandra.datastax.com/rack"] == host["rack"]
            assert labels["cassandra.datastax.com/node-state"] == "Started"
            assert (labels.get("cassandra.datastax.com/seed-node") == "true") == (
                st["podIP"] in seeds
            )
        # the cassandra container's log is Cassandra's own, through the real API server and
        # the lab kubelet; a pod of two containers needs the container named
        name = pods[0]["metadata"]["name"]
        log_path = f"/api/v1/namespaces/demo/pods/{name}/log"
        status, log = get(plane, f"{log_path}?container=cassandra", token)
        assert status == 200 and "CassandraDaemon.java" in log and "Startup complete" in log
        status, body = get(plane, log_path, token)
        assert status == 400 and "choose one of: [cassandra server-system-logger]" in body, body
        status, body = get(
            plane,
            "/apis/cassandra.datastax.com/v1beta1/namespaces/demo/cassandradatacenters",
            token,
        )
        assert status == 200 and len(json.loads(body)["items"]) == 1
    # registration on the control plane, found by netcheck's own discovery as the CI user
    found = netcheck(
        "discover", "--kubeconfig", state["kubernetes"]["kubeconfig"], "--context", "CP_EAST-ci"
    )
    assert found.returncode == 0, found.stderr
    assert (
        "clientconfig dp-west-dataplane1 -> context DP_WEST, secret dp-west-dataplane1-config "
        "found" in found.stdout
    )
    # Helm's release Secrets, read by their labels: the latest revision of each release
    assert "helm release mission-control in mission-control: revision 2, deployed" in found.stdout
    assert (
        "service demo/netcheck-lab-dc1-additional-seed-service (additional-seed): 198.18.33.10"
        in (found.stdout)
    )


def test_lint_knows_which_contexts_the_real_control_plane_registered(kube_cassandra, tmp_path):
    """The lab's control plane CP_EAST holds a ClientConfig (and its Secret) for DP_WEST, as
    `mcctl register` leaves them: a datacenter there passes, one on an unregistered context
    is an error with the command that registers it. Read as the CI user (its RBAC only); the
    clusters the datacenters land on are read for their storage classes and zones."""
    state, _ = kube_cassandra
    doc = yaml.safe_load((Path(__file__).parent / "data" / "mcc" / "demo-mcc.yaml").read_text())
    dcs = doc["spec"]["k8ssandra"]["cassandra"]["datacenters"]
    dcs[0]["k8sContext"] = ""
    dcs.append({**dcs[1], "metadata": {"name": "dc3"}, "k8sContext": "DP_SOUTH"})
    manifest = tmp_path / "mcc.yaml"
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = netcheck(
        "lint",
        str(manifest),
        "--kubeconfig",
        state["kubernetes"]["kubeconfig"],
        "--context",
        "CP_EAST-ci",
        "-o",
        "json",
    )
    assert proc.returncode == 1, proc.stderr
    # the guide's zones and storage class are not the lab's: each datacenter that lands on a
    # cluster this kubeconfig reaches (dc1 on the control plane, dc2 on DP_WEST) is told so
    found = {(f["code"], f["summary"].split(":")[0]) for f in json.loads(proc.stdout)["findings"]}
    assert found == {
        ("MCC_INTERNODE_PORTS", "demo"),
        ("MCC_CONTEXT_NOT_REGISTERED", "dc3"),
        ("MCC_CONTEXT_NOT_IN_KUBECONFIG", "dc3"),
        ("MCC_STORAGE_CLASS_MISSING", "dc1"),
        ("MCC_STORAGE_CLASS_MISSING", "dc2"),
        *(("MCC_RACK_ZONE_EMPTY", f"{dc} rack r{i}") for dc in ("dc1", "dc2") for i in (1, 2, 3)),
    }, found
    by_dc = {
        (f["code"], f["summary"].split(":")[0]): f for f in json.loads(proc.stdout)["findings"]
    }
    assert (
        "is not a StorageClass of DP_WEST (it has: standard)"
        in (by_dc["MCC_STORAGE_CLASS_MISSING", "dc2"]["summary"])
    )
    assert "(zones there: west-a, west-b)" in by_dc["MCC_RACK_ZONE_EMPTY", "dc2 rack r1"]["summary"]
    missing = by_dc["MCC_CONTEXT_NOT_REGISTERED", "dc3"]
    assert "(ClientConfigs there name: DP_WEST)" in missing["summary"]
    assert missing["hint"] == "mcctl register --source-context DP_SOUTH --dest-context CP_EAST-ci"
    # as the lab's clusters are: their zones, the default class
    del doc["spec"]["k8ssandra"]["cassandra"]["storageConfig"]
    for dc, zones in zip(dcs, (("east-a", "east-b"), ("west-a", "west-b"), ("x",)), strict=True):
        dc["racks"] = [
            {"name": f"r{i + 1}", "nodeAffinityLabels": {"topology.kubernetes.io/zone": z}}
            for i, z in enumerate(zones)
        ]
        dc["size"] = len(zones)
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = netcheck(
        "lint", str(manifest), "--kubeconfig", state["kubernetes"]["kubeconfig"],
        "--context", "CP_EAST-ci", "-o", "json",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert {f["code"] for f in json.loads(proc.stdout)["findings"]} == {
        "MCC_INTERNODE_PORTS",
        "MCC_CONTEXT_NOT_REGISTERED",
        "MCC_CONTEXT_NOT_IN_KUBECONFIG",
    }


def test_discover_reads_the_database_side_as_the_ci_user(kube_cassandra):
    """Each context's database pods (rack, seed, ports, node), its nodes (zone, region,
    InternalIP), the cass-operator services with their endpoints, a NetworkPolicy on the
    internode ports, and on the control plane the registration of DP_WEST; the registration
    Secret is named, its content (a kubeconfig with a token) never printed."""
    state, args = kube_cassandra
    hosts = {h["address"]: h for h in state["hosts"] if h["role"] == "database"}
    proc = netcheck("discover", *args, "-o", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["errors"] == []
    cp, dp = doc["contexts"]
    assert (cp["context"], dp["context"]) == ("CP_EAST-ci", "DP_WEST-ci")
    for ctx in (cp, dp):
        assert sorted(p["name"] for p in ctx["database_pods"]) == [
            n for n in PODS if ("dc1" in n) == (ctx is cp)
        ]
        for p in ctx["database_pods"]:
            h = hosts[p["pod_ip"]]
            assert (p["datacenter"], p["rack"], p["namespace"]) == (
                h["datacenter"],
                h["rack"],
                "demo",
            )
            assert p["node"] == f"node-{h['name']}" and p["seed"] == p["name"].endswith("r1-sts-0")
            assert {7000, 7001, 8080, 9042} <= set(p["ports"])
        for n in ctx["nodes"]:
            h = next(h for h in hosts.values() if n["name"] == f"node-{h['name']}")
            assert n["internal_ip"] == h["node_address"]
            assert n["region"] == ("east" if ctx is cp else "west") and n["zone"].startswith(
                n["region"]
            )
        roles = {s["role"]: s["endpoints"] for s in ctx["services"]}
        own = sorted(p["pod_ip"] for p in ctx["database_pods"])
        assert roles["all-pods"] == own and roles["datacenter"] == own
        other = dp if ctx is cp else cp
        assert roles["additional-seed"] == [
            p["pod_ip"] for p in other["database_pods"] if p["seed"]
        ]
    for ctx in (cp, dp):  # the guide's policy (the fixture's)
        (pol,) = ctx["network_policies"]
        assert pol["name"] == "cassandra-internode" and pol["restricts_internode"], pol
        assert pol["ingress_ports"] == [7000, 7001, 8080, 9042, 9142], pol
    assert cp["client_configs"] == [
        {
            "name": "dp-west-dataplane1",
            "context_name": "DP_WEST",
            "secret": "dp-west-dataplane1-config",
            "secret_found": True,
        }
    ]
    assert dp["client_configs"] == []
    for plane in state["kubernetes"]["planes"]:
        assert plane["ci_token"] not in proc.stdout + proc.stderr
        assert plane["admin_token"] not in proc.stdout + proc.stderr
    one = netcheck("discover", *args[:4], "-o", "yaml")
    assert (
        one.returncode == 0 and yaml.safe_load(one.stdout)["contexts"][0]["context"] == "CP_EAST-ci"
    )


async def _delete(state: dict[str, Any], cluster: str, obj: dict[str, Any]) -> None:
    meta = obj["metadata"]
    async with admin(state, cluster) as client:
        await client.call(
            "DELETE",
            f"/apis/networking.k8s.io/v1/namespaces/{meta['namespace']}/networkpolicies/{meta['name']}",
            verb="delete",
            resource="networkpolicies",
            namespace=meta["namespace"],
        )


def exec_in(
    state: dict[str, Any],
    argv: list[str],
    *,
    pod: str = PODS[0],
    context: str = "CP_EAST-ci",
    **kw: Any,
) -> Any:
    """netcheck's Kubernetes exec backend, as `run --context` uses it, as the CI user."""
    from netcheck.cassandra.exec import ExecTarget
    from netcheck.cassandra.kube_exec import KubeExec

    target = ExecTarget(endpoint=pod, address="", namespace="demo", context=context, pod=pod, **kw)

    async def go() -> Any:
        async with KubeClient(connection(state["kubernetes"]["kubeconfig"], context)) as client:
            return await KubeExec({context: client}).run(target, argv, 60)

    return asyncio.run(go())


def test_exec_runs_nodetool_in_the_cassandra_container(kube_cassandra):
    """Through the real API server to the lab kubelet: nodetool's output whole (also when it
    spans many websocket frames), its failure as its exit code and first error line, the
    runtime's words for a command the image lacks, and a missing pod or container named."""
    state, _ = kube_cassandra
    status = exec_in(state, ["nodetool", "status"])
    assert status.ok and status.output.count("\nUN  ") == 4, status  # both datacenters
    big = exec_in(state, ["nodetool", "tablestats"])  # the lab kubelet sends 32 KiB frames
    tables = int(big.output.split("Total number of tables: ")[1].split()[0]) if big.ok else -1
    assert len(big.output) > 48 << 10 and big.output.count("\t\tTable: ") == tables > 0, big.error
    failed = exec_in(state, ["nodetool", "-p", "1", "status"])
    assert not failed.ok and failed.error.startswith("exit 1: nodetool: Failed to connect"), failed
    assert "\n" not in failed.error
    missing = exec_in(state, ["sh", "-c", "true"])
    assert not missing.ok and "executable file not found" in missing.error, missing
    gone = exec_in(state, ["nodetool", "status"], pod="netcheck-lab-dc1-r1-sts-9")
    assert "pod demo/netcheck-lab-dc1-r1-sts-9 not found" in gone.error, gone
    wrong = exec_in(state, ["nodetool", "status"], container="db")
    assert "HTTP 400" in wrong.error and "a container named 'db'" in wrong.error, wrong


def logs_of(state: dict[str, Any], *, pod: str = PODS[0], **kw: Any) -> Any:
    """The pod's log as `run --context` reads it (cass-operator's logger sidecar by default)."""
    from netcheck.cassandra.exec import ExecTarget
    from netcheck.cassandra.kube_exec import KubeExec

    context = "CP_EAST-ci"
    target = ExecTarget(endpoint=pod, address="", namespace="demo", context=context, pod=pod, **kw)

    async def go() -> Any:
        async with KubeClient(connection(state["kubernetes"]["kubeconfig"], context)) as client:
            return await KubeExec({context: client}).logs(target, 600, 30)

    return asyncio.run(go())


def test_logs_come_from_the_logger_sidecar(kube_cassandra):
    """cass-operator's pods print system.log in a second container, server-system-logger;
    netcheck reads the pod's log from it through the real API server and the lab kubelet:
    system.log's own lines (not Cassandra's stdout), and a container the pod lacks named."""
    state, _ = kube_cassandra
    got = logs_of(state)
    host = next(h for h in state["hosts"] if h["address"] == "198.18.1.10")  # PODS[0]'s node
    with open(node_files(build.state_dir(), host).system_log, encoding="utf-8") as f:
        system_log = f.read()
    assert got.ok and "Startup complete" in got.output, got
    lines = got.output.splitlines()
    assert len(lines) > 50 and set(lines) <= set(system_log.splitlines())
    bad = logs_of(state, log_container="x")
    assert not bad.ok and "container x is not valid for pod" in bad.error, bad


async def _delete_secrets(state: dict[str, Any], cluster: str, names: list[str]) -> None:
    async with admin(state, cluster) as client:
        for name in names:
            await client.delete(KINDS["Secret"], name, "mission-control")


def test_run_with_the_control_plane_checks_the_install_and_the_vector_aggregator(kube_cassandra):
    """`run --control-plane`: the Helm release the lab leaves on both planes (Helm's own
    Secrets, read by their labels), DP_WEST's registration on CP_EAST, and NodePort 30600 on
    every CP_EAST node from every database pod. Then the three ways an install goes wrong
    here, together: DP_WEST installed under another release name, its registration's Secret
    deleted, and 30600 dropped between the clusters; each is named with its fix."""
    state, args = kube_cassandra
    with_cp = ("--control-plane", "CP_EAST-ci")
    run = run_context(args, *with_cp)
    assert run.code == 0, (run.stderr, run.report["problems"])
    found = {(f["code"], f["src_cluster"]): f for f in run.report["findings"]}
    assert found["MC_HELM_RELEASES_MATCH", "CP_EAST-ci"]["summary"] == (
        "Mission Control's Helm release mission-control is on the control plane CP_EAST-ci "
        "and on DP_WEST-ci"
    )
    # the user's context DP_WEST-ci is the kubeconfig's cluster DP_WEST, registered so
    assert found["MC_DATA_PLANE_REGISTERED", "DP_WEST-ci"]["summary"] == (
        "DP_WEST-ci: registered on CP_EAST-ci as ClientConfig dp-west-dataplane1 "
        "(context DP_WEST, Secret dp-west-dataplane1-config)"
    )
    cp_nodes = sorted(
        e["address"] for e in run.report["endpoints"] if e["role"] == "control-plane-node"
    )
    assert cp_nodes == sorted(
        h["node_address"] for h in state["hosts"] if h["cluster"] == "CP_EAST" and h["node_address"]
    )
    vector = [p for p in run.report["probes"] if p["port"] == 30600]
    assert {(p["src"], p["dst"]) for p in vector} == {
        (src, f"CP_EAST-ci/node/{n}")
        for src in PODS
        for n in (e["name"].rpartition("/")[2] for e in run.report["endpoints"])
        if n.startswith("node-")
    }
    assert len(vector) == 4 * len(cp_nodes) and all(p["outcome"] == "open" for p in vector)
    # without --control-plane: nothing of it
    plain = run_context(args, "--no-cassandra")
    assert not [f for f in plain.report["findings"] if f["code"].startswith("MC_")]
    assert not [p for p in plain.report["probes"] if p["port"] == 30600]

    good = operator.helm_release_objects(operator.RELEASE, False)
    registration = [
        o
        for o in operator.control_plane_objects(
            state, "CP_EAST", {"DP_WEST": operator.kubeconfig_for(state["kubernetes"]["planes"][1])}
        )
        if o["kind"] == "Secret"
    ]
    asyncio.run(_delete_secrets(state, "DP_WEST", [o["metadata"]["name"] for o in good]))
    asyncio.run(_apply(state, "DP_WEST", operator.helm_release_objects("mc-west", False)))
    asyncio.run(_delete_secrets(state, "CP_EAST", [o["metadata"]["name"] for o in registration]))
    faults.add_fault("drop", src="DP_WEST", dst="CP_EAST", port=30600, both=False)
    try:
        run = run_context(args, *with_cp)
    finally:
        faults.clear_faults()
        wrong = operator.helm_release_objects("mc-west", False)
        asyncio.run(_delete_secrets(state, "DP_WEST", [o["metadata"]["name"] for o in wrong]))
        asyncio.run(_apply(state, "DP_WEST", good))
        asyncio.run(_apply(state, "CP_EAST", registration))
    assert run.code == 1, run.stderr
    errors = {
        (f["code"], f["src_cluster"]): f for f in run.report["findings"] if f["severity"] == "error"
    }
    mismatch = errors.pop(("MC_HELM_RELEASE_NAME_MISMATCH", "DP_WEST-ci"))
    assert mismatch["hint"].startswith(
        "helm uninstall mc-west -n mission-control --kube-context DP_WEST-ci; "
        "then helm install mission-control"
    )
    secret = errors.pop(("MC_REGISTRATION_SECRET_MISSING", "DP_WEST-ci"))
    assert "its Secret dp-west-dataplane1-config is not in mission-control" in secret["summary"]
    assert secret["hint"].startswith(
        "mcctl register --source-context DP_WEST-ci --dest-context CP_EAST-ci"
    )
    # the aggregator's port, from DP_WEST's database pods only: one finding, CP_EAST's nodes
    assert len(errors) == 1, errors
    (dropped,) = errors.values()
    assert dropped["ports"] == [30600] and dropped["dst_cluster"] == "CP_EAST-ci"
    assert "30600 is Mission Control's Vector aggregator" in dropped["summary"]
    bad = {
        (p["src"], p["dst"])
        for p in run.report["probes"]
        if p["outcome"] != "open" and p["port"] == 30600
    }
    assert {s for s, _ in bad} == set(PODS[2:]) and len(bad) == 2 * len(cp_nodes)


def test_run_context_reads_nodetool_logs_and_cql_through_the_real_api_servers(kube_cassandra):
    state, args = kube_cassandra
    t0 = time.monotonic()
    run = run_context(args)
    assert run.code == 0, (run.report["findings"], run.stderr)
    c = run.report["cassandra"]
    assert sorted(n["name"] for n in c["nodes"]) == sorted(PODS)  # pods, as discovery named them
    for n in c["nodes"]:
        assert n["state"] == "UN" and sorted(n["views"]) == sorted(PODS)
    # every view from nodetool, run in the pod's cassandra container through pods/exec
    assert c["view_sources"] == dict.fromkeys(PODS, "nodetool")
    assert "LEGACY_SSL_PORT_UNUSED" in [f["code"] for f in run.report["findings"]]
    # no read was refused: the logs came through pods/log
    assert not [ln for ln in run.stderr.splitlines() if "pods/" in ln], run.stderr
    # CQL through the agent on each pod's node, with the netcheck-cql Secret's login
    cql = {x["node"]: x for x in c["cql"]}
    assert sorted(cql) == sorted(PODS) and all(x["ok"] for x in cql.values()), cql
    assert all(len(x["peers"]) == 3 for x in cql.values())

    # without exec rights in the database namespace of DP_WEST (its RoleBinding removed on the
    # real server): said once per kind of read, with the fix; the matrix is still measured
    async def unbind() -> None:
        async with admin(state, "DP_WEST") as client:
            await client.delete(KINDS["RoleBinding"], "netcheck-cassandra-exec", "demo")

    asyncio.run(unbind())
    try:
        run = run_context(args, "--logs-since", str(int(time.monotonic() - t0) + 2))
    finally:
        docs = [d for d in yaml.safe_load_all(RBAC) if d and d["kind"] == "RoleBinding"]
        asyncio.run(_apply(state, "DP_WEST", docs))
    assert run.code == 3, run.stderr
    # DP_WEST's pods cannot probe for themselves either: their agents do, and what the
    # guide's policies refuse to agents (7000/7001) is not measured rather than failed
    for p in run.report["probes"]:
        from_west = p["src"] in PODS[2:]
        if from_west and p["port"] != 8080:
            assert p["outcome"] == "not_measured" and "by design" in p["detail"], p
        else:
            assert p["outcome"] in ("open", "refused"), p
    lines = [ln for ln in run.stderr.splitlines() if "pods/exec" in ln or "pods/log" in ln]
    assert len(lines) == 3, lines
    assert lines[0].startswith(
        "netcheck: warning: context DP_WEST-ci: RBAC forbids 'get and create' on 'pods/exec' "
        "in namespace demo"
    ), lines
    assert lines[1].startswith(
        "netcheck: nodetool status, nodetool describecluster, nodetool gossipinfo on "
        "netcheck-lab-dc2-r1-sts-0, netcheck-lab-dc2-r2-sts-0 (kubernetes exec): context "
        "DP_WEST-ci: RBAC forbids 'get and create' on 'pods/exec' in namespace demo"
    ), lines
    assert lines[2].startswith("netcheck: the log on netcheck-lab-dc2-r1-sts-0, ")
    assert all("netcheck-user.yaml" in ln for ln in lines)
    # the DP_WEST pods' views come from their Management API instead (no exec needed)
    assert run.report["cassandra"]["view_sources"] == {
        p: "nodetool" if "dc1" in p else "management_api" for p in PODS
    }
    for n in run.report["cassandra"]["nodes"]:
        assert sorted(n["views"]) == sorted(PODS) and set(n["states"].values()) == {"UN"}


# The grants only the Cassandra side exercises, and what `run --context` says without each.
# Adding netcheck's container to a pod is asked only of pods without one: its own test
# (test_without_ephemeral_containers_...) makes such a pod first.
OWN_TEST: set[Atom] = {("patch", "pods/ephemeralcontainers", "demo")}
CASSANDRA_NEEDS: dict[Atom, Without] = {
    ("list", "endpointslices", "*"): warning("run", "'list' on 'endpointslices' in namespace demo"),
    ("list", "networkpolicies", "*"): warning(
        "run", "'list' on 'networkpolicies' in namespace demo"
    ),
    ("get", "secrets", "netcheck"): error("run"),  # the agents' token
    # the CA of run --ca-secret: the chains go unverified, the run is incomplete
    ("get", "secrets", "demo"): Without(
        "run --ca-secret", 3, "netcheck: warning: context CP_EAST-ci: "
    ),
    # nodetool, and the probes from the pods themselves (a warning: the agents probe instead)
    ("get", "pods/exec", "demo"): Without(
        "run",
        3,
        "netcheck: nodetool status, nodetool describecluster, nodetool gossipinfo on "
        "netcheck-lab-dc1-r1-sts-0, netcheck-lab-dc1-r2-sts-0 (kubernetes exec): ",
        "'get and create' on 'pods/exec' in namespace demo",
        lines=2,
    ),
    ("get", "pods/log", "demo"): Without(
        "run", 3, "netcheck: the log on netcheck-lab-dc1-r1-sts-0"
    ),
}


def test_run_context_probes_from_the_database_pods_and_isolation_holds(kube_cassandra):
    """Under the guide's NetworkPolicy the mesh passes: its probes leave from each database
    pod itself (netcheck's ephemeral container, found again by the next run), the agents'
    negative probes of 7000/7001 are all blocked, and the audit and the probes agree that
    isolation holds, in both clusters."""
    state, args = kube_cassandra
    run = run_context(args)
    assert run.code == 0, (run.report["findings"], run.stderr)
    assert {e["name"]: e["probed_from"] for e in run.report["endpoints"]} == dict.fromkeys(
        PODS, "pod"
    )
    assert not [f for f in run.report["findings"] if f["severity"] != "info"], run.report[
        "findings"
    ]
    holds = {
        f["dst_cluster"]: f
        for f in run.report["findings"]
        if f["code"] == "INTERNODE_ISOLATION_HOLDS"
    }
    assert sorted(holds) == ["CP_EAST-ci", "DP_WEST-ci"]
    assert all("the negative probes agree: 8 probes from" in f["summary"] for f in holds.values())
    # every agent tried both internode ports of every database pod: nothing got through
    probes = run.report["isolation_probes"]
    assert len(probes) == 4 * 4 * 2 and not [p for p in probes if p["reached"] is not False]
    assert {p["outcome"] for p in probes} == {"timeout"}
    # the audit: own-cluster database pods by label, the other cluster's by address
    rows = run.report["network_policy"]
    assert len(rows) == 4 * 2 and all(not r["outsiders_admitted"] for r in rows), rows

    async def ephemeral() -> dict[str, list[str]]:
        async with admin(state, "CP_EAST") as client:
            pods = await client.list(KINDS["Pod"], "demo")
        return {
            p["metadata"]["name"]: [c["name"] for c in p["spec"].get("ephemeralContainers", [])]
            for p in pods
        }

    before = asyncio.run(ephemeral())
    assert run_context(args).code == 0
    # one netcheck container per pod, used again (an ephemeral container stays with its pod)
    assert asyncio.run(ephemeral()) == before
    assert all(names == ["netcheck-probe"] for names in before.values()), before


def test_with_raw_probes_the_pods_own_container_holds_net_raw_and_gathers_evidence(
    kube_cassandra,
):
    """Agents redeployed with --raw-probes: the next run adds a second netcheck container to
    each database pod with the agents' new security context (NET_RAW, python-netraw), and the
    raw evidence (latency, path MTU) comes from the database pods themselves; deployed back
    without, the first container is used again."""
    state, args = kube_cassandra
    assert netcheck("deploy", *args, "--raw-probes").returncode == 0
    try:
        run = run_context(args)
    finally:
        assert netcheck("deploy", *args).returncode == 0
    assert run.code == 0, (run.report["findings"], run.stderr)
    codes = {f["code"] for f in run.report["findings"]}
    assert "RAW_PROBES_SKIPPED" not in codes, codes
    kinds = {(e["src"], e["kind"]) for e in run.report["evidence"]}
    assert {src for src, kind in kinds if kind == "latency"} == set(PODS), kinds

    async def containers() -> dict[str, list[tuple[str, list[str]]]]:
        async with admin(state, "CP_EAST") as client:
            pods = await client.list(KINDS["Pod"], "demo")
        return {
            p["metadata"]["name"]: [
                (c["name"], (c.get("securityContext") or {}).get("capabilities", {}).get("add", []))
                for c in p["spec"].get("ephemeralContainers", [])
            ]
            for p in pods
        }

    for name, added in asyncio.run(containers()).items():
        assert dict(added) == {"netcheck-probe": [], "netcheck-probe-2": ["NET_RAW"]}, (
            name,
            added,
        )
    again = run_context(args)
    assert again.code == 0 and "RAW_PROBES_SKIPPED" in {f["code"] for f in again.report["findings"]}


def test_without_the_policy_the_outsiders_reaching_the_internode_ports_are_named(kube_cassandra):
    """The guide's policy deleted: each cluster's agents reach 7000 and 7001 of its database
    pods (an error naming them, with the policy to apply), and the other cluster's agents too
    (a warning: the fix is the network's); exit 1. The audit says why: open to everyone."""
    state, args = kube_cassandra
    for plane in state["kubernetes"]["planes"]:
        asyncio.run(_delete(state, plane["cluster"], guide_policy(state, plane["cluster"])))
    try:
        run = run_context(args)
    finally:
        isolate(state)
    assert run.code == 1, (run.report["findings"], run.stderr)
    found = {(f["code"], f["dst_cluster"]): f for f in run.report["findings"]}
    errors = sorted(k for k, f in found.items() if f["severity"] == "error")
    assert errors == [
        ("INTERNODE_PORTS_EXPOSED", "CP_EAST-ci"),
        ("INTERNODE_PORTS_EXPOSED", "DP_WEST-ci"),
    ], errors
    for ctx, pods in (("CP_EAST-ci", PODS[:2]), ("DP_WEST-ci", PODS[2:])):
        exposed = found[("INTERNODE_PORTS_EXPOSED", ctx)]
        assert exposed["ports"] == [7000, 7001] and exposed["affected_pairs"] == 8, exposed
        assert "(not database pods, namespace netcheck)" in exposed["summary"]
        assert f"{pods[0]}, {pods[1]}" in exposed["summary"]
        assert (
            "so may any other pod of namespace demo, any pod of another namespace"
            in (exposed["summary"])
        )
        assert exposed["hint"].startswith("apply in namespace demo")
        assert '"cassandra.datastax.com/cluster":"netcheck-lab"' in exposed["hint"]
        across = found[("INTERNODE_PORTS_EXPOSED_ACROSS_CLUSTERS", ctx)]
        assert across["severity"] == "warning" and "firewall" in across["hint"]
        assert ("INTERNODE_ISOLATION_MISSING", ctx) not in found  # said by the error
    reached = {(p["port"], p["outcome"]) for p in run.report["isolation_probes"] if p["reached"]}
    # 7001: refused by the pod itself, as the database pods are (no legacy SSL port)
    assert reached == {(7000, "open"), (7001, "refused")}
    assert all(r["admitted"] == ["everyone"] for r in run.report["network_policy"])
    # the mesh itself is healthy: only the isolation fails
    assert {p["outcome"] for p in run.report["probes"]} == {"open", "refused"}


def test_run_context_names_other_workloads_on_database_nodes(kube_cassandra):
    """The lab's nodes carry no taint (info). A pod that is not the database's on a database
    node is named with its node (a warning)."""
    state, args = kube_cassandra

    def findings() -> dict[tuple[str, str], dict[str, Any]]:
        run = run_context(args)
        assert run.code == 0, (run.report["findings"], run.stderr)
        return {(f["code"], f["dst_cluster"]): f for f in run.report["findings"]}

    found = findings()
    for ctx in ("CP_EAST-ci", "DP_WEST-ci"):
        assert found[("DATABASE_NODES_UNTAINTED", ctx)]["severity"] == "info"
    assert not [code for code, _ in found if code == "DATABASE_NODES_SHARED"]
    web = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "web-0", "namespace": "shop"},
        "spec": {
            "nodeName": "node-cp-dc1-r1-p0",  # PODS[0]'s
            "automountServiceAccountToken": False,
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001},
            "containers": [
                {
                    "name": "web",
                    "image": "ghcr.io/netcheck/agent:0.1.0",
                    "command": ["sleep", "600"],
                }
            ],
        },
    }
    shop = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}
    asyncio.run(_apply(state, "CP_EAST", [shop, web]))
    try:
        shared = findings()[("DATABASE_NODES_SHARED", "CP_EAST-ci")]
    finally:

        async def remove() -> None:
            async with admin(state, "CP_EAST") as client:
                await client.delete(KINDS["Namespace"], "shop")

        asyncio.run(remove())
    assert shared["severity"] == "warning", shared
    assert (
        "1 of 2 database nodes also run other workloads (node-cp-dc1-r1-p0: shop/web-0)"
        in (shared["summary"])
    )


def recreate(state: dict[str, Any], cluster: str, pod: str) -> None:
    """Delete a database pod as an admin; its StatefulSet makes a new one (without netcheck's
    ephemeral container); return once it is Ready and every node answers CQL again."""

    async def go() -> None:
        async with admin(state, cluster) as client:
            old = await client.list(KINDS["Pod"], "demo", field_selector=f"metadata.name={pod}")
            await client.delete(KINDS["Pod"], pod, "demo")
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                now = await client.list(KINDS["Pod"], "demo", field_selector=f"metadata.name={pod}")
                if (
                    now
                    and now[0]["metadata"]["uid"] != old[0]["metadata"]["uid"]
                    and any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (now[0].get("status") or {}).get("conditions") or []
                    )
                ):
                    return
                await asyncio.sleep(1)
            raise AssertionError(f"{pod} not Ready again within 300 s")

    asyncio.run(go())
    build.wait_cql(state, 300)


def _without(state: dict[str, Any], args: tuple[str, ...], taken: list[tuple[str, str]]) -> Run:
    """run --context with the grants taken out of netcheck-cassandra-exec on CP_EAST (put
    back after), once the CI user is refused the first of them."""
    from tests.test_kube_real import ci_user_may, without_grant

    kc = state["kubernetes"]["kubeconfig"]
    docs = [d for d in yaml.safe_load_all(RBAC) if d]
    role = next(d for d in docs if d["metadata"]["name"] == "netcheck-cassandra-exec")
    less = role
    for verb, resource in taken:
        less = without_grant(less, verb, resource)
    asyncio.run(_apply(state, "CP_EAST", [less]))
    try:
        deadline = time.monotonic() + 10
        while ci_user_may(kc, *taken[0], "demo", ""):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        return run_context(args)
    finally:
        asyncio.run(_apply(state, "CP_EAST", [role]))
        while not ci_user_may(kc, *taken[0], "demo", ""):
            time.sleep(0.05)


@pytest.mark.timeout(480)  # one pod made anew (Cassandra's start) and five runs
def test_without_ephemeral_containers_the_pods_shell_probes_and_without_exec_the_agents(
    kube_cassandra,
):
    """A database pod without netcheck's container, and a user who may not add one but may
    exec (as nodetool needs): the pod's own cassandra container probes with bash, so its
    probes keep the pod's identity and the guide's policy admits them: every probe measured,
    7000 and the liveness GET open, 7001 refused by design, the run passes. One warning line
    with the grant; an info finding names the pod and what its shell does not do. Then
    without exec too: the agents probe, and the policy is not blamed (below)."""
    state, args = kube_cassandra
    pod = PODS[1]
    assert run_context(args).code == 0  # every other pod has netcheck's container
    recreate(state, "CP_EAST", pod)
    run = _without(state, args, [("patch", "pods/ephemeralcontainers")])
    assert run.code == 0, (run.report["findings"], run.stderr)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(
        "netcheck: warning: context CP_EAST-ci: RBAC forbids 'patch' on "
        "'pods/ephemeralcontainers' in namespace demo"
    ), lines
    assert lines[0].endswith("probed from their cassandra container's shell (connects and "
                             "the liveness GET only)"), lines[0]  # fmt: skip
    from_ = {e["name"]: e["probed_from"] for e in run.report["endpoints"]}
    assert from_ == {p: "pod_shell" if p == pod else "pod" for p in PODS}
    (shell,) = [
        f for f in run.report["findings"] if f["code"] == "DATABASE_PORTS_PROBED_FROM_SHELL"
    ]
    assert shell["severity"] == "info" and pod in shell["summary"], shell
    assert not [f for f in run.report["findings"] if f["severity"] != "info"]
    mine = {(p["dst"], p["port"]): p for p in run.report["probes"] if p["src"] == pod}
    assert len(mine) == 3 * 3
    for (_, port), p in mine.items():
        want = "refused" if port == 7001 else "open"  # no legacy SSL port on these nodes
        assert p["outcome"] == want, p
        if port != 7001:
            assert "bash /dev/tcp" in p["detail"], p
    # the TLS looks leave from pods that hold netcheck's container: every node looked at
    assert sorted(t["node"] for t in run.report["tls"]) == sorted(PODS)

    # Neither netcheck's container nor the cassandra container's shell (no exec either;
    # the pod still has no container of netcheck's: the run above could not add one): the
    # pod is probed from its agent (named in a warning finding), and its probes of 7000/7001
    # that the guide's policy refuses to agents are not_measured, not failures: the run is
    # incomplete, not failed. With the grants back, the next run adds the container and
    # passes.
    run = _without(state, args, [("patch", "pods/ephemeralcontainers"), ("get", "pods/exec")])
    assert run.code == 3, (run.report["findings"], run.stderr)
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    # the new pod could not get netcheck's container; the other CP_EAST pod has one, but
    # no exec into it: one line per reason, each saying the shell could not stand in either
    probes = sorted(ln for ln in lines if "probed from the agents" in ln)
    assert len(probes) == 2, lines
    assert [ln.split(";")[0] for ln in probes] == [
        "netcheck: warning: context CP_EAST-ci: RBAC forbids 'get and create' on 'pods/exec' "
        "in namespace demo",
        "netcheck: warning: context CP_EAST-ci: RBAC forbids 'patch' on "
        "'pods/ephemeralcontainers' in namespace demo",
    ], probes
    for ln in probes:
        assert "its cassandra container's shell: " in ln and "'pods/exec'" in ln, ln
        assert "probes/rbac/netcheck-user.yaml" in ln
    cp_east = {p for p in PODS if "dc1" in p}
    assert pod in cp_east
    from_ = {e["name"]: e["probed_from"] for e in run.report["endpoints"]}
    assert from_ == {p: "agent" if p in cp_east else "pod" for p in PODS}
    fallbacks = [
        f for f in run.report["findings"] if f["code"] == "DATABASE_PORTS_PROBED_FROM_AGENTS"
    ]
    assert {f["severity"] for f in fallbacks} == {"warning"}, fallbacks
    assert sorted(f["src_scope"] for f in fallbacks) == sorted(cp_east), fallbacks
    assert not [f for f in run.report["findings"] if f["severity"] == "error"]
    mine = [p for p in run.report["probes"] if p["src"] in cp_east]
    assert len(mine) == 2 * 3 * 3
    for p in mine:
        if p["port"] == 8080:
            assert p["outcome"] == "open", p
        else:  # the policies of both clusters refuse the agent, as they should
            assert p["outcome"] == "not_measured" and "by design" in p["detail"], p
    assert not [
        p
        for p in run.report["probes"]
        if p["src"] not in cp_east and p["outcome"] == "not_measured"
    ]
    # the grants back: the pod gets its container, and the run passes
    again = run_context(args)
    assert again.code == 0, (again.report["findings"], again.stderr)
    assert {e["probed_from"] for e in again.report["endpoints"]} == {"pod"}


def test_the_ca_read_from_the_clusters_secret_verifies_every_chain_and_never_shows(
    kube_cassandra,
):
    """`--ca-secret`: the CA of the cert-manager-shaped Secret the lab leaves in `demo`
    (get on that one Secret, by name) verifies every node's chain; the Secret's private key
    appears in no output. Another name is refused by RBAC in each context, said, and leaves the
    chains unverified and the run incomplete; the Secret in one cluster is enough."""
    from netcheck.lab.cassandra import ca_file, database_hosts

    state, args = kube_cassandra
    ca = ca_file(build.state_dir())
    # the CA as the cluster keeps it: cert-manager's Secret of a node's Certificate, read
    # with `get` on that one Secret; its tls.key is a real private key that never comes out
    secret = f"demo/{INTERNODE_TLS_SECRET}"
    run = run_context(args, "--ca-secret", secret, "--client-ca-file", ca)
    assert run.code == 0, (run.report["findings"], run.stderr)
    assert not run.stderr.strip(), run.stderr
    plane = next(p for p in state["kubernetes"]["planes"] if p["cluster"] == "CP_EAST")
    status, body = get(
        plane, f"/api/v1/namespaces/demo/secrets/{INTERNODE_TLS_SECRET}", plane["admin_token"]
    )
    assert status == 200, body
    key = base64.b64decode(json.loads(body)["data"]["tls.key"]).decode()
    assert "PRIVATE KEY" in key
    lines = [ln for ln in key.splitlines() if "PRIVATE KEY" not in ln]
    shown = json.dumps(run.report) + run.stderr
    assert "PRIVATE KEY" not in shown and not any(ln in shown for ln in lines)
    assert {t["chain_verified"] for t in run.report["tls"]} == {True}
    # another name than the one granted: refused in each context, said, the chains
    # unverified and the run incomplete (not passed)
    other = run_context(args, "--ca-secret", "demo/no-such-ca")
    assert other.code == 3, (other.report["problems"], other.stderr)
    assert [ln.split(";")[0] for ln in other.stderr.strip().splitlines()] == [
        f"netcheck: warning: context {c}: RBAC forbids 'get' on 'secrets' in namespace demo"
        for c in ("CP_EAST-ci", "DP_WEST-ci")
    ], other.stderr
    assert "the internode CA not read from Secret demo/no-such-ca in any context" in str(
        other.report["problems"]
    )
    assert {t["chain_verified"] for t in other.report["tls"]} == {None}

    # the Secret in one cluster only: its CA verifies every node's chain, nothing is said;
    # in none (the grant by name still there, so the server says 404, not 403): one line
    # naming every context, and no CA (the workflow's read, as the CI user)
    async def delete_secret(cluster: str) -> None:
        async with admin(state, cluster) as client:
            await client.delete(KINDS["Secret"], INTERNODE_TLS_SECRET, "demo")

    async def read_as_ci_user() -> CaRead:
        errors: dict[str, str] = {}
        async with clients_for(args[1], ["CP_EAST-ci", "DP_WEST-ci"], errors) as clients:
            assert not errors, errors
            return await ca_from_secrets(clients, secret_ref(secret, "--ca-secret"), "the CA")

    asyncio.run(delete_secret("DP_WEST"))
    try:
        one = run_context(args, "--ca-secret", secret)
        asyncio.run(delete_secret("CP_EAST"))
        none = asyncio.run(read_as_ci_user())
    finally:
        for cluster in ("CP_EAST", "DP_WEST"):  # as the lab made it: its first node's
            first = next(h for h in database_hosts(state) if h["cluster"] == cluster)
            tls_secret = operator.internode_tls_secret(build.state_dir(), first)
            asyncio.run(_apply(state, cluster, [tls_secret]))
    assert one.code == 0 and not one.stderr.strip(), (one.report["findings"], one.stderr)
    assert {t["chain_verified"] for t in one.report["tls"]} == {True}
    assert none == CaRead(
        lines=(f"warning: Secret {secret} not found in context(s) CP_EAST-ci, DP_WEST-ci",),
        problem=f"the CA not read from Secret {secret} in any context: chains not verified",
    )


TLS_POD, TLS_HOST = PODS[3], "dp-dc2-r2-p0"  # the node each TLS fault is put on


def _tls_judged(
    args: tuple[str, ...], expect: set[str]
) -> tuple[int, list[tuple[str, str]], list[str]]:
    """A run with the lab's CA: its exit code, the findings (not info) other than those
    expected, and where the expected ones are."""
    from netcheck.lab.cassandra import ca_file

    ca = ca_file(build.state_dir())
    run = run_context(args, "--ca-file", ca, "--client-ca-file", ca)
    wrong = [
        (f["code"], f["summary"])
        for f in run.report["findings"]
        if f["severity"] != "info" and f["code"] not in expect
    ]
    mine = sorted(f["dst_scope"] for f in run.report["findings"] if f["code"] in expect)
    return run.code, wrong, mine


def test_tls_of_every_node_is_verified_and_each_certificate_fault_is_named(kube_cassandra):
    """With the lab's CA given: every node's 7000 speaks TLS with a chain that verifies,
    requires a client certificate and refuses plaintext; 9142, which the lab's nodes do not
    serve, gives no row. Each certificate fault on one node gives its finding on that node,
    and nothing else is wrong: the certificate is swapped in while the node runs (`nodetool
    reloadssl`: a node restarted with an expired certificate or one of another CA would not
    rejoin its peers)."""
    from netcheck.lab.cassandra import ca_file, swap_certificate

    state, args = kube_cassandra
    ca = ca_file(build.state_dir())
    run = run_context(args, "--ca-file", ca, "--client-ca-file", ca)
    assert run.code == 0, (run.report["findings"], run.stderr)
    rows = {(t["node"], t["port"]): t for t in run.report["tls"]}
    assert sorted(rows) == [(p, 7000) for p in sorted(PODS)]
    for t in rows.values():
        assert (t["handshake"], t["chain_verified"]) == (True, True), t
        assert (t["client_auth_required"], t["plaintext_accepted"]) == (True, False), t
        assert t["issuer"] == "CN=netcheck lab internode CA" and 360 <= t["days_left"] <= 365
        assert t["protocol"] in ("TLSv1.2", "TLSv1.3") and t["sans"][0].startswith("DNS:")
    verified = [f for f in run.report["findings"] if f["code"] == "INTERNODE_TLS_VERIFIED"]
    assert len(verified) == 2 and all(
        "chain verified against the CA, mutual TLS required, plaintext refused" in f["summary"]
        for f in verified
    ), verified
    assert not [f for f in run.report["findings"] if f["code"].startswith("CLIENT_TLS")]

    def reload() -> None:
        done = exec_in(state, ["nodetool", "reloadssl"], pod=TLS_POD, context="DP_WEST-ci")
        assert done.ok, done

    swapped = {
        "expired": {"INTERNODE_TLS_CERT_EXPIRED"},
        "other-ca": {"INTERNODE_TLS_UNTRUSTED"},
        "expiring": {"INTERNODE_TLS_CERT_EXPIRING"},
    }
    seen = {}
    try:
        for fault, codes in swapped.items():
            swap_certificate(state, build.state_dir(), TLS_HOST, fault)
            reload()
            seen[fault] = _tls_judged(args, codes)
    finally:
        swap_certificate(state, build.state_dir(), TLS_HOST, None)
        reload()
    port_7000 = [f"{TLS_POD}:7000"]
    assert seen == {
        "expired": (1, [], port_7000),
        "other-ca": (1, [], port_7000),
        "expiring": (0, [], port_7000),
    }, seen


def test_each_tls_configuration_fault_is_named_on_its_node(kube_cassandra):
    """A node made anew with internode encryption optional (plaintext accepted) or without
    client authentication: its finding on that node, and nothing else is wrong."""
    from netcheck.lab.cassandra import set_tls_fault

    state, args = kube_cassandra
    restarted = {
        "optional": {"INTERNODE_TLS_PLAINTEXT_ACCEPTED"},
        "no-client-auth": {"INTERNODE_TLS_CLIENT_AUTH_OFF"},
    }
    seen = {}
    try:
        for fault, codes in restarted.items():
            set_tls_fault(state, build.state_dir(), TLS_HOST, fault)
            recreate(state, "DP_WEST", TLS_POD)
            seen[fault] = _tls_judged(args, codes)
    finally:
        set_tls_fault(state, build.state_dir(), TLS_HOST, None)
        recreate(state, "DP_WEST", TLS_POD)
    port_7000 = [f"{TLS_POD}:7000"]
    assert seen == {"optional": (1, [], port_7000), "no-client-auth": (0, [], port_7000)}, seen


def test_each_cassandra_grant_taken_away_gives_its_one_line(kube_cassandra):
    """As test_kube_real's test of every grant, for the reads only `run --context` with
    Cassandra makes: each taken out of a copy of its ClusterRole on CP_EAST, one line that
    names it (a warning where the read is optional); with test_kube_real's table, every
    grant but the one for newer servers."""
    state, _ = kube_cassandra
    kc = state["kubernetes"]["kubeconfig"]
    assert set(CASSANDRA_NEEDS) | OWN_TEST == ONLY_WITH_CASSANDRA
    assert set(NEEDED_BY) | ONLY_WITH_CASSANDRA | FOR_NEWER_SERVERS == granted()
    run = ("run", "--kubeconfig", kc, "--context", "CP_EAST-ci", "-o", "json", "--json-probes",
           "all", "--timeout", "1")  # fmt: skip
    commands = {
        "run": (*run, "--no-progress"),
        "run --ca-secret": (*run, "--no-progress", "--ca-secret", f"demo/{INTERNODE_TLS_SECRET}"),
    }
    failures = grant_failures(kc, CASSANDRA_NEEDS, commands)
    assert not failures, "\n".join(failures)


def test_run_context_names_pods_a_rejected_rack_a_denied_pod_proxy_and_missing_agents(
    kube_cassandra,
):
    """Last in this module: the REJECT below disturbs Cassandra's own connections."""
    state, args = kube_cassandra
    kc = state["kubernetes"]["kubeconfig"]
    base = run_context(args)
    assert base.code == 0, base.stderr
    ep = next(e for e in base.report["endpoints"] if e["name"] == "netcheck-lab-dc2-r2-sts-0")
    assert (ep["cluster"], ep["namespace"], ep["node"]) == (
        "DP_WEST-ci",
        "demo",
        "node-dp-dc2-r2-p0",
    )
    assert len(base.report["probes"]) == 4 * 3 * 3

    # DP_WEST's pod proxy denied (its rule removed from netcheck-deployer on the real server):
    # DP_WEST's agents are named, the rest is measured
    docs = [d for d in yaml.safe_load_all(RBAC) if d]
    deployer = next(d for d in docs if d["metadata"]["name"] == "netcheck-deployer")
    without = {
        **deployer,
        "rules": [r for r in deployer["rules"] if "pods/proxy" not in r["resources"]],
    }
    asyncio.run(_apply(state, "DP_WEST", [without]))
    try:
        run = run_context(args)
    finally:
        asyncio.run(_apply(state, "DP_WEST", [deployer]))
    assert run.code == 3, (run.stderr, run.report["findings"])
    # the mesh leaves from the database pods through exec: all of it measured, 7001 refused
    # by design told apart
    probes = run.report["probes"]
    assert len(probes) == 4 * 3 * 3
    assert all(p["outcome"] == ("refused" if p["port"] == 7001 else "open") for p in probes), probes
    codes = {f["code"] for f in run.report["findings"]}
    assert "LEGACY_SSL_PORT_UNUSED" in codes and "PORT_REFUSED" not in codes
    assert not [f for f in run.report["findings"] if f["severity"] == "error"]
    # what needs DP_WEST's agents is named: their CQL reads and their negative probes
    assert "pods/proxy" in run.stderr, run.stderr
    cql = {x["node"]: x["ok"] for x in run.report["cassandra"]["cql"]}
    assert cql == {p: "dc1" in p for p in PODS}, cql
    (unmade,) = [ln for ln in run.report["problems"] if ln.startswith("negative probes")]
    assert unmade.startswith("negative probes not made: 2 agents (kube://DP_WEST-ci/netcheck/")
    assert "RBAC forbids" in unmade and "pods/proxy" in unmade and unmade in run.stderr
    assert {p["context"] for p in run.report["isolation_probes"] if p["reached"] is None} == {
        "DP_WEST-ci"
    }

    # a NetworkPolicy-like REJECT on 7000 into one DP_WEST rack
    faults.add_fault("reject", src="CP_EAST", dst="DP_WEST/r1", port=7000, both=False)
    try:
        run = run_context(args)
    finally:
        faults.clear_faults()
    assert run.code == 1, run.stderr
    # (7001 is refused by design: these nodes run without the legacy SSL port)
    bad = {
        (p["src"], p["dst"], p["port"]): p["outcome"]
        for p in run.report["probes"]
        if p["outcome"] != "open" and p["port"] != 7001
    }
    # the agents hold no NET_RAW here: the kernel's EHOSTUNREACH for the ICMP answer
    assert set(bad.values()) == {"unreachable"} and len(bad) == 2, bad
    assert {(d, port) for _, d, port in bad} == {("netcheck-lab-dc2-r1-sts-0", 7000)}
    errors = [f for f in run.report["findings"] if f["severity"] == "error"]
    assert any(f["ports"] == [7000] for f in errors), errors

    # no agents on DP_WEST: said with the command that fixes it
    assert netcheck("undeploy", "--kubeconfig", kc, "--context", "DP_WEST-ci").returncode == 0
    proc = netcheck(
        "run", "--kubeconfig", kc, "--context", "DP_WEST-ci", "-o", "json", "--json-probes", "all"
    )
    assert proc.returncode == 3
    assert (
        "run `netcheck deploy --context DP_WEST-ci` first" in json.loads(proc.stdout)["problems"][0]
    )


def test_the_ci_user_asks_for_what_netcheck_user_yaml_grants_and_no_more(kube_cassandra):
    """Last in this module, from the API servers' audit logs (see test_kube_real): every
    request granted, nothing refused but the rules the tests removed, Secrets listed as
    metadata only, and every grant used but those only test_kube_real's commands need."""
    state, _ = kube_cassandra
    used, refused = audited(state["kubernetes"]["planes"])
    # the tests took away exec and logs (test_run_context_reads_...), the pod proxy and each
    # grant only the Cassandra side uses
    assert refused == {
        ("get", "pods/exec", "demo"),
        ("get", "pods/log", "demo"),
        ("get", "pods/proxy", "netcheck"),
        ("patch", "pods/ephemeralcontainers", "demo"),
        ("list", "endpointslices", "demo"),
        ("list", "networkpolicies", "demo"),
        ("get", "secrets", "netcheck"),
        ("get", "secrets", "demo"),
    }
    assert unused_grants(used) == ONLY_WITHOUT_CASSANDRA | FOR_NEWER_SERVERS
