"""The agent image, built for real (`make image`) and run by the lab kubelet.

Build. No registry is reachable, so the base image is made here: a Debian root filesystem from
debootstrap (minbase plus python3, python3-venv and libcap2-bin), cached as a tarball and
imported with buildah. The build context of probes/Dockerfile is a folder of wheels (netcheck's
own, built from the checkout, and its dependencies', kept in the cache folder); buildah builds
it (chroot isolation: no daemon and no cgroups needed) and tags it with the manifests' image
name, as `kind load docker-image` would, so that a DaemonSet with `imagePullPolicy:
IfNotPresent` finds it. The image carries a label with a digest of the sources it was built
from: `build` does nothing when the image is current, and the tests refuse a stale one.

Run. podman cannot start a container on this machine (crun and runc stop at the hybrid cgroup
hierarchy and at setrlimit), so the lab kubelet runs an image as a runtime does, with parts
that work here: buildah makes a working container (the image's layers under a writable layer)
and mounts its root filesystem; pods.py starts the pod's process chrooted into it, in the
node's network namespace and a mount namespace of its own, as the securityContext's user with
only its capabilities (lab/pods.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from netcheck.lab.cassandra import cache_root
from netcheck.lab.net import LabError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"  # Debian's package registry, as apt uses it
INCLUDE = ("python3", "python3-venv", "libcap2-bin", "passwd")
BASE_IMAGE = f"localhost/netcheck/debian:{SUITE}-minbase"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Debian's
SOURCE_LABEL = "io.netcheck.source-sha256"
WORKING_PREFIX = "netcheck-lab-"  # the working containers the lab kubelet makes
_SOURCES = ("netcheck", "probes", "reports", "pyproject.toml", "setup.py")
_TIMEOUT_S = 1200


@dataclass(frozen=True, kw_only=True)
class Image:
    """An image in the local storage, as a runtime reads its config."""

    name: str
    id: str
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    env: tuple[str, ...]  # NAME=value
    user: str
    workdir: str
    labels: tuple[tuple[str, str], ...]

    def label(self, key: str) -> str:
        return dict(self.labels).get(key, "")


def agent_image() -> str:
    """The image the manifests name (probes/kubernetes/base)."""
    from netcheck.deploy.manifests import DeployOptions, default_root, load_manifests

    for obj in load_manifests(default_root(), DeployOptions(token="-")):
        if obj["kind"] == "DaemonSet":
            return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])
    raise LabError("probes/kubernetes/base has no DaemonSet: the agent image is not named")


def checkout() -> Path:
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file() or not (root / "probes" / "Dockerfile").is_file():
        raise LabError("the agent image is built from a checkout of netcheck (make image)")
    return root


def source_digest(root: Path) -> str:
    """sha256 over the files the image is built from (what the wheel packs, and the
    Dockerfile)."""
    digest = hashlib.sha256()
    for top in _SOURCES:
        base = root / top
        files = [base] if base.is_file() else sorted(base.rglob("*")) if base.is_dir() else []
        for f in files:
            if not f.is_file() or "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            digest.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def _run(cmd: list[str], what: str, log: str | None = None) -> str:
    """Run one build or storage command; its stdout, or with a log its output goes there;
    LabError naming the command and its last line on failure."""
    if shutil.which(cmd[0]) is None and not os.path.isabs(cmd[0]):
        raise LabError(f"{cmd[0]} is missing ({what}): run `make system-deps`")
    out = open(log, "a", encoding="utf-8") if log else None  # noqa: SIM115
    try:
        proc = subprocess.run(
            cmd,
            stdout=out if out else subprocess.PIPE,
            stderr=subprocess.STDOUT if out else subprocess.PIPE,
            text=True,
            check=False,
            timeout=_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise LabError(f"{what}: no answer within {_TIMEOUT_S}s") from None
    finally:
        if out:
            out.close()
    if proc.returncode != 0:
        text = proc.stderr or ""
        if log:
            with open(log, encoding="utf-8", errors="replace") as f:
                text = f.read()[-4096:]
        lines = text.strip().splitlines() or ["no output"]
        where = f" (all of it in {log})" if log else ""
        raise LabError(f"{what} failed (exit {proc.returncode}): {lines[-1][:240]}{where}")
    return proc.stdout or ""


def find(name: str) -> Image | None:
    """The image of that name in the local storage, or None when there is none."""
    if shutil.which("buildah") is None:
        return None
    proc = subprocess.run(
        ["buildah", "inspect", "--type", "image", name],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    if proc.returncode != 0:
        return None
    doc = json.loads(proc.stdout)
    config = (doc.get("OCIv1") or {}).get("config") or {}
    return Image(
        name=name,
        id=str(doc.get("FromImageID", "")),
        entrypoint=tuple(config.get("Entrypoint") or ()),
        cmd=tuple(config.get("Cmd") or ()),
        env=tuple(config.get("Env") or ()),
        user=str(config.get("User") or ""),
        workdir=str(config.get("WorkingDir") or ""),
        labels=tuple(sorted((config.get("Labels") or {}).items())),
    )


def current(name: str | None = None) -> Image | None:
    """The agent image when it was built from this checkout's sources, else None."""
    img = find(name or agent_image())
    if img is None or img.label(SOURCE_LABEL) != source_digest(checkout()):
        return None
    return img


