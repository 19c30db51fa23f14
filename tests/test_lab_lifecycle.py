"""The lab is idempotent and leaves nothing behind, also after a crash."""

import os
import signal
import subprocess
import sys

import pytest

from netcheck.lab import build, faults, net
from tests.lab_support import netcheck, require_root, run_json, write_inventory

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


def test_agents_without_net_raw_still_check_and_say_what_was_skipped(tmp_path):
    require_root()
    build.lab_up(raw=False)
    try:
        inventory = str(tmp_path / "lab.yaml")
        write_inventory(inventory)
        faults.add_fault("drop", src="CP_EAST", dst="DP_WEST", port=7001)
        run = run_json(inventory)
        assert run.code == 1
        assert set(run.failing().values()) == {"timeout"}  # plain probes, not refined
        assert run.report["evidence"] == []
        codes = [(f["severity"], f["code"]) for f in run.report["findings"]]
        assert codes == [("error", "PORT_TIMEOUT"), ("info", "RAW_PROBES_SKIPPED")]
        assert "from 8 agents without CAP_NET_RAW" in run.report["findings"][1]["summary"]
    finally:
        build.lab_down()


def test_no_raw_flag_skips_the_evidence_pass(tmp_path):
    require_root()
    build.lab_up()
    try:
        inventory = str(tmp_path / "lab.yaml")
        write_inventory(inventory)
        faults.add_fault("reject", src="CP_EAST", dst="DP_WEST", port=7000)
        plain = run_json(inventory, "--no-raw")
        assert set(plain.failing().values()) == {"unreachable"} and plain.report["evidence"] == []
        assert [f["code"] for f in plain.report["findings"]] == ["HOST_UNREACHABLE"]
        refined = run_json(inventory)
        assert set(refined.failing().values()) == {"prohibited"}
        assert [f["code"] for f in refined.report["findings"]] == ["FIREWALL_REJECT"]
    finally:
        build.lab_down()
