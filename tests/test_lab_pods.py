"""The lab kubelet's pod set-up that needs no lab: program mapping, $(VAR) expansion, mounts."""

from __future__ import annotations

import json
import sys

import pytest

from netcheck.lab import pods
from netcheck.lab.image import Image
from netcheck.lab.pods import Container, NodePods, Unsupported, expand, image_argv, program

HOST = {"name": "cp-dc1-r1-p0", "role": "database", "address": "198.18.1.10"}


def test_the_agent_image_runs_as_the_labs_python_and_other_images_fail_their_pod(tmp_path):
    lab = str(tmp_path)
    argv, netraw = program(
        {"image": "ghcr.io/netcheck/agent:0.1.0", "args": ["--name=x"]}, lab, HOST
    )
    assert argv == [sys.executable, "-m", "netcheck", "agent", "--name=x"] and not netraw
    argv, netraw = program(
        {
            "image": "registry.local/netcheck-agent:dev",
            "command": ["/usr/local/bin/python-netraw", "-m", "netcheck", "agent"],
        },
        lab,
        HOST,
    )
    assert argv[0] == sys.executable and netraw
    with pytest.raises(Unsupported, match='Failed to pull image "cr') as pulled:
        program({"image": "cr.dtsx.io/datastax/cassandra:5.0.2"}, lab, HOST)
    assert pulled.value.reason == "ErrImagePull"  # the pod's waiting reason, as a kubelet's
    # the lab's Cassandra image before the lab installed its runtime: the pod says so
    with pytest.raises(Unsupported, match="Cassandra runtime is not installed"):
        program({"image": "netcheck-lab/cassandra:5.0.8"}, lab, HOST)


def test_exec_runs_only_the_commands_an_image_has(tmp_path):
    lab = str(tmp_path)
    argv = pods.exec_program("ghcr.io/netcheck/agent:0.1.0", ["netcheck", "--version"], lab)
    assert argv == [sys.executable, "-m", "netcheck", "--version"]
    for image, command in (
        ("ghcr.io/netcheck/agent:0.1.0", ["sh", "-c", "id"]),
        ("ghcr.io/netcheck/agent:0.1.0", []),
        ("netcheck-lab/cassandra:5.0.8", ["cat", "/etc/shadow"]),
    ):
        with pytest.raises(Unsupported, match="executable file not found"):
            pods.exec_program(image, command, lab)
    (tmp_path / "lib").mkdir()
    (tmp_path / "state.json").write_text(json.dumps({"cassandra": {"lib": str(tmp_path / "lib")}}))
    argv = pods.exec_program("netcheck-lab/cassandra:5.0.8", ["nodetool", "status"], lab)
    assert "org.apache.cassandra.tools.NodeTool" in argv and argv[-1] == "status"


def test_command_and_args_replace_the_images_entrypoint_and_cmd_as_kubernetes_says():
    img = Image(
        name="x",
        id="sha",
        entrypoint=("netcheck", "agent"),
        cmd=("--listen=:9925",),
        env=(),
        user="10001:10002",
        workdir="",
        labels=(),
    )
    assert image_argv({}, img) == ["netcheck", "agent", "--listen=:9925"]
    assert image_argv({"args": ["--x"]}, img) == ["netcheck", "agent", "--x"]
    assert image_argv({"command": ["python3"]}, img) == ["python3"]  # the image's cmd dropped
    assert image_argv({"command": ["sh"], "args": ["-c", "id"]}, img) == ["sh", "-c", "id"]
    assert pods._user({}, img.user) == (10001, 10002)
    assert pods._user({"runAsUser": 7}, img.user) == (7, 10002)
    assert pods._user({}, "") == (0, 0)
    with pytest.raises(Unsupported, match="not numeric: set runAsUser"):
        pods._user({}, "netcheck")


