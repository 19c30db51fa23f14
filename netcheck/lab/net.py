"""Thin wrappers over iproute2 and iptables; every namespace and root link is prefixed ncl-."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time

PREFIX = "ncl-"
ROOT_LINK = "ncl-mgmt0"


class LabError(RuntimeError):
    """A lab problem the user can fix: one line."""


def require_root_and_tools() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates network namespaces): run it with sudo")
    for tool, pkg in (("ip", "iproute2"), ("iptables", "iptables"), ("setpriv", "util-linux")):
        if shutil.which(tool) is None:
            raise LabError(f"'{tool}' is not installed: apt-get install {pkg}")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(args), capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(args)}` failed: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def ip(ns: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("ip", *(("-n", ns) if ns else ()), *args, check=check)


def iptables(ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", ns, "iptables", "-w", "5", *args, check=check)


def sysctl(ns: str, key: str, value: str) -> None:
    run("ip", "netns", "exec", ns, "sysctl", "-qw", f"{key}={value}")


def namespaces() -> list[str]:
    out = run("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def lab_namespaces() -> list[str]:
    return [ns for ns in namespaces() if ns.startswith(PREFIX)]


# Every REJECT and ICMP error must reach the prober: no ICMP rate limits inside the lab.
NS_SYSCTLS = (
    ("net.ipv4.icmp_ratelimit", "0"),
    ("net.ipv4.icmp_msgs_per_sec", "1000000"),
    ("net.ipv4.icmp_msgs_burst", "1000000"),
)


def add_namespace(ns: str) -> None:
    run("ip", "netns", "add", ns)
    ip(ns, "link", "set", "lo", "up")
    for key, value in NS_SYSCTLS:
        sysctl(ns, key, value)


def veth(a_ns: str | None, a_name: str, b_ns: str, b_name: str) -> None:
    a_side = ["link", "add", a_name] + (["netns", a_ns] if a_ns else [])
    ip(None, *a_side, "type", "veth", "peer", "name", b_name, "netns", b_ns)


def kill_namespace_processes(ns: str, grace_s: float = 3.0) -> None:
    def pids() -> list[int]:
        out = run("ip", "netns", "pids", ns, check=False).stdout
        return [int(p) for p in out.split() if p.isdigit()]

    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 1.0)):
        for pid in pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while pids() and time.monotonic() < deadline:
            time.sleep(0.05)


def teardown_everything() -> list[str]:
    """Remove every ncl- namespace (with its processes and links) and the root link."""
    removed = []
    for ns in lab_namespaces():
        kill_namespace_processes(ns)
        run("ip", "netns", "del", ns, check=False)
        removed.append(ns)
    if ip(None, "link", "show", ROOT_LINK, check=False).returncode == 0:
        ip(None, "link", "del", ROOT_LINK, check=False)
        removed.append(ROOT_LINK)
    return removed
