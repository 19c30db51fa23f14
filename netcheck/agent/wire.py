"""JSON shapes exchanged between the collector and an agent, parsed strictly both ways."""

from __future__ import annotations

import ipaddress
from typing import Any

from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, Target, TargetResult

API_PREFIX = "/v1"


class WireError(ValueError):
    """A message that does not have the agreed shape."""


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise WireError(f"{where}: missing '{key}'")
    value = obj[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise WireError(f"{where}: '{key}' has the wrong type")
    return value


def target_to_json(t: Target) -> dict[str, Any]:
    return {"address": t.address, "port": t.port, "kind": t.kind.value, "echo": t.echo}


def target_from_json(obj: Any, where: str) -> Target:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    address = _get(obj, "address", str, where)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise WireError(f"{where}: address {address[:64]!r} is not an IP address") from None
    port = _get(obj, "port", int, where)
    if not 1 <= port <= 65535:
        raise WireError(f"{where}: port {port} out of range")
    kind = obj.get("kind", "tcp")
    if kind not in {k.value for k in ProbeKind}:
        raise WireError(f"{where}: unknown kind {str(kind)[:32]!r}")
    echo = obj.get("echo", False)
    if not isinstance(echo, bool):
        raise WireError(f"{where}: 'echo' must be true or false")
    return Target(address=address, port=port, kind=ProbeKind(kind), echo=echo)


def result_to_json(r: TargetResult) -> dict[str, Any]:
    return {
        "address": r.address,
        "port": r.port,
        "kind": r.kind.value,
        "outcome": r.outcome.value,
        "latency_ms": r.latency_ms,
        "detail": r.detail,
        "local_address": r.local_address,
        "observed_source": r.observed_source,
    }


def result_from_json(obj: Any, where: str) -> TargetResult:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    target = target_from_json({k: obj.get(k) for k in ("address", "port", "kind")}, where)
    outcome = obj.get("outcome")
    if outcome not in {o.value for o in Outcome}:
        raise WireError(f"{where}: unknown outcome {str(outcome)[:32]!r}")
    latency = obj.get("latency_ms")
    if latency is not None and (
        not isinstance(latency, int | float) or isinstance(latency, bool) or latency < 0
    ):
        raise WireError(f"{where}: bad latency_ms")
    detail = obj.get("detail", "")
    if not isinstance(detail, str):
        raise WireError(f"{where}: bad detail")
    return TargetResult(
        address=target.address,
        port=target.port,
        kind=target.kind,
        outcome=Outcome(outcome),
        latency_ms=None if latency is None else float(latency),
        detail=detail[:500],
        local_address=str(obj.get("local_address") or ""),
        observed_source=str(obj.get("observed_source") or ""),
    )
