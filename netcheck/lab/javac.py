"""The lab's own small Java programs (java/*.java), compiled once per source and cached."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from importlib import resources

from netcheck.lab.cassandra import cache_root
from netcheck.lab.net import LabError


def compiled(name: str, state_dir: str, classpath: str = "") -> str:
    """A directory holding the compiled classes of java/NAME.java, readable by nobody (the
    JVMs' user), under state_dir; javac runs once per source, its output cached."""
    source = (resources.files("netcheck.lab") / "java" / f"{name}.java").read_bytes()
    cached = os.path.join(cache_root(), f"{name}-{hashlib.sha256(source).hexdigest()[:12]}")
    if not os.path.isdir(cached):
        if shutil.which("javac") is None:
            raise LabError(
                f"javac is missing (the lab compiles its {name}): "
                "apt-get install openjdk-17-jdk-headless"
            )
        work = cached + ".tmp"
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        src = os.path.join(work, f"{name}.java")
        with open(src, "wb") as f:
            f.write(source)
        cmd = ["javac", "-d", os.path.join(work, "classes")]
        cmd += ["-cp", classpath] if classpath else []
        proc = subprocess.run([*cmd, src], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise LabError(f"javac failed on {name}: {proc.stderr[:200]}")
        shutil.rmtree(cached, ignore_errors=True)
        os.replace(work, cached)
    dest = os.path.join(state_dir, "cassandra", name)
    if not os.path.isdir(dest):
        shutil.copytree(os.path.join(cached, "classes"), dest)
        for root, dirs, names in os.walk(dest):
            for n in dirs:
                os.chmod(os.path.join(root, n), 0o755)
            for n in names:
                os.chmod(os.path.join(root, n), 0o644)
        os.chmod(dest, 0o755)
    return dest
