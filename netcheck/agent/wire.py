"""JSON shapes exchanged between the collector and an agent, parsed strictly both ways."""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from netcheck.model.evidence import (
    CqlNode,
    CqlView,
    Hop,
    Latency,
    MgmtEndpoint,
    MgmtView,
    PathMtu,
    Reply,
    ReplyKind,
    TlsFacts,
    Trace,
)
from netcheck.model.mgmt_endpoints import MAX_ENDPOINTS
from netcheck.model.outcome import Outcome
from netcheck.model.probe import NO_EVIDENCE, Evidence, FollowUp, ProbeKind, Target, TargetResult
from netcheck.model.text import one_line
from netcheck.probes.cql import MAX_PEERS
from netcheck.probes.dialer import is_ip
from netcheck.probes.tls_facts import MAX_CA_PEM

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


def _choice(
    obj: dict[str, Any], key: str, values: frozenset[str], default: Any, where: str, label: str = ""
) -> Any:
    """A field that must be one of a fixed set of words (a list or a number is not one)."""
    value = obj.get(key, default)
    if not isinstance(value, str) or value not in values:
        raise WireError(f"{where}: unknown {label or key} {str(value)[:32]!r}")
    return value


_KINDS = frozenset(k.value for k in ProbeKind)
_OUTCOMES = frozenset(o.value for o in Outcome)
_REPLY_KINDS = frozenset(k.value for k in ReplyKind)

MAX_COUNT = 100  # the highest TTL of a trace or SYNs of a latency probe a request may ask
MAX_GROUP = 200  # characters of a follow-up group name
MAX_FOLLOW_TIMEOUT_S = 30.0


def target_to_json(t: Target) -> dict[str, Any]:
    out: dict[str, Any] = {"address": t.address, "port": t.port, "kind": t.kind.value}
    out["echo"] = t.echo
    if t.count:
        out["count"] = t.count
    if t.follow is not None:
        out["follow"] = dataclasses.asdict(t.follow)
    if t.ca_pem:
        out["ca_pem"] = t.ca_pem
    return out


def follow_from_json(obj: Any, where: str) -> FollowUp:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    timeout = obj.get("timeout_s")
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout <= MAX_FOLLOW_TIMEOUT_S  # NaN fails too
    ):
        raise WireError(
            f"{where}: 'timeout_s' must be a number of seconds up to {MAX_FOLLOW_TIMEOUT_S:g}"
        )
    return FollowUp(
        timeout_s=float(timeout),
        trace_hops=_int(obj, "trace_hops", where, 0, MAX_COUNT, default=0),
        trace_group=_text(obj, "trace_group", where, MAX_GROUP),
        latency_count=_int(obj, "latency_count", where, 0, MAX_COUNT, default=0),
        pmtu_group=_text(obj, "pmtu_group", where, MAX_GROUP),
    )


def target_from_json(obj: Any, where: str) -> Target:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    address = _get(obj, "address", str, where)
    if not _ip(address):
        raise WireError(f"{where}: address {address[:64]!r} is not an IP address")
    port = _get(obj, "port", int, where)
    if not 1 <= port <= 65535:
        raise WireError(f"{where}: port {port} out of range")
    kind = _choice(obj, "kind", _KINDS, "tcp", where)
    echo = obj.get("echo", False)
    if not isinstance(echo, bool):
        raise WireError(f"{where}: 'echo' must be true or false")
    count = obj.get("count", 0)
    if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= MAX_COUNT:
        raise WireError(f"{where}: 'count' must be an integer from 0 to {MAX_COUNT}")
    follow = None
    if obj.get("follow") is not None:
        if ProbeKind(kind).raw or ProbeKind(kind) in (
            ProbeKind.CQL,
            ProbeKind.MGMT,
            ProbeKind.TLS_FACTS,
        ):
            raise WireError(f"{where}: only tcp, tls and http probes take follow-ups")
        follow = follow_from_json(obj["follow"], f"{where}.follow")
    ca_pem = obj.get("ca_pem", "")
    if not isinstance(ca_pem, str) or len(ca_pem) > MAX_CA_PEM:
        raise WireError(f"{where}: 'ca_pem' must be PEM text of at most {MAX_CA_PEM} characters")
    if ca_pem and ProbeKind(kind) is not ProbeKind.TLS_FACTS:
        raise WireError(f"{where}: only tls_facts probes take a CA")
    return Target(
        address=address,
        port=port,
        kind=ProbeKind(kind),
        echo=echo,
        count=count,
        follow=follow,
        ca_pem=ca_pem,
    )


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
        **({"evidence": evidence_to_json(r.evidence)} if _has(r.evidence) else {}),
        **({"followed": [result_to_json(f) for f in r.followed]} if r.followed else {}),
    }


