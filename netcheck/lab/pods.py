"""The lab kubelet, part two: the pods bound to a node, each in a network namespace of its own
behind the node's, its containers run as processes there.

Each container of a pod is a process of its own (its own mount and UTS namespaces, the pod's
network namespace, the pod's volumes), restarted on its own, with its own log; the pod is Ready
when every container is. A container runs the command its image and spec give, as the user its
securityContext names, with only the capabilities it adds (drop ALL is the only drop
understood), its env (values and the downward API's fieldRefs, `$(VAR)` expanded in args) and
its volumes (secret, configMap, emptyDir) mounted at their paths in a private mount namespace (a
path whose top directory the host lacks, /etc/netcheck, lives in an overlay of that directory
that only the pod sees). A pod's network namespace is wired to its node's as a CNI plugin wires
it (lab/podnet.py): a database pod has the host's address, other pods the addresses of the
node's podCIDR. The readiness probe (httpGet) decides Ready; the status is written back as a
kubelet writes it; a deleted pod's processes are stopped and the pod finished. Ephemeral
containers added to a running pod (pods/ephemeralcontainers, as `kubectl debug` adds them) start
once in the pod's namespaces, are never restarted, and have their own status
(ephemeralContainerStatuses), log and exec.

An image in the local container storage (the agent image after `make image`: lab/image.py)
runs as a runtime runs it: the pod's process is chrooted into a buildah working container of
the image (its layers under a writable layer), with /proc, a small /dev, a read-only /sys,
the kubelet's /etc/hosts, /etc/hostname and /etc/resolv.conf and the pod's volumes; command
and args replace the image's entrypoint and cmd as Kubernetes says; the image's env comes
first; capabilities go to the bounding set only, as for any non-root container, so NET_RAW
reaches the agent through python-netraw's file capability, and allowPrivilegeEscalation:
false sets no_new_privs, which makes the kernel ignore that capability.

Without the image in storage, an image is mapped to the same program from the lab's own
Python: the netcheck agent image (`netcheck agent`, or its raw-probes interpreter
`python-netraw`, whose file capability becomes an ambient NET_RAW here), and the lab's
Cassandra image (`netcheck-lab/cassandra`: lab/cassandra_pod.py, the Management API stand-in
then Cassandra, always mapped), and the lab's `netcheck-lab/system-logger` (cass-operator's
server-system-logger sidecar: it prints the pod's node's system.log, followed as `tail -F`
does; the lab's Cassandra writes system.log in the lab's folder, so no shared log volume is
needed). Any other image fails to pull: no registry is reachable.

Exec (`pods/exec`, lab/kubelet_api.py) runs a command in the container's namespaces (network,
mount and UTS, and its root when it runs an image; as the container's user with its
capabilities and env): any executable of the image, or for a mapped image `netcheck` (agent)
and `nodetool` and `bash` (Cassandra: the real images are Ubuntu or UBI with bash and
coreutils); any other command fails as a runtime says "executable file not found".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import os
import re
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from netcheck.kube.client import KubeClient
from netcheck.kube.errors import KubeError, NotFound
from netcheck.lab import image, podnet
from netcheck.lab.net import LabError
from netcheck.lab.spec import pod_addresses

NETRAW_INTERPRETER = "/usr/local/bin/python-netraw"
CASSANDRA_IMAGE = "netcheck-lab/cassandra"
LOGGER_IMAGE = "netcheck-lab/system-logger"  # cass-operator's server-system-logger sidecar
STOP_GRACE_S = 5.0
RESTART_BACKOFF_S = (5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0)  # as a kubelet backs off


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_files(directory: str, files: dict[str, bytes]) -> None:
    for key, data in files.items():
        path = os.path.join(directory, os.path.basename(key))  # a key is a file name
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, 0o644)


def _open_log(path: str) -> Any:
    return open(path, "ab")


def image_paths() -> set[str]:
    """What the lab runs as the agent image: its Python environment and netcheck's source."""
    import netcheck

    package = os.path.dirname(os.path.dirname(os.path.abspath(netcheck.__file__)))
    return {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, package)} | {
        sys.prefix,
        package,
    }


class Unsupported(Exception):
    """A pod the lab kubelet cannot run: the message is the pod's status reason text."""

    reason = "CreateContainerError"


class PullFailed(Unsupported):
    """An image neither in the local storage nor mapped: no registry is reachable."""

    reason = "ErrImagePull"


