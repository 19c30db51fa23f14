"""The lab's Management API on 8080 of every Cassandra pod (java/ManagementApiStandIn.java).

The real API's agent is not published to Maven Central, so nothing real can answer here. The
stand-in serves the real API's paths and shapes from the real node next to it, through its
local JMX (as nodetool reads it). It starts before Cassandra, as the real API does (it starts
Cassandra), answers liveness while Cassandra is down and readiness 500 until Cassandra serves.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from netcheck.lab.cassandra import JMX_PORT, database_hosts, in_pod_as_nobody, pid_in
from netcheck.lab.javac import compiled
from netcheck.lab.net import LabError

PORT = 8080
CLASS = "ManagementApiStandIn"


def command(address: str, classes: str) -> list[str]:
    """The stand-in's JVM, listening on address:8080, reading the local JMX."""
    return [
        "java",
        "-Xmx32M",
        "-Xss256k",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-XX:CICompilerCount=1",
        "-Djava.net.preferIPv4Stack=true",
        "-cp",
        classes,
        CLASS,
        address,
        str(PORT),
        str(JMX_PORT),
    ]


def start(namespace: str, address: str, classes: str, log_path: str) -> None:
    cmd = ["setsid", "--fork", *in_pod_as_nobody(namespace), *command(address, classes)]
    out = open(log_path, "ab")  # noqa: SIM115
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", check=True)
    finally:
        out.close()


def start_all(state: dict[str, Any], state_dir: str, timeout_s: float = 30.0) -> None:
    """A stand-in in every database pod, listening on the pod's address."""
    classes = compiled(CLASS, state_dir)
    hosts = database_hosts(state)
    for h in hosts:
        log = os.path.join(state_dir, f"mgmtapi-{h['name']}.log")
        start(h["namespace"], h["address"], classes, log)
    wait({h["name"]: h["namespace"] for h in hosts}, timeout_s)


def all_running(state: dict[str, Any]) -> bool:
    return all(running(h["namespace"]) for h in database_hosts(state))


def pid(namespace: str) -> int | None:
    """The stand-in's JVM in the namespace, if any."""
    return pid_in(namespace, CLASS.encode())


def running(namespace: str) -> bool:
    out = subprocess.run(
        ["ip", "netns", "exec", namespace, "ss", "-Hltn", f"sport = :{PORT}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return bool(out.stdout.strip())


def wait(namespaces: dict[str, str], timeout_s: float) -> None:
    """Until every stand-in listens; namespaces: pod name -> namespace."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(namespaces)
    while waiting:
        waiting = {n: ns for n, ns in waiting.items() if not running(ns)}
        if not waiting:
            return
        if time.monotonic() > deadline:
            raise LabError(
                f"the Management API stand-in did not start within {timeout_s:.0f}s on "
                f"{', '.join(sorted(waiting))}"
            )
        time.sleep(0.2)
