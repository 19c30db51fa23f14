"""Management API probe: readiness and the node's view of every endpoint, on a pod's 8080.

The Management API (k8ssandra, Mission Control) runs next to Cassandra in the `cassandra`
container. cass-operator's readiness probe is its GET /api/v0/probes/readiness (200 "OK" once
Cassandra answers `SELECT * FROM system.local`, 500 otherwise), and it reads
GET /api/v0/metadata/endpoints: the node's gossip state of every endpoint, as
`{"entity": [{"ENDPOINT_IP": ..., "IS_ALIVE": "true", "STATUS_WITH_PORT": "NORMAL,...", ...}]}`
with every value a string. The agent next to the pod asks both; a node that is not ready is a
result with its readiness answer, not a failure of the probe. Only these two fixed paths are
ever requested.
"""

from __future__ import annotations

from netcheck.model.evidence import MgmtView
from netcheck.model.gossip import MGMT_API_PORT
from netcheck.model.mgmt_endpoints import (
    ENDPOINTS_PATH,
    EndpointsBodyError,
    endpoints_view,
)
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import BadAnswerError, Dialer, close, dial, failed, result
from netcheck.probes.http import request

READINESS_PATH = "/api/v0/probes/readiness"
MAX_BODY = 8 * 1024 * 1024  # 4096 endpoints with 256 vnode tokens each fit
_TEXT = 200


async def probe(dialer: Dialer, target: Target, timeout: float, _: int) -> TargetResult:
    if target.port != MGMT_API_PORT:
        return result(
            target,
            Outcome.NOT_MEASURED,
            detail=f"refused by the agent: the Management API is only asked on {MGMT_API_PORT}",
        )
    host = f"{target.address}:{target.port}"
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
    latency = conn.connect_ms
    try:
        status, _headers, body = await request(conn, "GET", READINESS_PATH, b"", host, timeout)
    except Exception as exc:  # every failure is a result
        return _failed(target, exc, latency)
    finally:
        await close(conn)
    if status != 200:
        if status not in (500, 503):
            return failed(
                target,
                BadAnswerError(
                    f"GET {READINESS_PATH} answered HTTP {status}: not the Management API"
                ),
                latency,
            )
        view = MgmtView(ready=False, readiness=_answer(status, body))
        return result(
            target,
            Outcome.OPEN,
            latency_ms=latency,
            detail=f"Management API: Cassandra not ready ({view.readiness})",
            evidence=Evidence(mgmt=view),
        )
    # a second connection: the server closes the first one after its answer
    conn = await dial(dialer, target, timeout)
    if isinstance(conn, TargetResult):
        return conn
    try:
        status, _headers, body = await request(
            conn, "GET", ENDPOINTS_PATH, b"", host, timeout, max_body=MAX_BODY
        )
        if status != 200:
            raise BadAnswerError(f"GET {ENDPOINTS_PATH} answered {_answer(status, body)}")
        view = parse_endpoints(body)
    except Exception as exc:  # every failure is a result
        return _failed(target, exc, latency)
    finally:
        await close(conn)
    return result(
        target,
        Outcome.OPEN,
        latency_ms=latency,
        detail=f"Management API: ready, {len(view.endpoints)} endpoints",
        evidence=Evidence(mgmt=view),
    )


def _failed(target: Target, exc: BaseException, latency: float) -> TargetResult:
    r = failed(target, exc, latency)
    if "not HTTP" in r.detail:
        # a plain request to a TLS listener: managementApiAuth manual (mutual TLS)
        return result(
            target,
            r.outcome,
            latency_ms=latency,
            detail=f"{r.detail} (does the Management API require TLS?)",
        )
    return r


def _answer(status: int, body: bytes) -> str:
    text = body.decode("utf-8", errors="replace").strip().splitlines()
    return f"HTTP {status}: {text[0][:_TEXT]}" if text else f"HTTP {status}"


def parse_endpoints(body: bytes) -> MgmtView:
    """The answer of /api/v0/metadata/endpoints; BadAnswerError when it is not that."""
    try:
        return endpoints_view(body)
    except EndpointsBodyError as exc:
        raise BadAnswerError(str(exc)) from None
