"""The lab's Kubernetes control-plane binaries, built once from the Go module proxy and cached.

The versions are pinned by controlplane/go.mod and their checksums by controlplane/go.sum (the
go command refuses a module whose content does not match). The binaries land in the cache
folder under a name that carries a hash of both files, so a changed pin builds again and an
unchanged one costs nothing; GOMODCACHE and GOCACHE live in the cache folder too, so a rebuild
after a change reuses what it can. Cold, on 2 cores: about 8 to 12 minutes and 2 GB of memory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from importlib import resources

from netcheck.lab.cassandra import cache_root
from netcheck.lab.net import LabError

VERSION = "v1.34.4"
COMMANDS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
GO_ELSEWHERE = ("/usr/local/go/bin/go",)  # the official tarball's place, often not on PATH
_VERSION_PKGS = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")


def _sources() -> dict[str, bytes]:
    here = resources.files("netcheck.lab") / "controlplane"
    return {n: (here / n).read_bytes() for n in ("go.mod", "go.sum", "tools.go")}


def bin_dir() -> str:
    digest = hashlib.sha256()
    for name, data in sorted(_sources().items()):
        digest.update(name.encode() + b"\0" + data)
    return os.path.join(cache_root(), f"kubernetes-{VERSION}-{digest.hexdigest()[:12]}")


def built() -> str | None:
    """The folder of the binaries when they are all there, else None."""
    where = bin_dir()
    ok = all(os.access(os.path.join(where, c), os.X_OK) for c in COMMANDS)
    return where if ok else None


def _ldflags() -> str:
    major, minor = VERSION.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in _VERSION_PKGS:
        flags += [
            f"-X {pkg}.gitVersion={VERSION}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def build(log: str | None = None) -> str:
    """Build what is missing; the folder of the binaries. log: where go's output goes."""
    done = built()
    if done is not None:
        return done
    go = shutil.which("go") or next((g for g in GO_ELSEWHERE if os.access(g, os.X_OK)), None)
    if go is None:
        raise LabError(
            "the go command is missing (the lab builds its Kubernetes control plane from the "
            "Go module proxy): install Go 1.24 or newer"
        )
    where = bin_dir()
    gocache = os.path.join(cache_root(), "go")
    env = {
        **os.environ,
        "GOMODCACHE": os.path.join(gocache, "mod"),
        "GOCACHE": os.path.join(gocache, "build"),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-buildvcs=false -mod=readonly",
    }
    with tempfile.TemporaryDirectory(prefix="netcheck-kube-") as work:
        for name, data in _sources().items():
            with open(os.path.join(work, name), "wb") as f:
                f.write(data)
        os.makedirs(where + ".tmp", exist_ok=True)
        out = open(log, "a", encoding="utf-8") if log else subprocess.DEVNULL  # noqa: SIM115
        try:
            for cmd in COMMANDS:
                proc = subprocess.run(
                    [
                        go,
                        "build",
                        "-trimpath",
                        "-ldflags",
                        _ldflags(),
                        "-o",
                        os.path.join(where + ".tmp", cmd),
                        f"k8s.io/kubernetes/cmd/{cmd}",
                    ],
                    cwd=work,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT if log else subprocess.PIPE,
                    text=True,
                    check=False,
                )
                if proc.returncode != 0:
                    tail = (proc.stderr or "").strip().splitlines()[-1:] or [f"see {log}"]
                    raise LabError(f"building {cmd} {VERSION} failed: {tail[0][:200]}")
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
    shutil.rmtree(where, ignore_errors=True)
    os.replace(where + ".tmp", where)
    return where
