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

import ipaddress
import json
from typing import Any

from netcheck.model.evidence import MgmtEndpoint, MgmtView
from netcheck.model.gossip import MGMT_API_PORT
from netcheck.model.outcome import Outcome
from netcheck.model.probe import Evidence, Target, TargetResult
from netcheck.probes.dialer import BadAnswerError, Dialer, close, dial, failed, result
from netcheck.probes.http import request

READINESS_PATH = "/api/v0/probes/readiness"
ENDPOINTS_PATH = "/api/v0/metadata/endpoints"
MAX_ENDPOINTS = 4096
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
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadAnswerError(f"{ENDPOINTS_PATH}: not JSON") from None
    entity = doc.get("entity") if isinstance(doc, dict) else None
    if not isinstance(entity, list):
        raise BadAnswerError(f"{ENDPOINTS_PATH}: no 'entity' list (not the Management API?)")
    if len(entity) > MAX_ENDPOINTS:
        raise BadAnswerError(f"{ENDPOINTS_PATH}: more than {MAX_ENDPOINTS} endpoints")
    endpoints = tuple(_endpoint(e, i) for i, e in enumerate(entity))
    names = {_str(e, "CLUSTER_NAME") for e in entity if isinstance(e, dict)} - {""}
    return MgmtView(
        ready=True,
        readiness="OK",
        endpoints=endpoints,
        cluster_name=sorted(names)[0] if len(names) == 1 else "",
    )


def _endpoint(e: Any, i: int) -> MgmtEndpoint:
    if not isinstance(e, dict):
        raise BadAnswerError(f"{ENDPOINTS_PATH}: entity[{i}] is not an object")
    address = _str(e, "ENDPOINT_IP")
    alive = _str(e, "IS_ALIVE").lower()
    if alive not in ("true", "false"):
        raise BadAnswerError(f"{ENDPOINTS_PATH}: entity[{i}] lacks IS_ALIVE")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise BadAnswerError(
            f"{ENDPOINTS_PATH}: entity[{i}] ENDPOINT_IP {address[:64]!r} is not an IP address"
        ) from None
    status = _str(e, "STATUS_WITH_PORT") or _str(e, "STATUS")
    return MgmtEndpoint(
        address=address,
        alive=alive == "true",
        status=status.split(",", 1)[0],
        datacenter=_str(e, "DC"),
        rack=_str(e, "RACK"),
        host_id=_str(e, "HOST_ID"),
        schema=_str(e, "SCHEMA"),
        release_version=_str(e, "RELEASE_VERSION"),
    )


def _str(e: dict[str, Any], key: str) -> str:
    value = e.get(key)
    return value[:_TEXT] if isinstance(value, str) else ""