def reply_to_json(r: Reply) -> dict[str, Any]:
    return {
        "kind": r.kind.value,
        "source": r.source,
        "ttl": r.ttl,
        "rtt_ms": r.rtt_ms,
        "mtu": r.mtu,
    }


def evidence_to_json(e: Evidence) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if e.reply is not None:
        out["reply"] = reply_to_json(e.reply)
    if e.trace is not None:
        out["trace"] = [{"ttl": h.ttl, "reply": reply_to_json(h.reply)} for h in e.trace.hops]
    if e.path_mtu is not None:
        m = e.path_mtu
        out["path_mtu"] = {
            "local_mtu": m.local_mtu,
            "path_mtu": m.path_mtu,
            "smallest_lost": m.smallest_lost,
            "frag_needed_from": m.frag_needed_from,
            "reported_mtu": m.reported_mtu,
            "black_hole": m.black_hole,
        }
    if e.latency is not None:
        lat = e.latency
        out["latency"] = {
            "sent": lat.sent,
            "received": lat.received,
            "p50_ms": lat.p50_ms,
            "p99_ms": lat.p99_ms,
            "loss_pct": lat.loss_pct,
        }
    if e.cql is not None:
        out["cql"] = {
            "cluster_name": e.cql.cluster_name,
            "peers_table": e.cql.peers_table,
            "local": dataclasses.asdict(e.cql.local),
            "peers": [dataclasses.asdict(p) for p in e.cql.peers],
        }
    if e.tls is not None:
        out["tls"] = dataclasses.asdict(e.tls)
    if e.mgmt is not None:
        out["mgmt"] = {
            "ready": e.mgmt.ready,
            "readiness": e.mgmt.readiness,
            "cluster_name": e.mgmt.cluster_name,
            "endpoints": [dataclasses.asdict(p) for p in e.mgmt.endpoints],
        }
    return out


CQL_TABLES = ("system.peers_v2", "system.peers")
CQL_FIELDS = ("datacenter", "rack", "host_id", "release_version", "schema_version")


def _text(obj: dict[str, Any], key: str, where: str, limit: int = 200) -> str:
    value = obj.get(key, "")
    if not isinstance(value, str) or len(value) > limit:
        raise WireError(f"{where}: '{key}' must be a string of at most {limit} characters")
    return value


def cql_node_from_json(obj: Any, where: str) -> CqlNode:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    return CqlNode(
        address=_address(obj, "address", where),
        **{k: _text(obj, k, where) for k in CQL_FIELDS},
    )


def cql_from_json(obj: Any, where: str) -> CqlView:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    peers = obj.get("peers")
    if not isinstance(peers, list) or len(peers) > MAX_PEERS:
        raise WireError(f"{where}.peers: must be a list of at most {MAX_PEERS} rows")
    table = obj.get("peers_table")
    if table not in CQL_TABLES:
        raise WireError(f"{where}: 'peers_table' must be one of {', '.join(CQL_TABLES)}")
    return CqlView(
        cluster_name=_text(obj, "cluster_name", where),
        local=cql_node_from_json(obj.get("local"), f"{where}.local"),
        peers=tuple(cql_node_from_json(p, f"{where}.peers[{i}]") for i, p in enumerate(peers)),
        peers_table=str(table),
    )


MGMT_FIELDS = ("status", "datacenter", "rack", "host_id", "schema", "release_version")


