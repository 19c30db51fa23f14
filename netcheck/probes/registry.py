"""The explicit registry of probe kinds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from netcheck.model.probe import ProbeKind, Target, TargetResult
from netcheck.probes import cql, http, latency, mgmt, pmtu, syn, tcp, tls, tls_facts, traceroute
from netcheck.probes.dialer import ProbeFn
from netcheck.probes.rawnet import RawNet

RawProbeFn = Callable[[RawNet, Target, float], Awaitable[TargetResult]]


def probes(cql_credentials: cql.CqlCredentials | None = None) -> dict[ProbeKind, ProbeFn]:
    return {
        ProbeKind.TCP: tcp.probe,
        ProbeKind.TLS: tls.probe,
        ProbeKind.HTTP: http.probe,
        ProbeKind.CQL: cql.make_probe(cql_credentials),
        ProbeKind.MGMT: mgmt.probe,
        ProbeKind.TLS_FACTS: tls_facts.probe,
    }


def raw_probes() -> dict[ProbeKind, RawProbeFn]:
    """Probes that craft their own packets: the agent needs CAP_NET_RAW."""
    return {
        ProbeKind.SYN: syn.probe,
        ProbeKind.TRACE: traceroute.probe,
        ProbeKind.PMTU: pmtu.probe,
        ProbeKind.LATENCY: latency.probe,
    }
