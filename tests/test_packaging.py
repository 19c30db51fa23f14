"""The installed product, not the checkout: the wheel carries the manifests, the RBAC and the
report schema, and `deploy --dry-run` renders from them with no API server reachable."""

from __future__ import annotations

import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import yaml

from tests.helpers import one_context_kubeconfig

ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_wheel_deploys_without_a_checkout(tmp_path):
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = tmp_path.glob("netcheck-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    for f in (
        "netcheck/bundled/probes/kubernetes/base/daemonset.yaml",
        "netcheck/bundled/probes/kubernetes/components/raw-probes/kustomization.yaml",
        "netcheck/bundled/probes/rbac/netcheck-user.yaml",
        "netcheck/bundled/reports/netcheck-run.schema.json",
        "netcheck/lab/controlplane/go.sum",
    ):
        assert f in names, f
    # a kubeconfig whose API server does not answer (a closed port on loopback)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        one_context_kubeconfig(
            "DP_WEST", f"https://127.0.0.1:{closed_port()}", {"token": "t0ken-not-shown"}
        )
    )
    program = (
        f"import sys; sys.path.insert(0, {str(site)!r}); import netcheck; "
        "print(netcheck.__file__, file=sys.stderr); "
        "from netcheck.cli.main import main; main()"
    )
    run = subprocess.run(
        [sys.executable, "-c", program, "deploy", "--kubeconfig", str(kubeconfig), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,  # nowhere near a checkout
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        check=False,
    )
    assert run.stderr.startswith(str(site)), run.stderr  # the wheel's netcheck ran
    assert run.returncode == 0, run.stderr
    kinds = [d["kind"] for d in yaml.safe_load_all(run.stdout) if d]
    assert kinds.count("DaemonSet") == 1 and "Secret" in kinds and "ConfigMap" in kinds
    assert "rendered without its discovery" in run.stderr and "unreachable" in run.stderr
    assert "t0ken-not-shown" not in run.stdout + run.stderr
