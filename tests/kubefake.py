"""A thin fake Kubernetes API server, one per kubeconfig context, for the one thing a real one
here cannot show (tests/test_kube.py names it: the `create` check Kubernetes 1.35 adds on exec's
websocket GET; the lab runs 1.34.4). Everything else runs against the lab's real API servers.

Each fake serves HTTPS on loopback with a bearer token, answers reads (get, lists with label
selectors, metadata-only lists) with Status bodies on errors, evaluates RBAC from the
ClusterRole netcheck ships (probes/rbac/netcheck-user.yaml), and serves websocket exec
(v5/v4.channel.k8s.io frames and Status) through a handler that plays the kubelet and container
runtime. All product logic runs in netcheck itself.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import threading
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import trustme
import yaml
from aiohttp import web

CORE_GROUPS = {"v1": ""}
# (pod, container, argv) -> (exit code or None when it cannot start, stdout, stderr)
ExecHandler = Callable[[dict[str, Any], str, list[str]], Awaitable[tuple[int | None, bytes, bytes]]]
# (pod, container, sinceSeconds or None) -> the log text


def status(code: int, reason: str, message: str) -> web.Response:
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    return web.json_response(body, status=code)


@dataclass
class Rule:
    groups: list[str]
    resources: list[str]
    verbs: list[str]
    names: list[str] = field(default_factory=list)

    def allows(self, group: str, resource: str, verb: str, name: str | None) -> bool:
        return (
            ("*" in self.groups or group in self.groups)
            and ("*" in self.resources or resource in self.resources)
            and ("*" in self.verbs or verb in self.verbs)
            and (not self.names or (name is not None and name in self.names))
        )


def rbac_from_manifest(text: str, user: str) -> list[tuple[Rule, str | None]]:
    """The rules a user holds, each with the namespace its binding limits it to (None: all)."""
    docs = [d for d in yaml.safe_load_all(text) if d]
    roles = {
        d["metadata"]["name"]: [
            Rule(
                groups=r.get("apiGroups", []),
                resources=r.get("resources", []),
                verbs=r.get("verbs", []),
                names=r.get("resourceNames", []),
            )
            for r in d.get("rules", [])
        ]
        for d in docs
        if d["kind"] == "ClusterRole"
    }
    out: list[tuple[Rule, str | None]] = []
    for d in docs:
        if d["kind"] not in ("ClusterRoleBinding", "RoleBinding"):
            continue
        if not any(sub.get("name") == user for sub in d.get("subjects", [])):
            continue
        scope = d["metadata"].get("namespace") if d["kind"] == "RoleBinding" else None
        out.extend((rule, scope) for rule in roles[d["roleRef"]["name"]])
    return out


def matches_selector(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k.rstrip("=")) != v:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


@dataclass
class FakeNode:
    """A Kubernetes node of the fake cluster."""

    name: str
    internal_ip: str
    zone: str
    region: str
    pod_cidr: str
    taints: list[dict[str, str]] = field(default_factory=list)


class FakeApiServer:
    def __init__(self, context: str, *, token: str, cert: trustme.LeafCert) -> None:
        self.context = context
        self.token = token
        self.cert = cert
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.rules: list[tuple[Rule, str | None]] | None = None  # None: everything allowed
        self.port = 0
        self.version = "v1.31.4"
        # the kubelet's side of exec (the test plays the container runtime)
        self.exec_handler: ExecHandler | None = None
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- store

    def put(self, obj: dict[str, Any]) -> None:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", "2026-11-24T00:00:00Z")
        meta.setdefault("resourceVersion", "1")
        api_version, plural = obj["apiVersion"], PLURALS[obj["kind"]]
        with self._lock:
            self.objects[(api_version, plural, meta.get("namespace", ""), meta["name"])] = obj

    def add_node(self, node: FakeNode) -> None:
        self.put(
            {
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": node.name,
                    "labels": {
                        "kubernetes.io/hostname": node.name,
                        "topology.kubernetes.io/zone": node.zone,
                        "topology.kubernetes.io/region": node.region,
                    },
                },
                "spec": {"podCIDR": node.pod_cidr, "podCIDRs": [node.pod_cidr]}
                | ({"taints": node.taints} if node.taints else {}),
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": node.internal_ip},
                        {"type": "Hostname", "address": node.name},
                    ],
                    "conditions": [{"type": "Ready", "status": "True"}],
                },
            }
        )

    def all(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        plural = PLURALS[kind]
        with self._lock:
            return [
                o
                for (_, p, ns, _), o in self.objects.items()
                if p == plural and (namespace is None or ns == namespace)
            ]

    # ---------------------------------------------------------------- http

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 << 20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def allowed(
        self, group: str, resource: str, verb: str, name: str | None, namespace: str = ""
    ) -> bool:
        if self.rules is None:
            return True
        return any(
            r.allows(group, resource, verb, name) and (scope is None or scope == namespace)
            for r, scope in self.rules
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return status(401, "Unauthorized", "Unauthorized")
        if request.path == "/version":
            return web.json_response(
                {"major": "1", "minor": self.version.split(".")[1], "gitVersion": self.version}
            )
        parts = [p for p in request.path.split("/") if p]
        if parts[:2] == ["api", "v1"]:
            api_version, rest = "v1", parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        else:
            return status(404, "NotFound", "the server could not find the requested resource")
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest:
            return status(404, "NotFound", "the server could not find the requested resource")
        plural, name, sub = rest[0], (rest[1] if len(rest) > 1 else None), rest[2:]
        group = api_version.rpartition("/")[0]
        if plural not in PLURALS.values():
            return status(404, "NotFound", "the server could not find the requested resource")
        if sub == ["exec"] and plural == "pods" and name is not None:
            # websocket exec is a GET, authorized as `get`; 1.35+ also checks `create`
            # (AuthorizePodWebsocketUpgradeCreatePermission, KEP-4006)
            verbs = ["get"] + (["create"] if int(self.version.split(".")[1]) >= 35 else [])
            for verb in verbs:
                if not self.allowed("", "pods/exec", verb, None, namespace):
                    return self.forbidden(verb, "pods/exec", "", namespace)
            return await self.exec(request, namespace, name)
        if request.method != "GET":  # writes: the real servers (test_kube_real)
            return status(405, "MethodNotAllowed", "this fake serves reads only")
        verb = "get" if name else "list"
        # a namespace object's own name is its namespace for RBAC
        rbac_ns = name if plural == "namespaces" and name else namespace
        if not self.allowed(group, plural, verb, name, rbac_ns):
            return self.forbidden(verb, plural, group, namespace)
        if name is None:
            return self.list(request, api_version, plural, namespace or None)
        with self._lock:
            obj = self.objects.get((api_version, plural, namespace, name))
        if obj is None:
            return status(404, "NotFound", f'{plural} "{name}" not found')
        return web.json_response(obj)

    def forbidden(self, verb: str, resource: str, group: str, namespace: str) -> web.Response:
        where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
        return status(
            403,
            "Forbidden",
            f'{resource} is forbidden: User "netcheck-ci" cannot {verb} resource "{resource}" '
            f'in API group "{group}"{where}',
        )

    def list(
        self, request: web.Request, api_version: str, plural: str, namespace: str | None
    ) -> web.Response:
        selector = request.query.get("labelSelector", "")
        fields = request.query.get("fieldSelector", "")
        with self._lock:
            items = [
                copy.deepcopy(o)
                for (av, p, ns, _), o in sorted(self.objects.items())
                if av == api_version and p == plural and (namespace is None or ns == namespace)
            ]
        items = [
            o
            for o in items
            if matches_selector(o["metadata"].get("labels", {}), selector)
            and matches_fields(o, fields)
        ]
        metadata_only = "as=PartialObjectMetadataList" in request.headers.get("Accept", "")
        if metadata_only:
            return web.json_response(
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": {"resourceVersion": "1"},
                    # as kube-apiserver v1.34 answers an empty metadata-only list
                    "items": [
                        {
                            "kind": "PartialObjectMetadata",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": o["metadata"],
                        }
                        for o in items
                    ]
                    or None,
                }
            )
        kind = {v: k for k, v in PLURALS.items()}[plural]
        return web.json_response(
            {
                "kind": f"{kind}List",
                "apiVersion": api_version,
                "metadata": {"resourceVersion": "1"},
                "items": items,
            }
        )

    def container_of(
        self, request: web.Request, namespace: str, name: str
    ) -> tuple[dict[str, Any], str] | web.Response:
        with self._lock:
            pod = self.objects.get(("v1", "pods", namespace, name))
        if pod is None:
            return status(404, "NotFound", f'pods "{name}" not found')
        names = [c["name"] for c in pod["spec"].get("containers", [])]
        container = request.query.get("container", "")
        if not container and len(names) == 1:
            container = names[0]
        if not container:
            return status(
                400,
                "BadRequest",
                f"a container name must be specified for pod {name}, "
                f"choose one of: [{' '.join(names)}]",
            )
        if container not in names:
            return status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        return pod, container

    async def exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        found = self.container_of(request, namespace, name)
        if isinstance(found, web.Response):
            return found
        pod, container = found
        ws = web.WebSocketResponse(protocols=("v5.channel.k8s.io", "v4.channel.k8s.io"))
        if not ws.can_prepare(request).ok:
            return status(400, "BadRequest", "Upgrade request required")
        if self.exec_handler is None:
            return status(500, "InternalError", "no container runtime behind this fake")
        await ws.prepare(request)
        argv = request.query.getall("command", [])
        code, out, err = await self.exec_handler(pod, container, argv)
        for channel, data in ((1, out), (2, err)):
            for i in range(0, len(data), 32 << 10):  # the kubelet streams in chunks
                await ws.send_bytes(bytes([channel]) + data[i : i + (32 << 10)])
        if code == 0:
            doc: dict[str, Any] = {"metadata": {}, "status": "Success"}
        elif code is None:  # the runtime could not start it
            doc = {
                "metadata": {},
                "status": "Failure",
                "reason": "InternalError",
                "message": err.decode(errors="replace").strip(),
            }
        else:
            doc = {
                "metadata": {},
                "status": "Failure",
                "message": f"command terminated with non-zero exit code: exit status {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        await ws.send_bytes(b"\x03" + json.dumps(doc).encode())
        await ws.close()
        return ws


def matches_fields(obj: dict[str, Any], selector: str) -> bool:
    for term in filter(None, selector.split(",")):
        k, _, v = term.partition("=")
        cur: Any = obj
        for part in k.split("."):
            cur = cur.get(part, "") if isinstance(cur, dict) else ""
        if str(cur) != v:
            return False
    return True


PLURALS = {
    "Namespace": "namespaces",
    "Node": "nodes",
    "Pod": "pods",
    "Service": "services",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "ServiceAccount": "serviceaccounts",
    "Event": "events",
    "DaemonSet": "daemonsets",
    "EndpointSlice": "endpointslices",
    "NetworkPolicy": "networkpolicies",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "ClientConfig": "clientconfigs",
    "ServiceCIDR": "servicecidrs",
}


# ---------------------------------------------------------------- running them


class FakeClusters:
    """Fake API servers for several contexts on one event loop in a background thread."""

    def __init__(self, contexts: list[str]) -> None:
        self.ca = trustme.CA()
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        self.apis = {
            c: FakeApiServer(c, token=f"token-{c.lower()}-{uuid.uuid4().hex}", cert=cert)
            for c in contexts
        }
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runners: list[web.AppRunner] = []

    def __enter__(self) -> FakeClusters:
        self._thread.start()
        for api in self.apis.values():
            asyncio.run_coroutine_threadsafe(self._start(api), self._loop).result(10)
        return self

    async def _start(self, api: FakeApiServer) -> None:
        ctx = __import__("ssl").create_default_context(__import__("ssl").Purpose.CLIENT_AUTH)
        api.cert.configure_cert(ctx)
        runner = web.AppRunner(api.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        api.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runners.append(runner)

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            for r in self._runners:
                await r.cleanup()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def kubeconfig(self, current: str | None = None, **server_of: str) -> str:
        ca = base64.b64encode(self.ca.cert_pem.bytes()).decode()
        clusters, users, contexts = [], [], []
        for name, api in self.apis.items():
            server = server_of.get(name, f"https://127.0.0.1:{api.port}")
            clusters.append(
                {
                    "name": f"{name.lower()}-cluster",
                    "cluster": {"server": server, "certificate-authority-data": ca},
                }
            )
            users.append({"name": f"{name.lower()}-user", "user": {"token": api.token}})
            contexts.append(
                {
                    "name": name,
                    "context": {
                        "cluster": f"{name.lower()}-cluster",
                        "user": f"{name.lower()}-user",
                    },
                }
            )
        return yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": clusters,
                "users": users,
                "contexts": contexts,
                "current-context": current or next(iter(self.apis)),
            }
        )


__all__ = ["FakeApiServer", "FakeClusters", "FakeNode"]
