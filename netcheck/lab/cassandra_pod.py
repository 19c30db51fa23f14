"""The lab's Cassandra image: what runs as the `cassandra` container of a lab database pod
(lab/pods.py maps the image `netcheck-lab/cassandra` to this program).

In a cass-operator pod that container runs the Management API, which starts Cassandra when the
operator asks, seeds first. Here the container starts the Management API stand-in on the pod's
8080, waits until a seed answers on the storage port (a seed itself does not wait), then runs
Cassandra 5.0 in the foreground with the configuration the lab wrote for the pod's address
(cass-operator's init container writes it from the pod's environment; the lab writes it before
the pods exist, lab/cassandra.py). Cassandra logs to stdout as well as to system.log, so the
pod's log is its log. The container exits with Cassandra's exit code; a node whose previous
start never completed starts again with fresh data (as the lab's start-up retries do).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from typing import Any

from netcheck.lab import mgmt_standin
from netcheck.lab.cassandra import (
    STARTED,
    STORAGE_PORT,
    NodeFiles,
    database_hosts,
    jvm_command,
    log_contains,
    node_files,
    seeds_of,
)

SEED_WAIT_S = 600.0  # bounded: the container exits and the kubelet starts it again


NOT_INSTALLED = "the lab's Cassandra runtime is not installed yet"


def lab_state(lab_dir: str) -> dict[str, Any]:
    """The lab's state (state.json), read as root by the lab kubelet; none yet (or not
    readable) means the runtime is not installed either."""
    try:
        with open(os.path.join(lab_dir, "state.json"), encoding="utf-8") as f:
            state = json.load(f)
    except (OSError, ValueError):
        raise LookupError(NOT_INSTALLED) from None
    if not isinstance(state, dict):
        raise LookupError(NOT_INSTALLED)
    return state


def runtime(state: dict[str, Any], key: str) -> str:
    """A path of the lab's Cassandra runtime record (lib, mgmt_classes)."""
    try:
        return str(state["cassandra"][key])
    except (KeyError, TypeError):
        raise LookupError(NOT_INSTALLED) from None


def image_argv(lab_dir: str, host: dict[str, Any]) -> list[str]:
    """The container's command line on the lab host `host` (read by the lab kubelet, as root,
    from the lab's state): its address, files, runtime and the cluster's seeds."""
    state = lab_state(lab_dir)
    lib, classes = runtime(state, "lib"), runtime(state, "mgmt_classes")
    if host["role"] != "database":
        raise LookupError(f"lab host {host['name']} is not a database host")
    return [
        sys.executable,
        "-m",
        "netcheck.lab.cassandra_pod",
        f"--address={host['address']}",
        f"--node-dir={node_files(lab_dir, host).root}",
        f"--lib={lib}",
        f"--mgmt-classes={classes}",
        f"--seeds={','.join(seeds_of(database_hosts(state)))}",
    ]


def _fresh_start(files: NodeFiles) -> None:
    """A start that never completed left data another start trips over: it goes."""
    if not os.path.exists(files.system_log) or log_contains(files.system_log, STARTED):
        return
    print("netcheck-lab: the last start did not complete; starting with fresh data", flush=True)
    for name in os.listdir(files.data):
        path = os.path.join(files.data, name)
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.remove(path)
    with contextlib.suppress(OSError):
        os.remove(files.system_log)


def _seed_answers(seeds: list[str]) -> bool:
    for seed in seeds:
        with contextlib.suppress(OSError), socket.create_connection((seed, STORAGE_PORT), 1.0):
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m netcheck.lab.cassandra_pod")
    parser.add_argument("--address", required=True)
    parser.add_argument("--node-dir", required=True)
    parser.add_argument("--lib", required=True)
    parser.add_argument("--mgmt-classes", required=True)
    parser.add_argument("--seeds", required=True)
    args = parser.parse_args(argv)
    files = NodeFiles(root=args.node_dir)
    seeds = [s for s in args.seeds.split(",") if s]
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    standin = subprocess.Popen(
        mgmt_standin.command(args.address, args.mgmt_classes), stdin=subprocess.DEVNULL
    )
    try:
        if args.address not in seeds:
            deadline = time.monotonic() + SEED_WAIT_S
            while not _seed_answers(seeds):
                if stopping:
                    return 0
                if time.monotonic() > deadline:
                    print(f"netcheck-lab: no seed answered within {SEED_WAIT_S:g}s", flush=True)
                    return 1
                time.sleep(1.0)
        _fresh_start(files)
        node = subprocess.Popen(jvm_command(args.lib, files), stdin=subprocess.DEVNULL)
        while node.poll() is None:
            if stopping:
                node.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    node.wait(20)
                node.kill()
            time.sleep(0.2)
        return node.returncode
    finally:
        standin.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            standin.wait(5)
        standin.kill()


if __name__ == "__main__":
    sys.exit(main())