def _base_tarball(log: str | None) -> str:
    key = hashlib.sha256(f"{SUITE}\0{MIRROR}\0{','.join(INCLUDE)}".encode()).hexdigest()[:12]
    path = os.path.join(cache_root(), f"debian-{SUITE}-minbase-{key}.tar")
    if os.path.isfile(path):
        return path
    os.makedirs(cache_root(), exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="netcheck-rootfs-", dir=cache_root()) as work:
        rootfs = os.path.join(work, "rootfs")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(INCLUDE)}",
                SUITE,
                rootfs,
                MIRROR,
            ],
            f"debootstrap {SUITE}",
            log,
        )
        _run(["tar", "-C", rootfs, "--numeric-owner", "-cf", path + ".tmp", "."], "tar", log)
    os.replace(path + ".tmp", path)
    return path


def _ensure_base(log: str | None) -> None:
    if find(BASE_IMAGE) is not None:
        return
    tarball = _base_tarball(log)
    work = _run(["buildah", "from", "scratch"], "buildah from scratch").strip()
    try:
        _run(["buildah", "add", work, tarball, "/"], "buildah add", log)
        _run(
            ["buildah", "config", "--env", f"PATH={PATH}", work],
            "buildah config",
        )
        _run(["buildah", "commit", "--rm", work, BASE_IMAGE], "buildah commit", log)
    except LabError:
        subprocess.run(["buildah", "rm", work], capture_output=True, check=False)
        raise


def _wheels(root: Path, into: str, log: str | None) -> None:
    """netcheck's wheel and its dependencies' into `into`, exactly those: the dependencies
    from the cache folder when it has them all, else from PyPI (then kept there for the next
    build)."""
    cache = os.path.join(cache_root(), "agent-wheels")
    os.makedirs(cache, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", into]
    _run([*pip, "--no-deps", str(root)], "pip wheel netcheck", log)
    with open(root / "pyproject.toml", "rb") as fp:
        needs = [str(d) for d in tomllib.load(fp)["project"]["dependencies"]]
    try:
        _run([*pip, "--no-index", "--find-links", cache, *needs], "pip wheel (cached)", log)
    except LabError:
        _run([*pip, "--find-links", cache, *needs], "pip wheel (from PyPI)", log)
    for wheel in os.listdir(into):
        if wheel.endswith(".whl") and not wheel.startswith("netcheck-"):
            shutil.copy2(os.path.join(into, wheel), os.path.join(cache, wheel))


def build(log: str | None = None, name: str | None = None) -> Image:
    """Build the agent image from this checkout unless the one in storage is current."""
    root = checkout()
    name = name or agent_image()
    digest = source_digest(root)
    img = find(name)
    if img is not None and img.label(SOURCE_LABEL) == digest:
        return img
    _ensure_base(log)
    with tempfile.TemporaryDirectory(prefix="netcheck-image-") as ctx:
        _wheels(root, os.path.join(ctx, "wheels"), log)
        shutil.copy2(root / "probes" / "Dockerfile", os.path.join(ctx, "Dockerfile"))
        _run(
            [
                "buildah",
                "bud",
                "--isolation",
                "chroot",
                "--pull-never",
                "--build-arg",
                f"BASE={BASE_IMAGE}",
                "--label",
                f"{SOURCE_LABEL}={digest}",
                "-t",
                name,
                "-f",
                os.path.join(ctx, "Dockerfile"),
                ctx,
            ],
            f"buildah bud {name}",
            log,
        )
    # the image the tag moved away from, if any, is dangling now
    subprocess.run(["buildah", "rmi", "--prune"], capture_output=True, check=False, timeout=300)
    built = find(name)
    if built is None:
        raise LabError(f"buildah built {name} but it is not in the local storage")
    return built


# --- the lab kubelet's side: working containers ---------------------------------------------


def mount(image: Image, key: str) -> tuple[str, str]:
    """A working container of the image for one container of a pod (key: the pod's uid and
    the container's name); its name and its mounted root."""
    work = WORKING_PREFIX + key
    subprocess.run(["buildah", "rm", work], capture_output=True, check=False, timeout=60)
    _run(
        ["buildah", "from", "--pull-never", "--name", work, image.id or image.name], "buildah from"
    )
    return work, _run(["buildah", "mount", work], "buildah mount").strip()


def release(work: str) -> None:
    """Unmount and remove a working container (its writable layer goes with it)."""
    subprocess.run(["buildah", "umount", work], capture_output=True, check=False, timeout=60)
    subprocess.run(["buildah", "rm", work], capture_output=True, check=False, timeout=60)


def release_all() -> list[str]:
    """Every working container the lab made, also those a crashed lab left; their names."""
    if shutil.which("buildah") is None:
        return []
    proc = subprocess.run(
        ["buildah", "containers", "--format", "{{.ContainerName}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    names = [n for n in proc.stdout.split() if n.startswith(WORKING_PREFIX)]
    for n in names:
        release(n)
    return names
