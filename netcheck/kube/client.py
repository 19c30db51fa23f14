"""An async client for the few Kubernetes API calls netcheck makes (aiohttp, JSON in and out)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import aiohttp

from netcheck.kube.config import Connection
from netcheck.kube.errors import (
    ApiFailed,
    ApiUnreachable,
    Conflict,
    Forbidden,
    KubeError,
    NotFound,
    Unauthorized,
)
from netcheck.kube.podexec import (
    MAX_FRAME,
    PROTOCOLS,
    ExecOutput,
    Frames,
    exec_params,
    exec_path,
    log_params,
    log_path,
)
from netcheck.kube.resources import Kind

# Ask for metadata only: a Secret listed this way never carries its data over the wire.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"


CONNECTIONS = 64  # to one API server at once


async def read_at_most(resp: aiohttp.ClientResponse, limit: int | None) -> bytes | None:
    """The body, or None when it runs past limit bytes (read no further than that)."""
    if limit is None:
        return await resp.read()
    if resp.content_length is not None and resp.content_length > limit:
        return None
    body = bytearray()
    async for chunk in resp.content.iter_chunked(64 << 10):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


class KubeClient:
    """One context's API server. Use as an async context manager."""

    def __init__(self, conn: Connection, timeout_s: float = 15.0) -> None:
        self.conn = conn
        self.context = conn.context
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._upgraded = False  # a websocket (exec) was opened
        self._auth: dict[str, str] = {}  # refreshed credentials (an exec plugin run again)
        self._auth_generation = 0
        self._refreshing = asyncio.Lock()
        # a request starts its clock once it holds a connection: one waiting for the pool
        # (a thousand agents asked through one API server) must not time out there
        self._slots = asyncio.Semaphore(CONNECTIONS)

    async def __aenter__(self) -> KubeClient:
        self._session = aiohttp.ClientSession(
            headers=dict(self.conn.headers),
            connector=aiohttp.TCPConnector(
                ssl=self.conn.ssl if self.conn.ssl else False, limit=CONNECTIONS
            ),
        )
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            if self._upgraded:
                # a websocket's TLS connection leaves the pool, so close() cannot wait for it:
                # give its TLS shutdown the moment aiohttp's "Graceful Shutdown" docs ask for
                await asyncio.sleep(0.25)

    def _unreachable(self, exc: aiohttp.ClientConnectorError) -> ApiUnreachable:
        return ApiUnreachable(
            self.context,
            f"API server {self.conn.server} is unreachable "
            f"({exc.os_error.strerror or exc}); check the network path or VPN to it",
        )

    def _unauthorized(self) -> Unauthorized:
        return Unauthorized(
            self.context,
            "the API server rejected the credentials (HTTP 401: missing or expired); "
            "log in again or refresh the kubeconfig's token",
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        namespace: str | None = None,
        params: dict[str, str] | None = None,
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
        max_bytes: int | None = None,
    ) -> tuple[int, bytes]:
        """Send one request; map transport failures and 401/403/404/409 to KubeError kinds.

        A 401 with an exec plugin's credentials runs the plugin again (its token expired during
        the run) and sends the request once more. max_bytes: a longer answer is an ApiFailed
        (what a pod behind the proxy answers is not the API server's to bound)."""
        generation = self._auth_generation
        status, raw = await self._send(
            method, path, params, body, data, headers, timeout_s, max_bytes
        )
        if status == 401 and self.conn.refresh is not None:
            async with self._refreshing:  # one plugin run for every request that got the 401
                if self._auth_generation == generation:
                    self._auth = dict(await asyncio.to_thread(self.conn.refresh))
                    self._auth_generation += 1
            status, raw = await self._send(
                method, path, params, body, data, headers, timeout_s, max_bytes
            )
        if status == 401:
            raise self._unauthorized()
        if status == 403:
            # the server's own verb: a server-side apply (patch) that would create the object
            # is refused for `create`
            raise Forbidden(self.context, forbidden_verb(raw) or verb, resource, namespace)
        if status == 404:
            raise NotFound(self.context, f"{resource} {path} not found ({_status_message(raw)})")
        if status == 409:
            raise Conflict(self.context, f"{resource} already exists: {_status_message(raw)}")
        return status, raw

    async def _send(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None,
        body: Any,
        data: bytes | None,
        headers: dict[str, str] | None,
        timeout_s: float | None,
        max_bytes: int | None = None,
    ) -> tuple[int, bytes]:
        assert self._session is not None, "use KubeClient as an async context manager"
        total = timeout_s if timeout_s is not None else self._timeout_s
        try:
            async with (
                self._slots,
                self._session.request(
                    method,
                    self.conn.server + path,
                    params=params,
                    json=body,
                    data=data,
                    headers={**self._auth, **(headers or {})},
                    timeout=aiohttp.ClientTimeout(total=total, sock_connect=min(total, 5.0)),
                ) as resp,
            ):
                raw = await read_at_most(resp, max_bytes)
                status = resp.status
                if raw is None:
                    raise ApiFailed(
                        self.context,
                        f"{method} {path} answered more than {max_bytes} bytes; "
                        "the answer was dropped",
                        status,
                    )
        except aiohttp.ClientConnectorCertificateError as exc:
            raise ApiUnreachable(
                self.context,
                f"TLS to {self.conn.server} failed ({exc.certificate_error}); "
                "check the cluster's certificate-authority in the kubeconfig",
            ) from None
        except aiohttp.ClientConnectorError as exc:
            raise self._unreachable(exc) from None
        except TimeoutError:
            raise ApiUnreachable(
                self.context,
                f"API server {self.conn.server} did not answer {method} {path} within "
                f"{total:.0f}s; check the network path to it",
            ) from None
        except aiohttp.ClientError as exc:
            raise ApiUnreachable(
                self.context, f"API server {self.conn.server}: {type(exc).__name__}: {exc}"
            ) from None
        return status, raw

    async def call(
        self,
        method: str,
        path: str,
        *,
        verb: str,
        resource: str,
        namespace: str | None = None,
        params: dict[str, str] | None = None,
        body: Any = None,
        accept: str | None = None,
    ) -> Any:
        headers = {"Accept": accept} if accept else None
        status, raw = await self.request(
            method,
            path,
            verb=verb,
            resource=resource,
            namespace=namespace,
            params=params,
            body=body,
            headers=headers,
        )
        if not 200 <= status < 300:
            raise ApiFailed(
                self.context,
                f"{verb} {resource}: HTTP {status}: {_status_message(raw)}",
                status,
            )
        try:
            return json.loads(raw)
        except ValueError:
            raise ApiFailed(
                self.context,
                f"{verb} {resource}: the API server answered something that is not JSON; "
                "check that the kubeconfig's server URL points at a Kubernetes API server",
                status,
            ) from None

    async def version(self) -> dict[str, Any]:
        doc = await self.call("GET", "/version", verb="get", resource="version")
        if not isinstance(doc, dict) or "gitVersion" not in doc:
            raise ApiFailed(
                self.context,
                "GET /version did not return a Kubernetes version; "
                "check that the server URL points at a Kubernetes API server",
                200,
            )
        return doc

    async def list(
        self,
        kind: Kind,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        metadata_only: bool = False,
    ) -> list[dict[str, Any]]:
        params: dict[str, str] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        items: list[dict[str, Any]] = []
        while True:
            doc = await self.call(
                "GET",
                kind.path(namespace),
                verb="list",
                resource=kind.plural,
                namespace=namespace,
                params=params,
                accept=METADATA_ONLY if metadata_only else None,
            )
            # a real API server answers an empty metadata-only list with "items": null
            if not isinstance(doc, dict) or not (
                "items" in doc and isinstance(doc["items"] or [], list)
            ):
                raise ApiFailed(
                    self.context, f"list {kind.plural}: answer has no 'items' list", 200
                )
            items.extend(i for i in doc.get("items") or [] if isinstance(i, dict))
            cont = (doc.get("metadata") or {}).get("continue")
            if not cont:
                return items
            params["continue"] = str(cont)

    async def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any]:
        doc = await self.call(
            "GET", kind.path(namespace, name), verb="get", resource=kind.plural, namespace=namespace
        )
        if not isinstance(doc, dict):
            raise ApiFailed(self.context, f"get {kind.plural}/{name}: not an object", 200)
        return doc

    async def apply(self, kind: Kind, obj: dict[str, Any]) -> dict[str, Any]:
        """Server-side apply: creates or updates, so deploy can run again."""
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if kind.namespaced else None
        status, raw = await self.request(
            "PATCH",
            kind.path(namespace, str(meta.get("name", ""))),
            verb="patch",
            resource=kind.plural,
            namespace=namespace,
            params={"fieldManager": "netcheck", "force": "true"},
            data=json.dumps(obj).encode(),
            headers={"Content-Type": "application/apply-patch+yaml"},
        )
        if not 200 <= status < 300:
            raise ApiFailed(
                self.context,
                f"apply {kind.plural}/{meta.get('name')}: HTTP {status}: {_status_message(raw)}",
                status,
            )
        doc = json.loads(raw)
        return doc if isinstance(doc, dict) else {}

    async def delete(self, kind: Kind, name: str, namespace: str | None = None) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self.call(
                "DELETE",
                kind.path(namespace, name),
                verb="delete",
                resource=kind.plural,
                namespace=namespace,
                body={
                    "kind": "DeleteOptions",
                    "apiVersion": "v1",
                    "propagationPolicy": "Background",
                },
            )
        except NotFound:
            return False
        return True

    async def exec(
        self, namespace: str, pod: str, container: str, argv: Sequence[str], timeout_s: float
    ) -> ExecOutput:
        """Run argv in a container (websocket exec); raises KubeError when it cannot start."""
        assert self._session is not None, "use KubeClient as an async context manager"
        url = self.conn.server + exec_path(namespace, pod)
        frames = Frames()
        self._upgraded = True
        try:
            async with (
                self._slots,
                asyncio.timeout(timeout_s),
                self._session.ws_connect(
                    url,
                    headers=self._auth,
                    params=exec_params(container, argv),
                    protocols=PROTOCOLS,
                    autoping=True,
                    max_msg_size=MAX_FRAME,
                ) as ws,
            ):
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.BINARY:
                        frames.add(msg.data)
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        break
        except aiohttp.WSServerHandshakeError as exc:
            raise self._exec_refused(exc.status, namespace, pod, container) from None
        except TimeoutError:
            return ExecOutput(
                stdout="",
                stderr="",
                exit_code=None,
                message=f"no answer within {timeout_s:g}s",
            )
        except aiohttp.ClientConnectorError as exc:
            raise self._unreachable(exc) from None
        except aiohttp.ClientError as exc:
            raise ApiUnreachable(
                self.context, f"exec into {namespace}/{pod}: {type(exc).__name__}: {exc}"
            ) from None
        return frames.result()

    def _exec_refused(self, status: int, namespace: str, pod: str, container: str) -> KubeError:
        if status == 401:
            return self._unauthorized()
        if status == 403:
            return Forbidden(self.context, "get and create", "pods/exec", namespace)
        if status == 404:
            return NotFound(self.context, f"pod {namespace}/{pod} not found")
        if status == 400:
            return ApiFailed(
                self.context,
                f"exec into {namespace}/{pod} refused (HTTP 400): check that the pod is "
                f"running and has a container named {container!r}",
                status,
            )
        if status >= 500:
            return ApiFailed(
                self.context,
                f"exec into {namespace}/{pod} failed on the API server's side (HTTP {status}); "
                "check that the node's kubelet answers (kubectl exec shows the same)",
                status,
            )
        return ApiFailed(
            self.context,
            f"exec into {namespace}/{pod}: HTTP {status} instead of a websocket upgrade; "
            "check that nothing between you and the API server strips websockets",
            status,
        )

    async def logs(
        self, namespace: str, pod: str, container: str, since_s: float, timeout_s: float
    ) -> str:
        """The container's log lines of the last since_s seconds (the logs API)."""
        status, raw = await self.request(
            "GET",
            log_path(namespace, pod),
            verb="get",
            resource="pods/log",
            namespace=namespace,
            params=log_params(container, since_s),
            timeout_s=timeout_s,
        )
        if status != 200:
            raise ApiFailed(
                self.context,
                f"logs of {namespace}/{pod} container {container}: HTTP {status}: "
                f"{_status_message(raw)}",
                status,
            )
        return raw.decode("utf-8", "replace")


_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")
_CANNOT = re.compile(r'cannot ([a-z]{1,16}) resource "')


def forbidden_verb(raw: bytes) -> str | None:
    """The verb RBAC refused, as a 403's Status message names it (`User "u" cannot create
    resource "serviceaccounts" ...`); None when the answer does not say."""
    try:
        doc = json.loads(raw[:65536])
    except ValueError:
        return None
    message = doc.get("message") if isinstance(doc, dict) else None
    m = _CANNOT.search(message[:2048]) if isinstance(message, str) else None
    return m.group(1) if m and m.group(1) in _VERBS else None


def _status_message(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
        if isinstance(doc, dict) and doc.get("message"):
            return str(doc["message"]).splitlines()[0][:200]
    except ValueError:
        pass
    text = raw.decode("utf-8", "replace").strip()
    return (text.splitlines()[0] if text else "empty answer")[:200]


__all__ = ["KubeClient", "KubeError"]
