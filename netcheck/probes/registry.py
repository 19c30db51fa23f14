"""The explicit registry of probe kinds."""

from __future__ import annotations

from netcheck.model.probe import ProbeKind
from netcheck.probes import http, tcp, tls
from netcheck.probes.dialer import ProbeFn


def probes() -> dict[ProbeKind, ProbeFn]:
    return {ProbeKind.TCP: tcp.probe, ProbeKind.TLS: tls.probe, ProbeKind.HTTP: http.probe}
