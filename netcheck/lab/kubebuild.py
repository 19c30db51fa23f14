"""The lab's Kubernetes binaries, built once from the Go module proxy and cached: the control
plane (controlplane/) and the NetworkPolicy enforcer (netpolicy/, kube-network-policies).

The versions are pinned by each folder's go.mod and their checksums by its go.sum (the
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


def _module(folder: str, names: tuple[str, ...]) -> dict[str, bytes]:
    """The files of one of the lab's Go modules, shipped in the package."""
    here = resources.files("netcheck.lab") / folder
    return {n: (here / n).read_bytes() for n in names}


def _cache_dir(prefix: str, sources: dict[str, bytes]) -> str:
    """Where a module's binaries are cached: named after a hash of its files."""
    digest = hashlib.sha256()
    for name, data in sorted(sources.items()):
        digest.update(name.encode() + b"\0" + data)
    return os.path.join(cache_root(), f"{prefix}-{digest.hexdigest()[:12]}")


def _sources() -> dict[str, bytes]:
    return _module("controlplane", ("go.mod", "go.sum", "tools.go"))


def bin_dir() -> str:
    return _cache_dir(f"kubernetes-{VERSION}", _sources())


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
    where = bin_dir()
    _go_build(
        _sources(),
        where,
        [(cmd, f"k8s.io/kubernetes/cmd/{cmd}", _ldflags()) for cmd in COMMANDS],
        f"{VERSION}",
        log,
    )
    return where


# --- the NetworkPolicy enforcer ---------------------------------------------------------------

NETPOL_VERSION = "v0.8.0"  # sigs.k8s.io/kube-network-policies, as netpolicy/go.mod pins it
NETPOL_COMMAND = "netcheck-lab-netpol"


def _netpol_sources() -> dict[str, bytes]:
    return _module("netpolicy", ("go.mod", "go.sum", "main.go"))


def netpol_dir() -> str:
    return _cache_dir(f"kube-network-policies-{NETPOL_VERSION}", _netpol_sources())


def build_netpol(log: str | None = None) -> str:
    """The enforcer's binary (lab/netpolicy/main.go around kube-network-policies), built once
    (about a minute cold on 2 cores); its path."""
    where = netpol_dir()
    path = os.path.join(where, NETPOL_COMMAND)
    if not os.access(path, os.X_OK):
        _go_build(
            _netpol_sources(),
            where,
            [(NETPOL_COMMAND, ".", "-s -w")],
            f"kube-network-policies {NETPOL_VERSION}",
            log,
        )
    return path


def _go_build(
    sources: dict[str, bytes],
    where: str,
    targets: list[tuple[str, str, str]],
    what: str,
    log: str | None,
) -> None:
    """go build each (output name, package, ldflags) of a module whose files are `sources`
    into `where`, which appears whole or not at all."""
    go = shutil.which("go") or next((g for g in GO_ELSEWHERE if os.access(g, os.X_OK)), None)
    if go is None:
        raise LabError(
            "the go command is missing (the lab builds its Kubernetes control plane and "
            "NetworkPolicy enforcer from the Go module proxy): install Go 1.24 or newer"
        )
    gocache = os.path.join(cache_root(), "go")
    env = {
        **os.environ,
        "GOMODCACHE": os.path.join(gocache, "mod"),
        "GOCACHE": os.path.join(gocache, "build"),
        "CGO_ENABLED": "0",
        "GOFLAGS": "-buildvcs=false -mod=readonly",
    }
    with tempfile.TemporaryDirectory(prefix="netcheck-go-") as work:
        for name, data in sources.items():
            with open(os.path.join(work, name), "wb") as f:
                f.write(data)
        os.makedirs(where + ".tmp", exist_ok=True)
        out = open(log, "a", encoding="utf-8") if log else subprocess.DEVNULL  # noqa: SIM115
        try:
            for name, package, ldflags in targets:
                proc = subprocess.run(
                    [
                        go,
                        "build",
                        "-trimpath",
                        "-ldflags",
                        ldflags,
                        "-o",
                        os.path.join(where + ".tmp", name),
                        package,
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
                    raise LabError(f"building {name} ({what}) failed: {tail[0][:200]}")
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
    shutil.rmtree(where, ignore_errors=True)
    os.replace(where + ".tmp", where)
