"""Internode TLS, node by node (collector/tls_check.py): the facts as rows, and their findings.

The guide requires internode encryption. Per database node and internode port:
- INTERNODE_TLS_OFF (error): the port answered Cassandra's plaintext handshake and no TLS one
  (internode_encryption: none).
- INTERNODE_TLS_FAILED (error): no TLS handshake, for the reason given.
- INTERNODE_TLS_PLAINTEXT_ACCEPTED (error): TLS is served but plaintext too (optional: true):
  a peer, or anyone, may talk to the node unencrypted.
- INTERNODE_TLS_CERT_EXPIRED (error) / INTERNODE_TLS_CERT_EXPIRING (warning, < 30 days).
- INTERNODE_TLS_UNTRUSTED (error): the chain does not verify against the CA given.
- INTERNODE_TLS_CLIENT_AUTH_OFF (warning): the node takes TLS clients without a certificate
  (require_client_auth: false).
- INTERNODE_TLS_VERIFIED (info): every node looked at is fine, and what that covered.
Client-to-node TLS, where a node serves it on 9142 (native_transport_port_ssl), has its own
codes: CLIENT_TLS_FAILED, CLIENT_TLS_OFF, CLIENT_TLS_CERT_EXPIRED, CLIENT_TLS_CERT_EXPIRING,
CLIENT_TLS_UNTRUSTED (against --client-ca-file: clients' certificates often come from another
CA than the internode ones), CLIENT_TLS_PLAINTEXT_ACCEPTED (a warning: the guide requires
internode TLS, not client TLS) and CLIENT_TLS_VERIFIED. Whether 9142 asks clients for a
certificate is reported, not judged: CQL logins are the usual client authentication.
A node whose 9142 refuses connections does not serve client TLS there: no row.
One finding per code and cluster, naming the nodes.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Callable

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from netcheck.diagnosis.findings import group_text
from netcheck.model.findings import Finding, Severity
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeKind, ProbeResult
from netcheck.model.report import TlsRow
from netcheck.model.topology import Topology

EXPIRING_DAYS = 30
NOT_LOOKED = "not looked at"  # the probe did not connect: the mesh says why
CLIENT_TLS_PORT = 9142


def _certificate(b64: str) -> x509.Certificate | None:
    try:
        return x509.load_der_x509_certificate(base64.b64decode(b64))
    except ValueError:
        return None


def _sans(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    except x509.ExtensionNotFound:
        return ()
    san = ext.value
    assert isinstance(san, x509.SubjectAlternativeName)
    return tuple(
        [f"DNS:{n}" for n in san.get_values_for_type(x509.DNSName)]
        + [f"IP:{a}" for a in san.get_values_for_type(x509.IPAddress)]
    )


def tls_rows(results: tuple[ProbeResult, ...], now: datetime.datetime) -> tuple[TlsRow, ...]:
    rows = []
    for r in results:
        facts = r.evidence.tls
        if r.kind is not ProbeKind.TLS_FACTS:
            continue
        if r.port == CLIENT_TLS_PORT and r.outcome is Outcome.REFUSED:
            continue  # no client TLS served there
        if facts is None:
            rows.append(
                TlsRow(
                    node=r.dst, port=r.port, handshake=False, protocol="", issuer="",
                    subject="", sans=(), not_after="", days_left=None, chain_verified=None,
                    client_auth_required=None, plaintext_accepted=None,
                    error=f"{NOT_LOOKED}: {r.outcome.value}: {r.detail}",
                )
            )  # fmt: skip
            continue
        cert = _certificate(facts.certificate) if facts.certificate else None
        not_after = cert.not_valid_after_utc if cert else None
        rows.append(
            TlsRow(
                node=r.dst,
                port=r.port,
                handshake=facts.handshake,
                protocol=facts.protocol,
                issuer=cert.issuer.rfc4514_string() if cert else "",
                subject=cert.subject.rfc4514_string() if cert else "",
                sans=_sans(cert) if cert else (),
                not_after=not_after.isoformat() if not_after else "",
                days_left=(not_after - now).days if not_after else None,
                chain_verified=facts.chain_verified,
                client_auth_required=facts.client_auth_required,
                plaintext_accepted=facts.plaintext_accepted,
                error=facts.verify_error,
            )
        )
    return tuple(rows)


Check = Callable[[TlsRow], bool]


def _expired(r: TlsRow) -> bool:
    return r.days_left is not None and r.days_left < 0


# code, severity, which rows, what it means, the fix
INTERNODE_CHECKS: tuple[tuple[str, Severity, Check, str, str], ...] = (
    (
        "INTERNODE_TLS_OFF",
        Severity.ERROR,
        lambda r: not r.handshake and r.plaintext_accepted is True,
        "speak plaintext and no TLS on the internode port",
        "set server_encryption_options.internode_encryption: all (the MissionControlCluster's "
        "internode encryption) with a keystore and the cluster's truststore, then restart "
        "node by node",
    ),
    (
        "INTERNODE_TLS_FAILED",
        Severity.ERROR,
        lambda r: not r.handshake and r.plaintext_accepted is not True,
        "complete no TLS handshake on the internode port",
        "read the node's system.log for the TLS error; check its keystore and protocols",
    ),
    (
        "INTERNODE_TLS_PLAINTEXT_ACCEPTED",
        Severity.ERROR,
        lambda r: r.handshake and r.plaintext_accepted is True,
        "take plaintext on the encrypted internode port as well (optional: true)",
        "set server_encryption_options.optional: false once every node speaks TLS",
    ),
    (
        "INTERNODE_TLS_CERT_EXPIRED",
        Severity.ERROR,
        _expired,
        "present an expired certificate",
        "renew the node certificates (cert-manager: check the Certificate's renewal) and "
        "restart the nodes so they load them",
    ),
    (
        "INTERNODE_TLS_CERT_EXPIRING",
        Severity.WARNING,
        lambda r: r.days_left is not None and 0 <= r.days_left < EXPIRING_DAYS,
        f"present a certificate that expires within {EXPIRING_DAYS} days",
        "renew the node certificates before they expire",
    ),
    (
        "INTERNODE_TLS_UNTRUSTED",
        Severity.ERROR,
        lambda r: r.chain_verified is False and not _expired(r),
        "present a certificate that does not verify against the cluster's CA",
        "issue the node's certificate from the cluster's CA (the truststore every node "
        "holds), or give netcheck the right CA with --ca-file",
    ),
    (
        "INTERNODE_TLS_CLIENT_AUTH_OFF",
        Severity.WARNING,
        lambda r: r.handshake and r.client_auth_required is False,
        "take TLS clients that show no certificate (require_client_auth: false)",
        "set server_encryption_options.require_client_auth: true, so that only holders of "
        "a certificate from the cluster's CA talk to the nodes",
    ),
)


CLIENT_CHECKS: tuple[tuple[str, Severity, Check, str, str], ...] = (
    (
        "CLIENT_TLS_OFF",
        Severity.WARNING,
        lambda r: not r.handshake and r.plaintext_accepted is True,
        f"answer plaintext CQL and no TLS on {CLIENT_TLS_PORT}, the port clients use for TLS",
        "set client_encryption_options.enabled: true with native_transport_port_ssl: "
        f"{CLIENT_TLS_PORT}, or have clients use 9042 if plaintext is meant",
    ),
    (
        "CLIENT_TLS_FAILED",
        Severity.ERROR,
        lambda r: not r.handshake and r.plaintext_accepted is not True,
        f"complete no TLS handshake on the client TLS port {CLIENT_TLS_PORT}",
        "read the node's system.log for the TLS error; check client_encryption_options' "
        "keystore and protocols",
    ),
    (
        "CLIENT_TLS_PLAINTEXT_ACCEPTED",
        Severity.WARNING,
        lambda r: r.handshake and r.plaintext_accepted is True,
        f"take plaintext CQL on the client TLS port {CLIENT_TLS_PORT} as well (optional: true)",
        "set client_encryption_options.optional: false once every client speaks TLS",
    ),
    (
        "CLIENT_TLS_CERT_EXPIRED",
        Severity.ERROR,
        _expired,
        "present an expired certificate to clients",
        "renew the client-to-node certificates (the Secret in clientEncryptionStores) and "
        "run nodetool reloadssl on each node",
    ),
    (
        "CLIENT_TLS_CERT_EXPIRING",
        Severity.WARNING,
        lambda r: r.days_left is not None and 0 <= r.days_left < EXPIRING_DAYS,
        f"present clients a certificate that expires within {EXPIRING_DAYS} days",
        "renew the client-to-node certificates before they expire",
    ),
    (
        "CLIENT_TLS_UNTRUSTED",
        Severity.ERROR,
        lambda r: r.chain_verified is False and not _expired(r),
        "present clients a certificate that does not verify against the clients' CA",
        "issue the node's client certificate from the CA clients trust, or give netcheck "
        "that CA with --client-ca-file",
    ),
)


def tls_findings(rows: tuple[TlsRow, ...], topology: Topology) -> tuple[Finding, ...]:
    cluster = {ep.name: ep.cluster for ep in topology.endpoints}
    findings: list[Finding] = []
    for client, checks in ((False, INTERNODE_CHECKS), (True, CLIENT_CHECKS)):
        family = [r for r in rows if (r.port == CLIENT_TLS_PORT) is client]
        for ctx in dict.fromkeys(cluster.get(r.node, "") for r in family):
            mine = [r for r in family if cluster.get(r.node, "") == ctx]
            findings += _judged(ctx, mine, checks, client)
    return tuple(findings)


def _judged(
    ctx: str,
    rows: list[TlsRow],
    checks: tuple[tuple[str, Severity, Check, str, str], ...],
    client: bool,
) -> list[Finding]:
    """One cluster's rows of one port family: a finding per check that hits, or the
    verified one when none does."""
    mine = [r for r in rows if not r.error.startswith(NOT_LOOKED)]
    unreached = sorted({r.node for r in rows} - {r.node for r in mine})
    findings = []
    for code, severity, check, means, fix in checks:
        hit = [r for r in mine if check(r)]
        if not hit:
            continue
        nodes = sorted({f"{r.node}:{r.port}" for r in hit})
        errors = sorted({r.error for r in hit if r.error})
        why = f" ({errors[0]})" if errors else ""
        findings.append(
            Finding(
                severity=severity,
                code=code,
                summary=f"{ctx}: {group_text(nodes, 'nodes')} {means}{why}",
                src_cluster=ctx,
                dst_cluster=ctx,
                ports=tuple(sorted({r.port for r in hit})),
                affected_pairs=len(hit),
                hint=fix,
                dst_scope=", ".join(nodes),
            )
        )
    if mine and not findings:
        findings.append(_verified(ctx, mine, unreached, client))
    return findings


def _verified(ctx: str, rows: list[TlsRow], unreached: list[str], client: bool) -> Finding:
    """Every node port looked at is fine: what that covered, and what it could not tell."""

    def told(values: list[bool | None], yes: str, unknown: str) -> str:
        missing = sum(v is None for v in values)
        return yes if not missing else f"{unknown} on {missing} of {len(values)}"

    least = min((r.days_left for r in rows if r.days_left is not None), default=None)
    parts = [
        told(
            [r.chain_verified for r in rows], "chain verified against the CA", "chain not checked"
        ),
    ]
    if client:
        asked = sum(r.client_auth_required is True for r in rows)
        parts.append(f"client certificate required on {asked} of {len(rows)}")
    else:
        parts.append(
            told(
                [r.client_auth_required for r in rows],
                "mutual TLS required",
                "mutual TLS not told",
            )
        )
    parts.append(
        told([r.plaintext_accepted for r in rows], "plaintext refused", "plaintext not told")
    )
    if least is not None:
        parts.append(f"certificates valid {least} more days at least")
    if unreached:
        parts.append(f"not looked at on {group_text(unreached, 'nodes')} (not reached)")
    what, option = ("client TLS", "--client-ca-file") if client else ("internode TLS", "--ca-file")
    return Finding(
        severity=Severity.INFO,
        code="CLIENT_TLS_VERIFIED" if client else "INTERNODE_TLS_VERIFIED",
        summary=f"{ctx}: {what} on {len(rows)} node ports: {', '.join(parts)}",
        src_cluster=ctx,
        dst_cluster=ctx,
        ports=tuple(sorted({r.port for r in rows})),
        affected_pairs=0,
        hint=f"nothing to do; give the CA with {option} where the chain was not checked",
    )
