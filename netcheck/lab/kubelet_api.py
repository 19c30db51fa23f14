"""The lab kubelet's API on port 10250: what the API server asks a kubelet for `pods/log`.

HTTPS with a serving certificate from the cluster's CA; a client must present a certificate of
that CA (the API server's --kubelet-client-certificate), as a kubelet requires. The API server
connects to a node's InternalIP; those addresses are local to the control plane's namespace,
where this server listens on each of them and answers for that node's pods.

`GET /containerLogs/NAMESPACE/POD/CONTAINER` serves the container's output with `tailLines`
and `limitBytes`; `sinceSeconds` can only be honoured as a whole (the lab's container logs
carry no timestamps per line): a log not written to within that window is empty.

`GET /exec/NAMESPACE/POD/CONTAINER?command=...&output=1&error=1` upgraded to a websocket with
subprotocol `v4.channel.k8s.io`: what the API server passes on when a client asks it for v4
(netcheck, and the Kubernetes Python client, do). Frames start with their channel (1 stdout,
2 stderr, 3 the final metav1.Status), as a kubelet's. A client that asks the API server for
v5 (kubectl 1.30+) gets its stream translated to SPDY/3.1 there, which this kubelet does not
speak: such a request is refused with a 400 that says so. No stdin and no tty (netcheck uses
neither); a command runs at most EXEC_LIMIT_S, at most EXEC_PARALLEL at once per kubelet.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import ssl
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from netcheck.lab.pods import Container, NodePods, Unsupported

KUBELET_PORT = 10250
MAX_LOG_BYTES = 16 << 20
EXEC_PROTOCOL = "v4.channel.k8s.io"
EXEC_LIMIT_S = 300.0
EXEC_PARALLEL = 16
EXEC_CHUNK = 32 << 10
STDOUT, STDERR, ERROR = 1, 2, 3


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


def _status(failure: str = "", code: int | None = None) -> bytes:
    """The metav1.Status a kubelet writes on the error channel when a command ends."""
    if not failure:
        return json.dumps({"metadata": {}, "status": "Success"}).encode()
    doc: dict[str, Any] = {"metadata": {}, "status": "Failure", "message": failure}
    if code is not None:
        doc["reason"] = "NonZeroExitCode"
        doc["details"] = {"causes": [{"reason": "ExitCode", "message": str(code)}]}
    else:
        doc["reason"] = "InternalError"
        doc["code"] = 500
    return json.dumps(doc).encode()


async def _pump(stream: asyncio.StreamReader | None, ws: web.WebSocketResponse, ch: int) -> None:
    if stream is None:
        return
    while chunk := await stream.read(EXEC_CHUNK):
        await ws.send_bytes(bytes([ch]) + chunk)


async def _run_exec(ws: web.WebSocketResponse, argv: list[str], command: list[str]) -> None:
    """Run one command, its output to the websocket, its end as a Status on channel 3."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(EXEC_LIMIT_S):
            await asyncio.gather(
                _pump(proc.stdout, ws, STDOUT), _pump(proc.stderr, ws, STDERR), proc.wait()
            )
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        await ws.send_bytes(
            bytes([ERROR]) + _status(f"the lab kubelet stopped the command after {EXEC_LIMIT_S:g}s")
        )
        return
    finally:
        if proc.returncode is None:  # the client went away
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
    code = proc.returncode
    failure = (
        ""
        if code == 0
        else (
            "command terminated with non-zero exit code: error executing command "
            f"{command}, exit code {code}"
        )
    )
    await ws.send_bytes(bytes([ERROR]) + _status(failure, code if code else None))


def build_app(node_of: Callable[[str], NodePods | None]) -> web.Application:
    """node_of: the node whose InternalIP a request came to."""
    running_execs = asyncio.Semaphore(EXEC_PARALLEL)

    def container_of(request: web.Request) -> tuple[NodePods, Container]:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        node = node_of(str(sockname[0])) if sockname else None
        if node is None:
            raise web.HTTPNotFound(text="no node at this address")
        ns, pod = request.match_info["namespace"], request.match_info["pod"]
        running = node.find(ns, pod)
        if running is None:
            raise web.HTTPNotFound(text=f"pod {ns}/{pod} does not run on node {node.node}")
        name = request.match_info["container"]
        container = running.containers.get(name) or running.ephemeral.get(name)
        if container is None:
            raise web.HTTPBadRequest(text=f"container {name} is not valid for pod {ns}/{pod}")
        return node, container

    async def container_exec(request: web.Request) -> web.StreamResponse:
        node, container = container_of(request)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise web.HTTPBadRequest(
                text="the lab kubelet serves exec over websockets (v4.channel.k8s.io), not "
                "SPDY: a client that asks the API server for v5 is translated to SPDY there"
            )
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")]
        if EXEC_PROTOCOL not in offered:
            raise web.HTTPBadRequest(text=f"the lab kubelet speaks {EXEC_PROTOCOL} only")
        q = request.query
        if q.get("input") == "1" or q.get("tty") == "1":
            raise web.HTTPBadRequest(text="the lab kubelet runs commands without stdin or tty")
        command = q.getall("command", [])
        if not command:
            raise web.HTTPBadRequest(text="no command given")
        ws = web.WebSocketResponse(protocols=(EXEC_PROTOCOL,))
        await ws.prepare(request)
        # a kubelet opens each channel with an empty frame
        for ch in (STDOUT, STDERR, ERROR):
            await ws.send_bytes(bytes([ch]))
        try:
            argv = node.exec_argv(container, list(command))
        except Unsupported as exc:
            await ws.send_bytes(bytes([ERROR]) + _status(str(exc)))
        else:
            async with running_execs:
                await _run_exec(ws, argv, list(command))
        await ws.close()
        return ws

    async def container_logs(request: web.Request) -> web.StreamResponse:
        _, container = container_of(request)
        lines = _int_param(request, "tailLines")
        limit = min(_int_param(request, "limitBytes") or MAX_LOG_BYTES, MAX_LOG_BYTES)
        since = _int_param(request, "sinceSeconds")
        data = _read_log(container.log, since)
        return web.Response(
            body=_tail(data, lines, limit), content_type="text/plain", charset="utf-8"
        )

    app = web.Application()
    app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", container_logs)
    app.router.add_route("*", "/exec/{namespace}/{pod}/{container}", container_exec)
    return app


def tls_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert, key)
    ctx.load_verify_locations(cafile=client_ca)
    ctx.verify_mode = ssl.CERT_REQUIRED  # only the API server's kubelet client certificate
    return ctx


MAX_HEAD = 1 << 20


async def serve(nodes: dict[str, NodePods], cert: str, key: str, client_ca: str) -> web.AppRunner:
    """Listen on every node address (InternalIP -> its pods) and return the runner to stop."""
    # a kubelet's server takes request heads up to 1 MiB (MaxHeaderBytes 1 << 20): exec's
    # command travels in the URL, and netcheck's probe-once batch with it
    runner = web.AppRunner(
        build_app(nodes.get), access_log=None, max_line_size=MAX_HEAD, max_field_size=MAX_HEAD
    )
    await runner.setup()
    ctx = tls_context(cert, key, client_ca)
    for address in nodes:
        await web.TCPSite(runner, address, KUBELET_PORT, ssl_context=ctx).start()
    return runner
