"""The CA read from a Secret (`run --ca-secret`): the shapes cert-manager and K8ssandra leave,
what is refused with its one line, and that nothing but certificates ever comes out.

The Secrets here are dictionaries shaped as the API server returns them (base64 data); the
lab test (test_kube_cassandra: TLS) reads one through the real API server."""

from __future__ import annotations

import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from netcheck.kube.ca_secret import CaSecretError, SecretRef, ca_of, secret_ref
from netcheck.lab.cassandra import LabCA

REF = SecretRef(namespace="demo", name="internode")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def secret(**data: bytes) -> dict[str, object]:
    return {"kind": "Secret", "data": {k.replace("_", "."): b64(v) for k, v in data.items()}}


@pytest.fixture(scope="module")
def ca() -> LabCA:
    return LabCA.generate("cluster CA")


@pytest.fixture(scope="module")
def node(ca: LabCA) -> tuple[bytes, bytes]:
    """(key PEM, certificate PEM) of a node, as cert-manager's tls.key and tls.crt."""
    pem = ca.issue("node-0", "198.18.0.10")
    cut = pem.index(b"-----BEGIN CERTIFICATE-----")
    return pem[:cut], pem[cut:]


def certs(pem: str) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(pem.encode())


def test_cert_managers_certificate_secret_gives_its_ca_and_never_the_key(ca, node):
    key, crt = node
    got = ca_of(secret(ca_crt=ca.cert_pem, tls_crt=crt, tls_key=key), REF)
    assert certs(got) == certs(ca.cert_pem.decode())
    assert "PRIVATE KEY" not in got and key.decode() not in got


def test_a_ca_issuers_own_secret_gives_its_certificate_a_leaf_alone_is_refused(ca, node):
    key, crt = node
    ca_key = ca.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    got = ca_of(secret(tls_crt=ca.cert_pem, tls_key=ca_key), REF)
    assert certs(got) == certs(ca.cert_pem.decode()) and "PRIVATE" not in got
    with pytest.raises(CaSecretError) as err:
        ca_of(secret(tls_crt=crt, tls_key=key), REF)
    assert str(err.value).startswith("Secret demo/internode: no CA in it (keys: tls.crt, tls.key)")
    assert "--ca-file" in str(err.value)


def test_k8ssandras_pkcs12_truststore_opens_with_its_password(ca):
    password = b"s3cret-Password"
    store = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(x509.load_pem_x509_certificate(ca.cert_pem), b"ca")],
        serialization.BestAvailableEncryption(password),
    )
    data = {"truststore": store, "truststore-password": password + b"\n"}
    got = ca_of({"data": {k: b64(v) for k, v in data.items()}}, REF)
    assert certs(got) == certs(ca.cert_pem.decode())
    data["truststore-password"] = b"wrong"
    with pytest.raises(CaSecretError) as err:
        ca_of({"data": {k: b64(v) for k, v in data.items()}}, REF)
    assert "not a PKCS#12 store that opens with its password" in str(err.value)
    assert "wrong" not in str(err.value) and "s3cret" not in str(err.value)


def test_a_jks_truststore_is_refused_with_the_keytool_command():
    with pytest.raises(CaSecretError) as err:
        ca_of(secret(truststore=b"\xfe\xed\xfe\xed\x00\x00\x00\x02" + b"\x00" * 40), REF)
    assert "JKS" in str(err.value) and "keytool -importkeystore" in str(err.value)


@pytest.mark.parametrize(
    ("doc", "said"),
    [
        ({"data": {"ca.crt": "%%%"}}, "key ca.crt is not base64"),
        ({"data": {"ca.crt": b64(b"hello")}}, "key ca.crt holds no PEM certificate"),
        ({"data": None}, "no CA in it (keys: none)"),
        ({}, "no CA in it (keys: none)"),
        ({"data": {"token": b64(b"abc")}}, "no CA in it (keys: token)"),
    ],
)
def test_what_holds_no_ca_is_one_line_naming_the_secret(doc, said):
    with pytest.raises(CaSecretError) as err:
        ca_of(doc, REF)
    assert said in str(err.value) and "\n" not in str(err.value)
    assert "abc" not in str(err.value) and "hello" not in str(err.value)


def test_more_certificates_than_a_ca_bundle_holds_are_refused():
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(CaSecretError, match="more than 64 certificates"):
        ca_of(secret(ca_crt=cert * 65), REF)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("demo/netcheck-lab-internode-tls", True),
        ("mission-control/cluster1-dc1.ca", True),
        ("demo", False),
        ("Demo/x", False),
        ("demo/x/y", False),
        ("/x", False),
        ("demo/", False),
        ("demo/x\n", False),
        ("a" * 64 + "/x", False),
    ],
)
def test_secret_refs_are_namespace_slash_name(text, ok):
    if ok:
        ref = secret_ref(text, "--ca-secret")
        assert str(ref) == text
    else:
        with pytest.raises(CaSecretError, match=r"^--ca-secret .*give NAMESPACE/NAME"):
            secret_ref(text, "--ca-secret")


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["ca.crt", "ca.pem", "tls.crt", "tls.key", "truststore", "truststore-password", "x"]
        ),
        st.one_of(
            st.binary(max_size=200).map(b64),
            st.text(max_size=40),
            st.integers(),
            st.none(),
        ),
    )
)
def test_any_secret_gives_certificates_or_one_line(data):
    try:
        got = ca_of({"data": data}, REF)
    except CaSecretError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("Secret demo/internode")
    else:
        assert certs(got) and "PRIVATE" not in got
