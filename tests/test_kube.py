"""What stays on a fake API server (tests/kubefake.py), each test saying why, and the
Kubernetes code that needs no server (manifests, CIDRs, topologies).

Everything else runs against the lab's real API servers: test_kube_real.py and
test_kube_cassandra.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from netcheck.deploy.manifests import (
    COMPONENTS,
    CONFIG_ANNOTATION,
    DeployOptions,
    default_root,
    load_manifests,
)
from netcheck.diagnosis.cidrs import cidr_findings
from netcheck.discovery.kube import AgentPod, ContextDiscovery, DatabasePod, NodeInfo
from netcheck.discovery.kube_topology import run_topology
from tests.kubefake import FakeClusters, rbac_from_manifest
from tests.kubeworld import mission_control_world, spec_hosts

ROOT = Path(__file__).resolve().parents[1]
RBAC = (ROOT / "probes" / "rbac" / "netcheck-user.yaml").read_text()


@pytest.fixture
def fakes(tmp_path):
    with FakeClusters(["CP_EAST", "DP_WEST"]) as f:
        mission_control_world(f, spec_hosts())
        for api in f.apis.values():
            api.rules = rbac_from_manifest(RBAC, "netcheck-ci")
        path = tmp_path / "kubeconfig"
        path.write_text(f.kubeconfig())
        f.path = str(path)  # type: ignore[attr-defined]
        yield f


def test_manifests_equal_kubectl_kustomize(tmp_path):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is part of this machine's image"
    work = tmp_path / "kubernetes"
    shutil.copytree(default_root(), work)
    (work / "base" / "token").write_text("0123456789abcdef0123")
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": ["../kubernetes/base"],
                "components": [
                    "../kubernetes/components/host-network",
                    "../kubernetes/components/vector-nodeport",
                    "../kubernetes/components/raw-probes",
                ],
            }
        )
    )
    built = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, check=True
    ).stdout
    theirs = [d for d in yaml.safe_load_all(built) if d]
    ours = load_manifests(
        work,
        DeployOptions(token="0123456789abcdef0123", components=COMPONENTS),
    )

    def key(d):
        return (d["kind"], d["metadata"]["name"])

    # deploy's own addition: a hash of the token and allow list on the pod template, so that a
    # deploy that changes them replaces the running agents (they read both once, at start)
    for d in ours:
        if d["kind"] == "DaemonSet":
            annotations = d["spec"]["template"]["metadata"].pop("annotations")
            assert list(annotations) == [CONFIG_ANNOTATION]
            assert len(annotations[CONFIG_ANNOTATION]) == 16
    assert sorted(ours, key=key) == sorted(theirs, key=key)
    # every manifest file in probes/kubernetes is in what deploy applies
    files = {p.name for p in default_root().rglob("*.yaml") if p.name != "kustomization.yaml"}
    assert files == {
        "namespace.yaml",
        "serviceaccount.yaml",
        "configmap.yaml",
        "daemonset.yaml",
        "daemonset-hostnet.yaml",
        "service.yaml",
        "daemonset-netraw.yaml",
    }
    # raw probes add exactly one capability, and only to the pod-network agent
    agent = next(d for d in ours if key(d) == ("DaemonSet", "netcheck-agent"))
    sc = agent["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW"]}
    assert sc["readOnlyRootFilesystem"] is True
    assert agent["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
    plain = load_manifests(work, DeployOptions(token="0123456789abcdef0123"))
    plain_agent = next(d for d in plain if key(d) == ("DaemonSet", "netcheck-agent"))
    plain_sc = plain_agent["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert plain_sc["capabilities"] == {"drop": ["ALL"]}
    assert plain_sc["allowPrivilegeEscalation"] is False


def discovery(ctx: str, cidrs: tuple[str, ...], **kw) -> ContextDiscovery:
    base = dict(
        context=ctx,
        server="https://127.0.0.1:6443",
        api_host="127.0.0.1",
        api_port=6443,
        version="v1.31.4",
        nodes=tuple(
            NodeInfo(
                name=f"{ctx}-n{i}", internal_ip="", zone="z", region="r", pod_cidrs=(c,), taints=()
            )
            for i, c in enumerate(cidrs)
        ),
        database_pods=(),
        services=(),
        network_policies=(),
        client_configs=(),
        secrets=(),
        agents=(),
        service_cidrs=(),
        warnings=(),
    )
    return ContextDiscovery(**(base | kw))


def test_overlapping_pod_cidrs_are_an_error():
    a = discovery("CP_EAST", ("10.1.0.0/24", "10.1.1.0/24"))
    b = discovery("DP_WEST", ("10.2.0.0/24", "10.1.1.128/25"), service_cidrs=("10.1.0.0/16",))
    codes = [(f.code, f.severity.value, f.src_scope, f.dst_scope) for f in cidr_findings([a, b])]
    assert ("POD_CIDR_OVERLAP", "error", "10.1.1.0/24", "10.1.1.128/25") in codes
    assert ("SERVICE_CIDR_OVERLAP", "error", "10.1.0.0/24", "10.1.0.0/16") in codes
    clean = discovery("DP_WEST", ("10.2.0.0/24",))
    assert cidr_findings([a, clean]) == ()


def test_run_topology_probes_from_the_agent_on_the_node_or_rack():
    def pod(name: str, node: str, rack: str) -> DatabasePod:
        return DatabasePod(
            name=name,
            namespace="db",
            cluster="c",
            datacenter="dc1",
            rack=rack,
            seed=False,
            node_state="Started",
            pod_ip=f"198.18.0.{len(name)}",
            node=node,
            ready=True,
            ports=(7000, 8080),
        )

    agent = AgentPod(
        name="netcheck-agent-x",
        node="n1",
        pod_ip="198.18.0.99",
        ready=True,
        phase="Running",
        reason="",
    )
    d = discovery(
        "CP_EAST",
        (),
        database_pods=(pod("a", "n1", "r1"), pod("bb", "n2", "r1"), pod("ccc", "n3", "r2")),
        agents=(agent,),
    )
    kt = run_topology([d])
    agents = {ep.name: ep.agent for ep in kt.topology.endpoints}
    assert agents == {
        "a": "kube://CP_EAST/netcheck/netcheck-agent-x",
        "bb": "kube://CP_EAST/netcheck/netcheck-agent-x",  # same rack
        "ccc": None,
    }
    (problem,) = kt.problems
    assert "no ready netcheck agent on node n3 or in rack r2" in problem
    assert [p.port for p in kt.topology.endpoint("a").ports] == [7000, 8080]  # as declared


# ---------------------------------------------------------------- exec on 1.35


STATUS = (ROOT / "tests/data/nodetool/c50-lab-cp-dc1-r1-p0-status-healthy.txt").read_text()
REFUSED = (
    "nodetool: Failed to connect to '127.0.0.1:7199' - ConnectException: 'Connection refused'."
)


def container_runtime(api, calls: list) -> None:
    """The kubelet's side: a canned cassandra container."""

    async def run(pod, container, argv):
        calls.append((pod["metadata"]["name"], container, argv))
        if argv == ["nodetool", "status"]:
            return 0, STATUS.encode(), b""
        if argv == ["nodetool", "gossipinfo"]:  # bigger than one websocket frame of the kubelet
            return 0, ("/198.18.1.1\n  STATUS:18:NORMAL,-1\n" * 5000).encode(), b""
        if argv[:1] == ["nodetool"]:
            return 1, b"", REFUSED.encode()
        return None, b"", b'OCI runtime exec failed: exec: "sh": executable file not found'

    api.exec_handler = run