def _agent_image(image: str) -> bool:
    return "netcheck" in image and "agent" in image


def _cassandra_image(image: str) -> bool:
    return image.split(":")[0].endswith(CASSANDRA_IMAGE)


def _logger_image(image: str) -> bool:
    return image.split(":")[0].endswith(LOGGER_IMAGE)


def program(
    container: dict[str, Any], lab_dir: str, host: dict[str, Any]
) -> tuple[list[str], bool]:
    """The command line of the container on the lab host, and whether it is the raw-probes
    one."""
    image = str(container.get("image", ""))
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if _cassandra_image(image):
        if command:
            raise Unsupported(f"image {image}: the lab's Cassandra image takes no command")
        from netcheck.lab.cassandra_pod import image_argv

        try:
            return image_argv(lab_dir, host), False
        except LookupError as exc:
            raise Unsupported(f"image {image}: {exc}") from None
    if _logger_image(image):
        if command:
            raise Unsupported(f"image {image}: the lab's system logger takes no command")
        from netcheck.lab.cassandra import node_files

        # what cass-operator's sidecar prints: system.log, from its first line, followed
        # across Cassandra's restarts (tail's own notes about the file go nowhere)
        log = node_files(lab_dir, host).system_log
        return ["sh", "-c", 'exec tail -n +1 -F "$0" 2>/dev/null', log], False
    if not _agent_image(image):
        raise PullFailed(
            f'Failed to pull image "{image}": not in the local storage and no registry is '
            f"reachable from the lab (the lab runs images that `make image` built, the netcheck "
            f"agent image, {CASSANDRA_IMAGE} and {LOGGER_IMAGE})"
        )
    if not command:
        return [sys.executable, "-m", "netcheck", "agent", *args], False
    if command[0] == NETRAW_INTERPRETER:
        return [sys.executable, *command[1:], *args], True
    if command[:2] == ["netcheck", "agent"]:
        return [sys.executable, "-m", "netcheck", *command[1:], *args], False
    raise Unsupported(f"command {command[0]} of image {image} is not known to the lab kubelet")


def image_argv(container: dict[str, Any], img: image.Image) -> list[str]:
    """command replaces the image's entrypoint and drops its cmd; args replace the cmd."""
    command = [str(c) for c in container.get("command") or []]
    args = [str(a) for a in container.get("args") or []]
    if command:
        return [*command, *args]
    argv = [*img.entrypoint, *(args or img.cmd)]
    if not argv:
        raise Unsupported(f"image {img.name}: no command specified")
    return argv


def _user(ctx: dict[str, Any], image_user: str) -> tuple[int, int]:
    """runAsUser/runAsGroup, else the image's numeric USER (uid[:gid]), else root."""
    uid_s, _, gid_s = image_user.partition(":")
    try:
        uid = int(ctx.get("runAsUser", uid_s or 0))
        gid = int(ctx.get("runAsGroup", gid_s or uid))
    except ValueError:
        raise Unsupported(f"image user {image_user!r} is not numeric: set runAsUser") from None
    return uid, gid


def exec_program(image: str, argv: list[str], lab_dir: str) -> list[str]:
    """What `exec` of argv runs in a container of this image; Unsupported says why not, in the
    words of a container runtime."""
    what = argv[0] if argv else ""
    if _agent_image(image) and what == "netcheck":
        return [sys.executable, "-m", "netcheck", *argv[1:]]
    if _cassandra_image(image) and what == "bash":
        # the Management API images cass-operator runs have bash and coreutils (the probes
        # from a pod's own container where netcheck's cannot be added: agent/podshell.py)
        return ["/bin/bash", *argv[1:]]
    if _cassandra_image(image) and what == "nodetool":
        from netcheck.lab import cassandra
        from netcheck.lab.cassandra_pod import lab_state, runtime

        try:
            lib = runtime(lab_state(lab_dir), "lib")
        except LookupError as exc:
            raise Unsupported(str(exc)) from None
        return cassandra.nodetool_command(lib, *argv[1:])
    raise _not_found(what)


def _not_found(what: str) -> Unsupported:
    return Unsupported(
        "OCI runtime exec failed: exec failed: unable to start container process: "
        f'exec: "{what}": executable file not found in $PATH: unknown'
    )


