"""The lab is idempotent and leaves nothing behind, also after a crash."""

import os
import signal
import subprocess
import sys

import pytest

from netcheck.lab import build, net
from tests.lab_support import netcheck, require_root

pytestmark = pytest.mark.lab


def test_up_is_idempotent_survives_a_crash_and_down_removes_everything():
    require_root()
    build.lab_down()
    state, built = build.lab_up()
    assert built
    again, built_again = build.lab_up()
    assert not built_again and again["hosts"] == state["hosts"]
    # crash: every agent killed hard, the state left behind
    for ns in net.lab_namespaces():
        out = net.run("ip", "netns", "pids", ns, check=False).stdout.split()
        for pid in out:
            os.kill(int(pid), signal.SIGKILL)
    _, rebuilt = build.lab_up()
    assert rebuilt  # noticed the dead agents and built a fresh lab
    proc = netcheck("lab", "down")
    assert proc.returncode == 0, proc.stderr
    assert net.lab_namespaces() == []
    assert net.ip(None, "link", "show", net.ROOT_LINK, check=False).returncode != 0
    assert not os.path.exists(build.state_path())
    assert netcheck("lab", "down").returncode == 0  # and again: nothing to do


def test_lab_commands_without_a_lab_say_so(tmp_path):
    env = {build.STATE_DIR_ENV: str(tmp_path / "none")}
    for args in (("lab", "inventory"), ("lab", "fault", "list"), ("lab", "fault", "clear")):
        proc = netcheck(*args, env=env)
        assert proc.returncode == 2
        assert (
            proc.stderr.strip() == "netcheck: error: the lab is not up: run `netcheck lab up` first"
        )


def test_lab_needs_root():
    require_root()  # to become nobody for this test
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    proc = subprocess.run(
        [*as_nobody, sys.executable, "-m", "netcheck", "lab", "up"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "needs root" in proc.stderr and "Traceback" not in proc.stderr
