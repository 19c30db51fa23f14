"""The lab kubelet's API on port 10250: what the API server asks a kubelet for `pods/log`.

HTTPS with a serving certificate from the cluster's CA; a client must present a certificate of
that CA (the API server's --kubelet-client-certificate), as a kubelet requires. The API server
connects to a node's InternalIP; those addresses are local to the control plane's namespace,
where this server listens on each of them and answers for that node's pods.

`GET /containerLogs/NAMESPACE/POD/CONTAINER` serves the container's output with `tailLines`
and `limitBytes`; `sinceSeconds` can only be honoured as a whole (the lab's container logs
carry no timestamps per line): a log not written to within that window is empty.
Not yet: `/exec/...` (pods/exec).
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable

from aiohttp import web

from netcheck.lab.pods import NodePods

KUBELET_PORT = 10250
MAX_LOG_BYTES = 16 << 20


def _tail(data: bytes, lines: int | None, limit: int | None) -> bytes:
    if lines is not None:
        data = b"".join(data.splitlines(keepends=True)[-lines:]) if lines > 0 else b""
    if limit is not None:
        data = data[-limit:]
    return data


def _read_log(path: str, since: int | None) -> bytes:
    """The last MAX_LOG_BYTES of a container's output; empty when not written to within
    `since` seconds."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - MAX_LOG_BYTES))
            data = f.read()
        if since is not None and os.path.getmtime(path) < time.time() - since:
            return b""
        return data
    except OSError:
        return b""


def _int_param(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise web.HTTPBadRequest(text=f"{name} must be a non-negative integer")
    return int(raw)


def build_app(node_of: Callable[[str], NodePods | None]) -> web.Application:
    """node_of: the node whose InternalIP a request came to."""

    async def container_logs(request: web.Request) -> web.StreamResponse:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        node = node_of(str(sockname[0])) if sockname else None
        if node is None:
            raise web.HTTPNotFound(text="no node at this address")
        # one container per lab pod: its name is not needed to find the log
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        running = next(
            (r for r in node.running.values() if (r.namespace, r.name) == (ns, pod)), None
        )
        if running is None:
            raise web.HTTPNotFound(text=f"pod {ns}/{pod} does not run on node {node.node}")
        lines = _int_param(request, "tailLines")
        limit = min(_int_param(request, "limitBytes") or MAX_LOG_BYTES, MAX_LOG_BYTES)
        since = _int_param(request, "sinceSeconds")
        data = _read_log(os.path.join(running.directory, "container.log"), since)
        return web.Response(
            body=_tail(data, lines, limit), content_type="text/plain", charset="utf-8"
        )

    app = web.Application()
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    return app


def tls_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED  # only the API server's kubelet client certificate
    return ctx


async def serve(nodes: dict[str, NodePods], cert: str, key: str, client_ca: str) -> web.AppRunner:
    """Listen on every node address (InternalIP -> its pods) and return the runner to stop."""
    runner = web.AppRunner(build_app(nodes.get), access_log=None)
    await runner.setup()
    ctx = tls_context(cert, key, client_ca)
    for address in nodes:
        await web.TCPSite(runner, address, KUBELET_PORT, ssl_context=ctx).start()
    return runner
