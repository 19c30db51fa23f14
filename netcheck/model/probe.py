"""Probe specs (what to try) and probe results (what happened)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from netcheck.model.outcome import Outcome


class ProbeKind(StrEnum):
    TCP = "tcp"  # TCP connect (plus a payload echo where an agent serves the port)
    TLS = "tls"  # TCP connect + TLS handshake (plus echo inside TLS)
    HTTP = "http"  # GET the Management API liveness path (plus echo POST)


@dataclass(frozen=True, kw_only=True)
class Target:
    """One thing an agent is asked to probe."""

    address: str
    port: int
    kind: ProbeKind = ProbeKind.TCP
    echo: bool = False  # the port is served by a netcheck agent: push a payload through it


@dataclass(frozen=True, kw_only=True)
class TargetResult:
    """What an agent reports for one target."""

    address: str
    port: int
    kind: ProbeKind
    outcome: Outcome
    latency_ms: float | None = None
    detail: str = ""
    local_address: str = ""
    observed_source: str = ""


@dataclass(frozen=True, kw_only=True)
class ProbeSpec:
    """One planned probe between two named endpoints."""

    src: str
    dst: str
    port: int
    kind: ProbeKind
    echo: bool = False


@dataclass(frozen=True, kw_only=True)
class ProbeResult:
    src: str
    dst: str
    port: int
    kind: ProbeKind
    outcome: Outcome
    latency_ms: float | None = None
    detail: str = ""