def _in_image(rootfs: str, argv: list[str], path: str) -> None:
    """Unsupported, in a runtime's words, unless argv[0] is an executable of the image."""
    what = argv[0] if argv else ""
    dirs = [""] if "/" in what else [d for d in path.split(":") if d.startswith("/")]
    for d in dirs:
        candidate = os.path.join(rootfs, (d or "/").lstrip("/"), what.lstrip("/"))
        # an absolute symlink points into the image, not the host: taken as it is
        ok = os.path.isfile(candidate) and os.access(candidate, os.X_OK)
        if what and (ok or os.path.islink(candidate)):
            return
    raise _not_found(what)


def _volume_mount(m: dict[str, Any], volumes: dict[str, str]) -> tuple[str, str]:
    """A volumeMount's source directory and its absolute target; Unsupported if it has none."""
    target = os.path.normpath(str(m.get("mountPath", "")))
    source = volumes.get(str(m.get("name", "")))
    if source is None or not target.startswith("/") or target == "/":
        raise Unsupported(f"volumeMount {m.get('name')} at {target} cannot be made")
    return source, target


_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: an unknown variable stays as written, $$ is a $."""

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(one, text)


def field_ref(pod: dict[str, Any], path: str, pod_ip: str, host_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    values = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.hostIP": host_ip,
    }
    return str(values.get(path, ""))


@dataclass
class Container:
    """One container of a running pod: its own process, mount namespace and log."""

    name: str
    image: str
    directory: str  # its files: log, kept-aside paths, overlays, /etc files
    process: asyncio.subprocess.Process | None = None
    ready: bool = False
    started_at: str = field(default_factory=_now)
    failure: str = ""  # why it cannot run (Unsupported, or a volume missing)
    reason: str = ""  # the waiting reason that goes with it
    restarts: int = 0
    exited_at: float = 0.0  # loop time the process was seen gone
    finished_at: str = ""
    said: str = "-"  # the last reason for not being Ready it logged ("" Ready)
    env: dict[str, str] = field(default_factory=dict)  # as the container got them, for exec
    privileges: list[str] = field(default_factory=list)  # setpriv's options: user, capabilities
    image_id: str = ""  # the image run from the local storage, if any
    work: str = ""  # its buildah working container
    rootfs: str = ""  # and that container's mounted root filesystem

    @property
    def log(self) -> str:
        return os.path.join(self.directory, "container.log")

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def entered(self) -> bool:
        """Its program runs: for an image, inside the image's root. Until then the process is
        still the kubelet's shell mounting volumes, and an exec would land on the host's root;
        a runtime reports a container running only once its entrypoint has started."""
        if not self.alive or not self.rootfs:
            return self.alive
        assert self.process is not None
        try:
            return os.readlink(f"/proc/{self.process.pid}/root") != "/"
        except OSError:
            return False


@dataclass
class Running:
    """A pod bound to the node: its volumes, IP and containers (in the spec's order)."""

    uid: str
    namespace: str
    name: str
    directory: str
    started_at: str = field(default_factory=_now)
    reported: str = ""  # the status last written: a kubelet writes only what changed
    pod_ip: str = ""
    netns: str = ""  # its own network namespace, once made
    netns_shared: str = ""  # or the node's, for a hostNetwork pod
    volumes: dict[str, str] = field(default_factory=dict)  # name -> its directory
    containers: dict[str, Container] = field(default_factory=dict)
    ephemeral: dict[str, Container] = field(default_factory=dict)  # as `kubectl debug` adds them


class NodePods:
    """The pods of one lab node."""

    def __init__(
        self, client: KubeClient, node: str, host: dict[str, Any], pods_dir: str, lab_dir: str
    ) -> None:
        self.client = client
        self.node = node
        self.host = host  # the lab host: namespace, address (the pod IP), node_address
        self.pods_dir = pods_dir
        self.lab_dir = lab_dir  # the lab's state directory (state.json: what the images need)
        self.running: dict[str, Running] = {}

    async def sync(self) -> None:
        status, raw = await self.client.request(
            "GET",
            "/api/v1/pods",
            verb="list",
            resource="pods",
            params={"fieldSelector": f"spec.nodeName={self.node}"},
        )
        if status != 200:
            raise KubeError(self.client.context, f"list pods: HTTP {status}")
        pods = json.loads(raw).get("items") or []
        seen = set()
        for pod in pods:
            meta = pod["metadata"]
            uid = meta["uid"]
            seen.add(uid)
            if meta.get("deletionTimestamp"):
                await self._finish(pod)
                continue
            r = self.running.get(uid)
            if r is None:
                r = await self._start(pod)
            else:
                await self._restart_exited(pod, r)
                await self._start_ephemeral(pod, r)
            await self._report(pod, r)
        for uid in [u for u in self.running if u not in seen]:
            await self._stop(self.running.pop(uid))

    async def stop_all(self) -> None:
        for r in list(self.running.values()):
            await self._stop(r)
        self.running.clear()

    # --- start ------------------------------------------------------------------------------

    async def _restart_exited(self, pod: dict[str, Any], r: Running) -> None:
        """restartPolicy Always (a DaemonSet's, a StatefulSet's): a container whose process
        exited starts again after a growing back-off, the pod's other containers go on."""
        spec = pod.get("spec") or {}
        if spec.get("restartPolicy", "Always") != "Always":
            return
        now = asyncio.get_running_loop().time()
        for c_spec in spec.get("containers") or []:
            c = r.containers.get(str(c_spec.get("name", "")))
            if c is None or c.process is None or c.alive:
                continue
            if not c.exited_at:
                c.exited_at = now
            wait = RESTART_BACKOFF_S[min(c.restarts, len(RESTART_BACKOFF_S) - 1)]
            if now - c.exited_at >= wait:
                await self._stop_container(c)
                await self._start_container(pod, c_spec, r, restarts=c.restarts + 1)

    async def _start(self, pod: dict[str, Any]) -> Running:
        meta = pod["metadata"]
        r = Running(
            uid=meta["uid"],
            namespace=meta["namespace"],
            name=meta["name"],
            directory=os.path.join(self.pods_dir, meta["uid"]),
        )
        self.running[r.uid] = r
        os.makedirs(r.directory, mode=0o755, exist_ok=True)
        specs = (pod.get("spec") or {}).get("containers") or []
        try:
            if (pod.get("spec") or {}).get("hostNetwork"):
                # the node's own namespace and address, as a runtime runs hostNetwork pods
                r.pod_ip = str(self.host.get("node_address") or self.host["address"])
                r.netns_shared = self.host["namespace"]
            else:
                r.pod_ip = self.pod_ip(pod)
                r.netns = await asyncio.to_thread(self._pod_network, r.uid, r.pod_ip)
            r.volumes = await self._volumes(pod, r)
        except KubeError as exc:
            # e.g. the Node authorizer has not yet seen the pod that lets this node read its
            # Secret: a kubelet retries the mount, here at the next sync
            print(f"{_now()} pod {r.namespace}/{r.name}: volumes: {exc}", file=sys.stderr)
            self.running.pop(r.uid, None)
            if r.netns:
                await asyncio.to_thread(podnet.remove, r.netns)
            shutil.rmtree(r.directory, ignore_errors=True)
            return r
        except Unsupported as exc:
            for c_spec in specs:
                c = self._container(r, c_spec)
                c.failure, c.reason = str(exc), exc.reason
            return r
        for c_spec in specs:
            await self._start_container(pod, c_spec, r)
        return r

    def _container(self, r: Running, spec: dict[str, Any], *, ephemeral: bool = False) -> Container:
        name = str(spec.get("name", ""))
        c = Container(
            name=name,
            image=str(spec.get("image", "")),
            directory=os.path.join(r.directory, "containers", name),
        )
        os.makedirs(c.directory, mode=0o755, exist_ok=True)
        (r.ephemeral if ephemeral else r.containers)[name] = c
        return c

    async def _start_ephemeral(self, pod: dict[str, Any], r: Running) -> None:
        """Ephemeral containers added to a running pod (pods/ephemeralcontainers, as `kubectl
        debug` adds one) start once, in the pod's namespaces, and are never restarted."""
        if not (r.netns or r.netns_shared):
            return  # the pod's network is not there (its start failed): nothing to join
        for spec in (pod.get("spec") or {}).get("ephemeralContainers") or []:
            if str(spec.get("name", "")) not in r.ephemeral:
                await self._start_container(pod, spec, r, ephemeral=True)

    async def _start_container(
        self,
        pod: dict[str, Any],
        spec: dict[str, Any],
        r: Running,
        *,
        restarts: int = 0,
        ephemeral: bool = False,
    ) -> None:
        c = self._container(r, spec, ephemeral=ephemeral)
        c.restarts = restarts
        try:
            c.process = await self._spawn(pod, spec, r, c)
        except Unsupported as exc:
            c.failure, c.reason = str(exc), exc.reason
            await self._release(c)

    def pod_ip(self, pod: dict[str, Any]) -> str:
        """A database pod (the lab's Cassandra image) has the host's address; any other pod
        the first free address of the node's podCIDR."""
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        if _cassandra_image(str(containers[0].get("image", ""))):
            return str(self.host["address"])
        used = {r.pod_ip for r in self.running.values()}
        for a in pod_addresses(self.host):
            if a not in used:
                return a
        raise Unsupported(f"node {self.node} has no pod address left (the lab gives 4 per node)")

    def _pod_network(self, uid: str, pod_ip: str) -> str:
        """The pod's own network namespace behind the node's (lab/podnet.py)."""
        node_address = self.host.get("node_address") or self.host["address"]
        try:
            return podnet.make(self.host["namespace"], uid, pod_ip, node_address)
        except LabError as exc:
            raise Unsupported(f"pod network: {exc}") from None

    async def _volumes(self, pod: dict[str, Any], r: Running) -> dict[str, str]:
        """Each volume as a directory under the pod's; name -> path."""
        out = {}
        for v in (pod.get("spec") or {}).get("volumes") or []:
            path = os.path.join(r.directory, "volumes", v["name"])
            os.makedirs(path, mode=0o755, exist_ok=True)
            files: dict[str, bytes] = {}
            if "secret" in v:
                files = await self._read(
                    "secrets", r.namespace, v["secret"].get("secretName", ""), v["secret"], True
                )
            elif "configMap" in v:
                files = await self._read(
                    "configmaps", r.namespace, v["configMap"].get("name", ""), v["configMap"], False
                )
            elif "emptyDir" in v:
                os.chmod(path, 0o1777)
            else:
                raise Unsupported(f"volume {v['name']}: only secret, configMap and emptyDir")
            _write_files(path, files)
            out[v["name"]] = path
        return out

    async def _read(
        self, plural: str, namespace: str, name: str, source: dict[str, Any], b64: bool
    ) -> dict[str, bytes]:
        try:
            doc = await self.client.call(
                "GET",
                f"/api/v1/namespaces/{namespace}/{plural}/{name}",
                verb="get",
                resource=plural,
                namespace=namespace,
            )
        except NotFound:
            if source.get("optional"):
                return {}
            raise Unsupported(f"{plural[:-1]} {namespace}/{name} not found") from None
        data = doc.get("data") or {}
        return {k: base64.b64decode(v) if b64 else str(v).encode() for k, v in data.items()}

    async def _spawn(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        r: Running,
        c: Container,
    ) -> asyncio.subprocess.Process:
        name = c.image
        mapped = _cassandra_image(name) or _logger_image(name)
        img = None if mapped else await asyncio.to_thread(image.find, name)
        if img is not None:
            argv, netraw = image_argv(container, img), False
            env = dict(e.split("=", 1) for e in img.env if "=" in e)
            env.setdefault("HOME", "/")
        else:
            argv, netraw = program(container, self.lab_dir, self.host)
            env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}
        pod_ip, host_ip = r.pod_ip, self.host["node_address"]
        env["HOSTNAME"] = r.name
        for e in container.get("env") or []:
            if "value" in e:
                env[e["name"]] = expand(str(e["value"]), env)
            elif "fieldRef" in (e.get("valueFrom") or {}):
                path = e["valueFrom"]["fieldRef"].get("fieldPath", "")
                env[e["name"]] = field_ref(pod, path, pod_ip, host_ip)
        argv = [expand(a, env) for a in argv]
        ctx = {
            **((pod.get("spec") or {}).get("securityContext") or {}),
            **(container.get("securityContext") or {}),
        }
        uid, gid = _user(ctx, img.user if img else "")
        if ctx.get("runAsNonRoot") and uid == 0:
            raise Unsupported("container has runAsNonRoot and image will run as root")
        adds = [str(c).lower() for c in (ctx.get("capabilities") or {}).get("add") or []]
        if netraw and "net_raw" not in adds:
            raise Unsupported("python-netraw needs NET_RAW in the container's capabilities")
        caps = "".join(f",+{c}" for c in adds)
        setpriv = [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            f"--inh-caps=-all{caps}",
            f"--bounding-set=-all{caps}",
        ]
        if img is None and adds:
            # the mapped agent has no file capability to carry NET_RAW: an ambient one stands in
            setpriv.append(f"--ambient-caps={caps.lstrip(',')}")
        if img is not None and ctx.get("allowPrivilegeEscalation") is False:
            setpriv.append("--no-new-privs")
        c.env, c.privileges = env, setpriv[1:]
        read_only = bool(ctx.get("readOnlyRootFilesystem"))
        if img is not None:
            try:
                c.work, c.rootfs = await asyncio.to_thread(image.mount, img, f"{r.uid}-{c.name}")
            except LabError as exc:
                raise Unsupported(str(exc)) from None
            c.image_id = img.id
            script = self._rootfs_mounts(container, r, c, read_only)
            chroot = ["unshare", f"--root={c.rootfs}", f"--wd={img.workdir or '/'}"]
        else:
            script, chroot = self._mounts(container, c, r.volumes, read_only), []
        env_args = [f"{k}={v}" for k, v in env.items()]
        script.append("exec " + shlex.join(["env", "-i", *env_args, *chroot, *setpriv, *argv]))
        log = _open_log(c.log)
        try:
            return await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                r.netns or r.netns_shared,
                "unshare",
                "--mount",
                "--uts",
                "--propagation",
                "private",
                "sh",
                "-ec",
                "\n".join(script),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd="/",
                start_new_session=True,
            )
        finally:
            log.close()

    def _rootfs_mounts(
        self, container: dict[str, Any], r: Running, c: Container, read_only: bool
    ) -> list[str]:
        """The mounts a runtime makes in the image's root filesystem, as shell lines."""
        root, volumes = c.rootfs, r.volumes
        etc = os.path.join(c.directory, "etc")
        os.makedirs(etc, exist_ok=True)
        files = {
            "hosts": f"127.0.0.1\tlocalhost\n::1\tlocalhost\n{r.pod_ip}\t{r.name}\n",
            "hostname": f"{r.name}\n",
            "resolv.conf": "# the lab has no cluster DNS\n",
        }
        for n, text in files.items():
            with open(os.path.join(etc, n), "w", encoding="utf-8") as f:
                f.write(text)

        def q(*parts: str) -> str:
            return shlex.quote(os.path.join(*parts))

        lines = [
            f"hostname {shlex.quote(r.name)}",
            f"mount --bind {q(root)} {q(root)}",
            f"mount -t proc -o nosuid,nodev,noexec proc {q(root, 'proc')}",
            f"mount -t tmpfs -o nosuid,mode=755,size=64k tmpfs {q(root, 'dev')}",
        ]
        for d in ("null", "zero", "full", "random", "urandom", "tty"):
            lines += [f": > {q(root, 'dev', d)}", f"mount --bind /dev/{d} {q(root, 'dev', d)}"]
        lines += [
            f"mkdir -p {q(root, 'dev', 'shm')}",
            f"mount -t tmpfs -o nosuid,nodev,size=64m tmpfs {q(root, 'dev', 'shm')}",
            f"mount -t sysfs -o ro,nosuid,nodev,noexec sysfs {q(root, 'sys')}",
        ]
        for n in files:
            lines += [f": >> {q(root, 'etc', n)}", f"mount --bind {q(etc, n)} {q(root, 'etc', n)}"]
        for m in container.get("volumeMounts") or []:
            source, target = _volume_mount(m, volumes)
            inside = q(root, target.lstrip("/"))
            lines += [f"mkdir -p {inside}", f"mount --bind {shlex.quote(source)} {inside}"]
            if m.get("readOnly"):
                lines.append(f"mount -o remount,bind,ro {inside}")
        if read_only:
            lines.append(f"mount -o remount,bind,ro {q(root)}")
        return lines

    def _mounts(
        self, container: dict[str, Any], c: Container, volumes: dict[str, str], read_only: bool
    ) -> list[str]:
        lines: list[str] = []
        overlaid: set[str] = set()
        targets = [
            os.path.normpath(str(m.get("mountPath", "")))
            for m in container.get("volumeMounts") or []
        ]
        # The lab's "image" is its own Python and netcheck: where a volume would hide them (a
        # checkout under /tmp, where the agent mounts an emptyDir), they are kept aside first
        # and put back at the same paths after the volumes are mounted.
        hidden = sorted(
            p
            for p in image_paths()
            if any(p == t or p.startswith(t.rstrip("/") + "/") for t in targets)
        )
        keep = {p: os.path.join(c.directory, "image", str(i)) for i, p in enumerate(hidden)}
        for p, aside in keep.items():
            os.makedirs(aside, exist_ok=True)
            lines.append(f"mount --bind {shlex.quote(p)} {shlex.quote(aside)}")
        for m in container.get("volumeMounts") or []:
            source, target = _volume_mount(m, volumes)
            top = "/" + target.strip("/").split("/")[0]
            if not os.path.exists(target) and top not in overlaid and top != "/tmp":
                # the host lacks it: an overlay of its top directory that only this pod sees
                upper = os.path.join(c.directory, "overlay", top.strip("/"))
                os.makedirs(os.path.join(upper, "upper"), exist_ok=True)
                os.makedirs(os.path.join(upper, "work"), exist_ok=True)
                lines.append(
                    "mount -t overlay overlay -o "
                    + shlex.quote(f"lowerdir={top},upperdir={upper}/upper,workdir={upper}/work")
                    + f" {shlex.quote(top)}"
                )
                overlaid.add(top)
            lines.append(f"mkdir -p {shlex.quote(target)}")
            lines.append(f"mount --bind {shlex.quote(source)} {shlex.quote(target)}")
            if m.get("readOnly"):
                lines.append(f"mount -o remount,bind,ro {shlex.quote(target)}")
        for p, aside in keep.items():
            lines.append(f"mkdir -p {shlex.quote(p)}")
            lines.append(f"mount --bind {shlex.quote(aside)} {shlex.quote(p)}")
        if read_only:
            # the root filesystem read-only for this pod, where the host lets it be remounted
            lines.append("mount --bind / / 2>/dev/null && mount -o remount,bind,ro / || true")
        return lines

    # --- exec -------------------------------------------------------------------------------

    def find(self, namespace: str, name: str) -> Running | None:
        return next(
            (r for r in self.running.values() if (r.namespace, r.name) == (namespace, name)), None
        )

    def exec_argv(self, c: Container, argv: list[str]) -> list[str]:
        """The command line that runs argv in the container's network and mount namespaces, as
        its user with its capabilities and env; Unsupported when it cannot run."""
        if c.process is None or not c.entered:
            raise Unsupported(f"container {c.name} is not running")
        if c.rootfs:
            # in the image: its files and PATH, its root and working directory
            _in_image(c.rootfs, argv, c.env.get("PATH", image.PATH))
            program, into_root = argv, ["--root", "--wd"]
        else:
            program, into_root = exec_program(c.image, argv, self.lab_dir), []
        # the container's first process (ip netns exec, unshare, sh and the chroot all exec):
        # its namespaces and root are the container's
        return [
            "nsenter",
            f"--target={c.process.pid}",
            "--mount",
            "--net",
            "--uts",
            *into_root,
            "--",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in c.env.items()),
            "setpriv",
            *c.privileges,
            *program,
        ]

    # --- status -----------------------------------------------------------------------------

    async def _probe(self, container: dict[str, Any], pod_ip: str) -> str:
        """Why the readiness probe fails, in a kubelet's words; "" when it passes."""
        probe = (container.get("readinessProbe") or {}).get("httpGet")
        if not probe:
            return ""
        url = f"http://{pod_ip}:{probe.get('port')}{probe.get('path', '/')}"
        try:
            async with (
                aiohttp.ClientSession() as s,
                s.get(url, timeout=aiohttp.ClientTimeout(total=2)) as resp,
            ):
                if 200 <= resp.status < 400:
                    return ""
                return f"Readiness probe failed: HTTP probe failed with statuscode: {resp.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return f"Readiness probe failed: Get {url}: {type(exc).__name__} {exc}".rstrip()

    def _say(self, r: Running, c: Container, why: str) -> None:
        """The kubelet's log (its stderr: kubelet.log in the plane's directory) gets a line
        each time a container's reason for not being Ready changes, so a deploy that timed out
        in a test can be read afterwards."""
        if why != c.said:
            c.said = why
            print(
                f"{_now()} pod {r.namespace}/{r.name} container {c.name} on {self.node}: "
                f"{why or 'Ready'}",
                file=sys.stderr,
            )

    async def _container_status(
        self, spec: dict[str, Any], r: Running, *, ephemeral: bool = False
    ) -> dict[str, Any]:
        c = (r.ephemeral if ephemeral else r.containers).get(str(spec.get("name", "")))
        if c is None:  # its volumes are not mounted yet: tried again at the next sync
            c = Container(
                name=str(spec.get("name", "")), image=str(spec.get("image", "")), directory=""
            )
            c.failure, c.reason = "volumes not mounted yet", "ContainerCreating"
        if c.process is not None and not c.alive and not c.failure and c.process.returncode:
            c.failure = f"the process exited with code {c.process.returncode}"
        if c.alive and not c.entered:
            why = "starting"
        else:
            why = (await self._probe(spec, r.pod_ip)) if c.alive else (c.failure or "exited")
        c.ready = c.entered and not why
        self._say(r, c, why)
        state: dict[str, Any]
        if c.alive and not c.entered:
            state = {"waiting": {"reason": "ContainerCreating"}}
        elif c.alive:
            state = {"running": {"startedAt": c.started_at}}
        elif c.failure and c.process is None:
            state = {
                "waiting": {"reason": c.reason or "CreateContainerError", "message": c.failure}
            }
        else:
            c.finished_at = c.finished_at or _now()
            code = c.process.returncode if c.process else 1
            state = {
                "terminated": {
                    "exitCode": code,
                    "reason": "Completed" if code == 0 else "Error",
                    "message": c.failure,
                    "finishedAt": c.finished_at,
                }
            }
        return {
            "name": c.name,
            "image": c.image,
            "imageID": c.image_id,
            "containerID": f"netcheck-lab://{r.uid}/{c.name}",
            "ready": c.ready,
            "started": c.entered,
            "restartCount": c.restarts,
            "state": state,
        }

    async def _report(self, pod: dict[str, Any], r: Running) -> None:
        specs = (pod.get("spec") or {}).get("containers") or []
        statuses = [await self._container_status(spec, r) for spec in specs]
        # Running once every container was created and one still runs; Ready when all are
        created = [c.process is not None for c in r.containers.values()]
        alive = bool(created) and all(created) and any(st["started"] for st in statuses)
        cond = "True" if statuses and all(st["ready"] for st in statuses) else "False"
        status = {
            "phase": "Running" if alive else "Pending",
            "hostIP": self.host["node_address"],
            "hostIPs": [{"ip": self.host["node_address"]}],
            "podIP": r.pod_ip,
            "podIPs": [{"ip": r.pod_ip}],
            "startTime": r.started_at,
            "conditions": [
                {"type": t, "status": s, "lastTransitionTime": r.started_at}
                for t, s in (
                    ("PodReadyToStartContainers", "True"),
                    ("Initialized", "True"),
                    ("ContainersReady", cond),
                    ("Ready", cond),
                    ("PodScheduled", "True"),
                )
            ],
            "containerStatuses": statuses,
        }
        ephemeral = (pod.get("spec") or {}).get("ephemeralContainers") or []
        if ephemeral:
            status["ephemeralContainerStatuses"] = [
                await self._container_status(spec, r, ephemeral=True)
                for spec in ephemeral
                if str(spec.get("name", "")) in r.ephemeral
            ]
        body = json.dumps({"status": status}).encode()
        if body.decode() == r.reported and pod.get("status", {}).get("phase") == status["phase"]:
            return
        await self.client.request(
            "PATCH",
            f"/api/v1/namespaces/{r.namespace}/pods/{r.name}/status",
            verb="patch",
            resource="pods/status",
            namespace=r.namespace,
            data=body,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        r.reported = body.decode()

    # --- stop -------------------------------------------------------------------------------

    async def _stop(self, r: Running) -> None:
        """Every container stopped at once (a kubelet stops a pod's containers in parallel),
        then the pod's network namespace and files removed."""
        every = [*r.containers.values(), *r.ephemeral.values()]
        await asyncio.gather(*(self._stop_container(c) for c in every))
        if r.netns:
            await asyncio.to_thread(podnet.remove, r.netns)
        shutil.rmtree(r.directory, ignore_errors=True)

    async def _stop_container(self, c: Container) -> None:
        p = c.process
        if p is not None and p.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(p.wait(), STOP_GRACE_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                await p.wait()
        await self._release(c)

    async def _release(self, c: Container) -> None:
        if c.work:
            await asyncio.to_thread(image.release, c.work)
            c.work = c.rootfs = ""

    async def _finish(self, pod: dict[str, Any]) -> None:
        """A pod being deleted: stop its containers, then let the API server remove it."""
        meta = pod["metadata"]
        r = self.running.pop(meta["uid"], None)
        if r is not None:
            await self._stop(r)
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": meta["uid"]},
        }
        with contextlib.suppress(NotFound):
            await self.client.request(
                "DELETE",
                f"/api/v1/namespaces/{meta['namespace']}/pods/{meta['name']}",
                verb="delete",
                resource="pods",
                namespace=meta["namespace"],
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
