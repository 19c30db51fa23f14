"""The Management API's /api/v0/metadata/endpoints body, read into a MgmtView: by the agent's
probe (probes/mgmt.py) and from a file saved by a user (nodetool/paste.py).

The body is `{"entity": [{"ENDPOINT_IP": ..., "IS_ALIVE": "true", "STATUS_WITH_PORT": ...}]}`
with every value a string (the node's gossip ApplicationStates); cass-operator's client reads
the same envelope (CassMetadataEndpoints), whatever else the API puts beside it ("variant",
"mediaType" of older versions).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from netcheck.model.evidence import MgmtEndpoint, MgmtView

ENDPOINTS_PATH = "/api/v0/metadata/endpoints"
MAX_ENDPOINTS = 4096
_TEXT = 200


class EndpointsBodyError(ValueError):
    """The body is not the Management API's endpoint states."""


def endpoints_view(body: bytes) -> MgmtView:
    """The answer of /api/v0/metadata/endpoints (or a saved copy of it); EndpointsBodyError
    when it is not that."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise EndpointsBodyError(f"{ENDPOINTS_PATH}: not JSON") from None
    entity = doc.get("entity") if isinstance(doc, dict) else None
    if not isinstance(entity, list):
        raise EndpointsBodyError(f"{ENDPOINTS_PATH}: no 'entity' list (not the Management API?)")
    if len(entity) > MAX_ENDPOINTS:
        raise EndpointsBodyError(f"{ENDPOINTS_PATH}: more than {MAX_ENDPOINTS} endpoints")
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
        raise EndpointsBodyError(f"{ENDPOINTS_PATH}: entity[{i}] is not an object")
    address = _str(e, "ENDPOINT_IP")
    alive = _str(e, "IS_ALIVE").lower()
    if alive not in ("true", "false"):
        raise EndpointsBodyError(f"{ENDPOINTS_PATH}: entity[{i}] lacks IS_ALIVE")
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise EndpointsBodyError(
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