def exec_in(fakes, context: str, argv: list[str], *, pod="demo-dc1-r1-sts-0", **kw):
    import asyncio

    from netcheck.cassandra.exec import ExecTarget
    from netcheck.cassandra.kube_exec import KubeExec
    from netcheck.kube.client import KubeClient
    from netcheck.kube.config import connection

    target = ExecTarget(endpoint=pod, address="", namespace="demo", context=context, pod=pod, **kw)

    async def go():
        async with KubeClient(connection(fakes.path, context)) as client:
            return await KubeExec({context: client}).run(target, argv, 10)

    return asyncio.run(go())


def test_exec_needs_create_too_from_kubernetes_1_35(fakes):
    """A fake on purpose: Kubernetes 1.35 also checks `create` on the websocket GET of
    pods/exec, and the lab runs 1.34.4. (Each grant taken away on a real server, pods/exec and
    pods/log among them: test_kube_cassandra.)"""
    container_runtime(fakes.apis["CP_EAST"], [])
    api = fakes.apis["CP_EAST"]
    # the shipped RBAC without its per-namespace RoleBinding for Cassandra
    docs = [d for d in yaml.safe_load_all(RBAC) if d]
    without = [d for d in docs if d["metadata"]["name"] != "netcheck-cassandra-exec"]
    roles = [d for d in docs if d["kind"] == "ClusterRole"]
    api.rules = rbac_from_manifest(yaml.safe_dump_all(without + roles), "netcheck-ci")
    denied = exec_in(fakes, "CP_EAST", ["nodetool", "status"])
    assert "RBAC forbids 'get and create' on 'pods/exec' in namespace demo" in denied.error

    # 1.35+ also checks `create` on the websocket GET: a get-only role stops working there
    get_only = [
        d | {"rules": [{"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}]}
        if d["metadata"]["name"] == "netcheck-cassandra-exec" and d["kind"] == "ClusterRole"
        else d
        for d in docs
    ]
    api.rules = rbac_from_manifest(yaml.safe_dump_all(get_only), "netcheck-ci")
    assert exec_in(fakes, "CP_EAST", ["nodetool", "status"]).ok
    api.version = "v1.35.0"
    assert "pods/exec" in exec_in(fakes, "CP_EAST", ["nodetool", "status"]).error
    api.rules = rbac_from_manifest(RBAC, "netcheck-ci")  # the shipped one grants both
    assert exec_in(fakes, "CP_EAST", ["nodetool", "status"]).ok


def test_a_new_token_or_allow_list_rolls_the_agents():
    """The agents read their token and allow list once, at start: a deploy that changes either
    changes the pod template, so the DaemonSet replaces the running agents."""

    def stamp(token: str, allow: tuple[str, ...]) -> str:
        objects = load_manifests(default_root(), DeployOptions(token=token, allow=allow))
        (ds,) = [o for o in objects if o["kind"] == "DaemonSet"]
        return str(ds["spec"]["template"]["metadata"]["annotations"][CONFIG_ANNOTATION])

    first = stamp("a" * 32, ("198.18.0.0/20",))
    assert stamp("a" * 32, ("198.18.0.0/20",)) == first
    assert stamp("b" * 32, ("198.18.0.0/20",)) != first
    assert stamp("a" * 32, ("198.18.0.0/20", "198.18.32.0/20")) != first
    assert "a" * 32 not in first  # a hash, not the token


def test_an_agent_pod_being_deleted_is_not_used_though_it_still_says_ready():
    """Right after a redeploy the old agent pods linger for their grace period, their status
    still Ready: discovery must not pick one of them as a node's agent."""
    from netcheck.discovery.kube import parse_agent_pod

    def agent(name: str, deleting: bool) -> dict[str, object]:
        meta: dict[str, object] = {"name": name, "namespace": "netcheck"}
        if deleting:
            meta["deletionTimestamp"] = "2026-12-01T07:00:00Z"
        return {
            "metadata": meta,
            "spec": {"nodeName": "n1", "containers": [{"name": "agent", "image": "a:1"}]},
            "status": {
                "podIP": "198.18.0.9",
                "phase": "Running",
                "conditions": [{"type": "Ready", "status": "True"}],
            },
        }

    old, new = parse_agent_pod(agent("old", True)), parse_agent_pod(agent("new", False))
    assert (old.ready, old.reason) == (False, "Terminating")
    assert (new.ready, new.image) == (True, "a:1")
