"""The CA a cluster keeps in a Secret, for verifying its nodes' TLS chains (`run --ca-secret
NAMESPACE/NAME`, `--client-ca-secret`).

Where Mission Control (cert-manager) and K8ssandra keep it:
- cert-manager's Secrets of a node's Certificate (type kubernetes.io/tls) carry the issuing CA
  in `ca.crt`, beside the node's `tls.crt` and `tls.key`; a CA issuer's own Secret too;
- K8ssandra's encryption stores (`serverEncryptionStores.truststoreSecretRef`,
  `clientEncryptionStores`) hold a `truststore` with its `truststore-password`: PKCS#12 is read
  (cryptography); a JKS store is refused with the keytool command that converts it (JKS has no
  well-kept Python reader: pyjks' last release is from 2020 and needs a compiled cipher).

Only certificates leave this module, re-encoded from what was parsed: a Secret's private keys
and passwords are never kept, returned or named in an error (errors name the Secret's keys).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from netcheck.kube.client import KubeClient
from netcheck.kube.resources import KINDS

# the keys a CA is read from, in this order (the first present wins)
PEM_KEYS = ("ca.crt", "ca.pem", "truststore.pem")
STORE_KEYS = ("truststore", "truststore.p12", "truststore.pfx", "truststore.jks")
PASSWORD_KEYS = ("truststore-password", "truststore_password")
JKS_MAGIC = b"\xfe\xed\xfe\xed"
MAX_CERTIFICATES = 64

_NAME = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_REF = re.compile(rf"({_NAME})/([a-z0-9]([-.a-z0-9]{{0,251}}[a-z0-9])?)")


class CaSecretError(Exception):
    """A Secret that holds no CA netcheck can read: one line naming it and the fix."""


@dataclass(frozen=True, kw_only=True)
class SecretRef:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def secret_ref(text: str, option: str) -> SecretRef:
    """NAMESPACE/NAME, as Kubernetes names go."""
    m = _REF.fullmatch(text)
    if not m:
        raise CaSecretError(
            f"{option} {text[:80]!r}: give NAMESPACE/NAME of the Secret (lower case, as "
            "Kubernetes names are)"
        )
    return SecretRef(namespace=m.group(1), name=m.group(3))


def ca_of(secret: Mapping[str, Any], ref: SecretRef) -> str:
    """The CA certificates of a Secret as the API server returns it, as PEM text."""
    data = secret.get("data")
    if not isinstance(data, dict):
        data = {}
    names = sorted(k for k in data if isinstance(k, str))
    for key in PEM_KEYS:
        if key in data:
            return _pem(_decoded(data[key], ref, key), ref, key)
    for key in STORE_KEYS:
        if key in data:
            password = next((k for k in PASSWORD_KEYS if k in data), None)
            secret_password = _decoded(data[password], ref, password) if password else b""
            return _store(_decoded(data[key], ref, key), secret_password.strip(), ref, key)
    if "tls.crt" in data:  # a CA issuer's own Secret: its certificate is the CA
        pem = _pem(_decoded(data["tls.crt"], ref, "tls.crt"), ref, "tls.crt")
        if _is_ca(pem):
            return pem
    raise CaSecretError(
        f"Secret {ref}: no CA in it (keys: {', '.join(names) or 'none'}); name a Secret with "
        f"{' or '.join(PEM_KEYS[:1] + STORE_KEYS[:1])} (cert-manager's Certificate Secrets, "
        "K8ssandra's truststore), or give --ca-file"
    )


async def read_ca_secret(client: KubeClient, ref: SecretRef) -> str:
    """The CA of one Secret through the API server (get secrets, by name). KubeError as the
    client raises them (403, 404); CaSecretError when it holds no CA."""
    secret = await client.get(KINDS["Secret"], ref.name, ref.namespace)
    return ca_of(secret, ref)


def _decoded(value: object, ref: SecretRef, key: str) -> bytes:
    try:
        if not isinstance(value, str):
            raise ValueError
        return base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise CaSecretError(f"Secret {ref}: key {key} is not base64 as the API sends it") from None


def _pem(raw: bytes, ref: SecretRef, key: str) -> str:
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        certs = []
    if not certs:
        raise CaSecretError(f"Secret {ref}: key {key} holds no PEM certificate")
    return _encoded(certs, ref)


def _store(raw: bytes, password: bytes, ref: SecretRef, key: str) -> str:
    from cryptography.hazmat.primitives.serialization import pkcs12

    if raw.startswith(JKS_MAGIC):
        raise CaSecretError(
            f"Secret {ref}: {key} is a JKS store, which netcheck does not read; convert it "
            "(keytool -importkeystore -srcstoretype JKS -deststoretype PKCS12) or export the "
            "CA (keytool -exportcert -rfc) and give --ca-file"
        )
    try:
        store = pkcs12.load_pkcs12(raw, password or None)
    except (ValueError, TypeError):
        raise CaSecretError(
            f"Secret {ref}: {key} is not a PKCS#12 store that opens with its password "
            f"({' or '.join(PASSWORD_KEYS)}); check the Secret, or give --ca-file"
        ) from None
    certs = [c.certificate for c in store.additional_certs]
    if store.cert is not None:
        certs.append(store.cert.certificate)
    if not certs:
        raise CaSecretError(f"Secret {ref}: {key} holds no certificate")
    return _encoded(certs, ref)


def _encoded(certs: list[Any], ref: SecretRef) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    if len(certs) > MAX_CERTIFICATES:
        raise CaSecretError(f"Secret {ref}: more than {MAX_CERTIFICATES} certificates")
    return "".join(c.public_bytes(Encoding.PEM).decode() for c in certs)


def _is_ca(pem: str) -> bool:
    from cryptography import x509

    for cert in x509.load_pem_x509_certificates(pem.encode()):
        try:
            if cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
                return True
        except x509.ExtensionNotFound:
            continue
    return False


__all__ = ["CaSecretError", "SecretRef", "ca_of", "read_ca_secret", "secret_ref"]