def mgmt_from_json(obj: Any, where: str) -> MgmtView:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    endpoints = obj.get("endpoints")
    if not isinstance(endpoints, list) or len(endpoints) > MAX_ENDPOINTS:
        raise WireError(f"{where}.endpoints: must be a list of at most {MAX_ENDPOINTS} entries")
    return MgmtView(
        ready=_get(obj, "ready", bool, where),
        readiness=_text(obj, "readiness", where, 300),
        cluster_name=_text(obj, "cluster_name", where),
        endpoints=tuple(
            mgmt_endpoint_from_json(e, f"{where}.endpoints[{i}]") for i, e in enumerate(endpoints)
        ),
    )


def mgmt_endpoint_from_json(obj: Any, where: str) -> MgmtEndpoint:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    address = _address(obj, "address", where)
    if not address:
        raise WireError(f"{where}: missing 'address'")
    return MgmtEndpoint(
        address=address,
        alive=_get(obj, "alive", bool, where),
        **{k: _text(obj, k, where) for k in MGMT_FIELDS},
    )


def _int(
    obj: dict[str, Any],
    key: str,
    where: str,
    lo: int,
    hi: int,
    optional: bool = False,
    default: int | None = None,
) -> Any:
    value = obj.get(key, default)
    if value is None and optional:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise WireError(f"{where}: '{key}' must be an integer from {lo} to {hi}")
    return value


def _ms(obj: dict[str, Any], key: str, where: str) -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1e9:
        raise WireError(f"{where}: '{key}' must be a non-negative number")
    return float(value)


def _address(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key) or ""
    if not isinstance(value, str):
        raise WireError(f"{where}: '{key}' must be a string")
    if value and not _ip(value):
        raise WireError(f"{where}: '{key}' {value[:64]!r} is not an IP address")
    return value


MAX_ADDRESS = 64  # characters: the longest IPv6 address with a zone fits


def _ip(text: str) -> bool:
    """An IP address; the check is cached (a batch names the same few addresses thousands of
    times), so nothing longer than an address is parsed or kept."""
    return len(text) <= MAX_ADDRESS and is_ip(text)


def _has(evidence: Evidence) -> bool:
    return evidence is not NO_EVIDENCE and evidence != NO_EVIDENCE


def reply_from_json(obj: Any, where: str) -> Reply:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    kind = _choice(obj, "kind", _REPLY_KINDS, None, where, "reply kind")
    return Reply(
        kind=ReplyKind(kind),
        source=_address(obj, "source", where),
        ttl=_int(obj, "ttl", where, 0, 255),
        rtt_ms=_ms(obj, "rtt_ms", where),
        mtu=_int(obj, "mtu", where, 0, 65535),
    )


def evidence_from_json(obj: Any, where: str) -> Evidence:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    reply = trace = path_mtu = latency = None
    if "reply" in obj:
        reply = reply_from_json(obj["reply"], f"{where}.reply")
    if "trace" in obj:
        hops = obj["trace"]
        if not isinstance(hops, list) or len(hops) > MAX_COUNT:
            raise WireError(f"{where}.trace: must be a list of at most {MAX_COUNT} hops")
        trace = Trace(
            hops=tuple(
                Hop(
                    ttl=_int(h, "ttl", f"{where}.trace[{i}]", 1, 255),
                    reply=reply_from_json(h.get("reply"), f"{where}.trace[{i}].reply"),
                )
                if isinstance(h, dict)
                else _not_object(f"{where}.trace[{i}]")
                for i, h in enumerate(hops)
            )
        )
    if "path_mtu" in obj:
        m, w = obj["path_mtu"], f"{where}.path_mtu"
        if not isinstance(m, dict):
            raise WireError(f"{w}: not an object")
        path_mtu = PathMtu(
            local_mtu=_int(m, "local_mtu", w, 0, 65535),
            path_mtu=_int(m, "path_mtu", w, 0, 65535, optional=True),
            smallest_lost=_int(m, "smallest_lost", w, 0, 65535, optional=True),
            frag_needed_from=_address(m, "frag_needed_from", w),
            reported_mtu=_int(m, "reported_mtu", w, 0, 65535),
        )
    if "latency" in obj:
        lat, w = obj["latency"], f"{where}.latency"
        if not isinstance(lat, dict):
            raise WireError(f"{w}: not an object")
        sent = _int(lat, "sent", w, 0, MAX_COUNT)
        latency = Latency(
            sent=sent,
            received=_int(lat, "received", w, 0, sent),
            p50_ms=_ms(lat, "p50_ms", w),
            p99_ms=_ms(lat, "p99_ms", w),
        )
    cql = cql_from_json(obj["cql"], f"{where}.cql") if "cql" in obj else None
    mgmt = mgmt_from_json(obj["mgmt"], f"{where}.mgmt") if "mgmt" in obj else None
    tls = tls_from_json(obj["tls"], f"{where}.tls") if "tls" in obj else None
    return Evidence(
        reply=reply, trace=trace, path_mtu=path_mtu, latency=latency, cql=cql, mgmt=mgmt, tls=tls
    )