def test_args_expand_known_variables_only():
    env = {"NODE_NAME": "node-a"}
    assert expand("--name=$(NODE_NAME)", env) == "--name=node-a"
    # as the kubelet does: an unknown variable stays, $$ escapes a literal $(...)
    assert expand("$(UNKNOWN) $$(NODE_NAME)", env) == "$(UNKNOWN) $(NODE_NAME)"


def test_a_volume_over_the_labs_own_python_puts_it_back(tmp_path, monkeypatch):
    """A checkout under /tmp runs the lab; the agent mounts an emptyDir on /tmp: the pod must
    still find the lab's Python at its own path (a clean CI clone found this)."""
    monkeypatch.setattr(pods, "image_paths", lambda: {"/tmp/ci", "/tmp/ci/.venv", "/usr"})
    c = Container(name="agent", image="netcheck/agent", directory=str(tmp_path / "u1"))
    container = {
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "token", "mountPath": "/etc/netcheck/token", "readOnly": True},
        ]
    }
    lines = NodePods._mounts(
        None,  # type: ignore[arg-type]  # uses nothing of the node
        container,
        c,
        {"tmp": str(tmp_path / "v-tmp"), "token": str(tmp_path / "v-token")},
        False,
    )
    text = "\n".join(lines)
    aside = f"{tmp_path}/u1/image"
    # kept aside before /tmp is covered, put back after, parents first; /usr is not touched
    assert lines.index(f"mount --bind /tmp/ci {aside}/0") < lines.index(
        f"mount --bind {tmp_path}/v-tmp /tmp"
    )
    assert lines[-4:] == [
        "mkdir -p /tmp/ci",
        f"mount --bind {aside}/0 /tmp/ci",
        "mkdir -p /tmp/ci/.venv",
        f"mount --bind {aside}/1 /tmp/ci/.venv",
    ]
    assert "/usr" not in text
    # /etc/netcheck does not exist on the host: an overlay of /etc that only the pod sees
    assert (
        "mount -t overlay overlay" in text
        and "mount -o remount,bind,ro /etc/netcheck/token" in text
    )


class _RefusedOnce:
    """The kubelet's API client where the Node authorizer has not yet seen the pod that lets
    the node read its Secret: the first read is refused, the next one answers. A stand-in for
    a race of the real API server that a test cannot provoke at will."""

    context = "node-cp-dc1-r1-p0"

    def __init__(self) -> None:
        self.reads = 0

    async def call(self, *args: object, **kw: object) -> dict[str, object]:
        from netcheck.kube.errors import KubeError

        self.reads += 1
        if self.reads == 1:
            raise KubeError(self.context, "RBAC forbids 'get' on 'secrets' in namespace netcheck")
        return {"data": {}}


def test_a_refused_volume_is_mounted_again_at_the_next_sync(tmp_path, monkeypatch):
    """A real kubelet retries a volume it could not mount; the lab kubelet did not, and the pod
    stayed ContainerCreating for good (a deploy in CI timed out on it). The pod's network
    namespace is left out: the lab's pod network is tested on the lab (test_kube_real)."""
    import asyncio

    monkeypatch.setattr(NodePods, "_pod_network", lambda self, uid, ip: "")
    client = _RefusedOnce()
    host = {**HOST, "node_pod_cidr": "198.18.24.8/30"}
    node = NodePods(client, "node-cp-dc1-r1-p0", host, str(tmp_path / "pods"), str(tmp_path))  # type: ignore[arg-type]
    pod = {
        "metadata": {"uid": "u1", "namespace": "netcheck", "name": "agent"},
        "spec": {
            "volumes": [{"name": "token", "secret": {"secretName": "netcheck-agent-token"}}],
            "containers": [{"name": "agent", "image": "registry.invalid/other:1"}],
        },
    }
    first = asyncio.run(node._start(pod))
    assert "u1" not in node.running and not first.containers  # tried again at the next sync
    again = asyncio.run(node._start(pod))
    assert node.running["u1"] is again and client.reads == 2
    assert again.containers["agent"].reason == "ErrImagePull"  # mounted; on to the image
