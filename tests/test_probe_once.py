"""`netcheck probe-once`, what `run --context` execs in each database pod's netcheck container
(agent/once.py), run here as a process on loopback; and how that container is chosen in a pod
(kube/ephemeral.py) from pod objects shaped as the API server returns them. The exec path
through real API servers and the lab kubelet: test_kube_cassandra."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import pytest

from netcheck.agent.once import MAX_BATCH
from netcheck.agent.transport import _info_from_json
from netcheck.agent.wire import result_from_json
from netcheck.kube.ephemeral import ProbeContainer, pick, probe_container_of


def probe_once(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "netcheck", "probe-once", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def listener():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_it_answers_what_the_agent_api_answers(listener):
    """The info document and the batch's results parse with the HTTP transport's own strict
    parsers; an address outside --allow is not probed."""
    proc = probe_once("--info", "--allow", "127.0.0.1/32", "--no-raw", "--name", "db-0")
    assert proc.returncode == 0, proc.stderr
    info = _info_from_json("x", json.loads(proc.stdout))
    assert (info.name, info.max_batch, info.raw_probes) == ("db-0", MAX_BATCH, False)

    closed = free_port()
    batch = {
        "targets": [
            {"address": "127.0.0.1", "port": listener, "kind": "tcp"},
            {"address": "127.0.0.1", "port": closed, "kind": "tcp"},
            {"address": "127.0.0.2", "port": listener, "kind": "tcp"},
        ],
        "timeout_s": 2,
    }
    proc = probe_once("--allow", "127.0.0.1/32", "--batch", json.dumps(batch))
    assert proc.returncode == 0, proc.stderr
    results = [result_from_json(r, "r") for r in json.loads(proc.stdout)["results"]]
    assert [r.outcome.value for r in results] == ["open", "refused", "not_measured"]
    assert "outside its --allow list" in results[2].detail


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--batch", "{"), "--batch: not a probe request"),
        (("--batch", '{"targets": 3}'), "--batch: not a probe request ('targets' must be a list)"),
        (
            ("--batch", json.dumps({"targets": [{"address": "127.0.0.1", "port": 1}] * 300})),
            f"exceeds the agent's limit of {MAX_BATCH}",
        ),
        (("--batch", "{}", "--allow", "10.0.0.0/33"), "--allow '10.0.0.0/33': not a CIDR"),
        ((), "give either --info or --batch"),
        (("--info", "--batch", "{}"), "give either --info or --batch"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, said):
    proc = probe_once(*args)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("netcheck: error: ") and said in lines[0], lines


AGENT = probe_container_of(
    "ghcr.io/netcheck/agent:0.1.0",
    {"runAsNonRoot": True, "runAsUser": 10001, "fsGroup": 10001},
    {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
)


def pod(*containers: tuple[Any, ...]) -> dict[str, Any]:
    """A pod with ephemeral containers (name, image, state or None when not started yet, and
    a securityContext: the one netcheck asks for unless given)."""
    return {
        "spec": {
            "ephemeralContainers": [
                {
                    "name": c[0],
                    "image": c[1],
                    "securityContext": (c[3:] or [AGENT.security_context])[0],
                }
                for c in containers
            ]
        },
        "status": {
            "ephemeralContainerStatuses": [
                {"name": c[0], "state": c[2]} for c in containers if c[2] is not None
            ]
        },
    }


RUNNING = {"running": {"startedAt": "2026-12-01T00:00:00Z"}}
EXITED = {"terminated": {"exitCode": 137, "reason": "Error"}}


def test_the_container_copies_the_agents_user_and_nothing_pod_wide():
    spec = AGENT.spec("netcheck-probe")
    assert spec["command"] == ["sleep", "infinity"]
    assert spec["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
    }  # fsGroup is the pod's to set, not a container's
    assert "ports" not in spec and "resources" not in spec  # ephemeral containers take neither


@pytest.mark.parametrize(
    ("existing", "chosen"),
    [
        ((), ("netcheck-probe", True)),
        ((("netcheck-probe", AGENT.image, RUNNING),), ("netcheck-probe", False)),
        # added by a run that ended before it started: waited for, not added twice
        ((("netcheck-probe", AGENT.image, None),), ("netcheck-probe", False)),
        # another image (netcheck upgraded) or a container that died: the next name
        ((("netcheck-probe", "old:1", RUNNING),), ("netcheck-probe-2", True)),
        ((("netcheck-probe", AGENT.image, EXITED),), ("netcheck-probe-2", True)),
        ((("debugger-x", "busybox", RUNNING),), ("netcheck-probe", True)),
        # the agents redeployed with raw probes: NET_RAW is not in the running one
        (
            (("netcheck-probe", AGENT.image, RUNNING, {"capabilities": {}}),),
            ("netcheck-probe-2", True),
        ),
        (
            tuple(
                (n, "old:1", RUNNING)
                for n in ["netcheck-probe"] + [f"netcheck-probe-{i}" for i in range(2, 6)]
            ),
            ("", False),
        ),
    ],
)
def test_a_running_container_of_the_image_is_used_again_else_the_next_name(existing, chosen):
    want: ProbeContainer = AGENT
    assert pick(pod(*existing), want) == chosen