MAX_CERTIFICATE = 32 << 10  # base64 of one DER certificate


def _maybe_bool(obj: dict[str, Any], key: str, where: str) -> bool | None:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise WireError(f"{where}: '{key}' must be true, false or null")
    return value


def tls_from_json(obj: Any, where: str) -> TlsFacts:
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    certificate = _text(obj, "certificate", where, MAX_CERTIFICATE)
    if certificate:
        try:
            base64.b64decode(certificate, validate=True)
        except ValueError:
            raise WireError(f"{where}: 'certificate' is not base64") from None
    return TlsFacts(
        handshake=_get(obj, "handshake", bool, where),
        protocol=_text(obj, "protocol", where, 16),
        certificate=certificate,
        chain_verified=_maybe_bool(obj, "chain_verified", where),
        verify_error=_text(obj, "verify_error", where, 500),
        client_auth_required=_maybe_bool(obj, "client_auth_required", where),
        plaintext_accepted=_maybe_bool(obj, "plaintext_accepted", where),
    )


def _not_object(where: str) -> Hop:
    raise WireError(f"{where}: not an object")


MAX_FOLLOWED = 4  # a SYN and a trace, or latency and a path MTU: never more


def result_from_json(obj: Any, where: str, followed: bool = True) -> TargetResult:
    """followed: the result of a plain target, which may carry its follow-ups' results."""
    if not isinstance(obj, dict):
        raise WireError(f"{where}: not an object")
    target = target_from_json({k: obj.get(k) for k in ("address", "port", "kind")}, where)
    outcome = _choice(obj, "outcome", _OUTCOMES, None, where)
    latency = _ms(obj, "latency_ms", where)
    detail = obj.get("detail", "")
    if not isinstance(detail, str):
        raise WireError(f"{where}: bad detail")
    return TargetResult(
        address=target.address,
        port=target.port,
        kind=target.kind,
        outcome=Outcome(outcome),
        latency_ms=latency,
        detail=one_line(detail, 500),
        local_address=_address(obj, "local_address", where),
        observed_source=_address(obj, "observed_source", where),
        evidence=evidence_from_json(obj["evidence"], f"{where}.evidence")
        if "evidence" in obj
        else NO_EVIDENCE,
        followed=_followed(obj, target, where) if followed else (),
    )


def _followed(obj: dict[str, Any], target: Target, where: str) -> tuple[TargetResult, ...]:
    """Raw results for the same address and port as their target, at most one per kind."""
    items = obj.get("followed", [])
    if not isinstance(items, list) or len(items) > MAX_FOLLOWED:
        raise WireError(f"{where}: 'followed' must be a list of at most {MAX_FOLLOWED} results")
    out = tuple(
        result_from_json(f, f"{where}.followed[{i}]", followed=False) for i, f in enumerate(items)
    )
    kinds = [f.kind for f in out]
    if any(
        not f.kind.raw or (f.address, f.port) != (target.address, target.port) for f in out
    ) or len(set(kinds)) != len(kinds):
        raise WireError(f"{where}: 'followed' holds something other than this target's evidence")
    return out
