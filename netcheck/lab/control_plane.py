"""One real Kubernetes control plane per lab cluster: etcd, kube-apiserver,
kube-controller-manager and kube-scheduler.

Each control plane runs in a network namespace of its own (ncl-kcp-SHORT), so `lab down` and
the crash clean-up stop it with the rest of the lab. The API server listens on the management
network (198.19.128.2 + k, port 6443), where the host reaches it; etcd, the controller manager
and the scheduler talk to it over that namespace's loopback. The pod proxy and the kubelet API
go from the API server to pod and node addresses on the clusters' networks: /32 routes in the
control plane's namespace send them over the management network to the lab host that owns the
address (the probes themselves never take that way).

Security as a real cluster has it: a CA per cluster, a serving certificate for the API server,
the API server's client certificate for kubelets, service-account signing keys, and static
tokens for the lab's admin (system:masters), the controller manager, the scheduler and the user
`netcheck-ci` that probes/rbac/netcheck-user.yaml binds. Every key and token file is 0600.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from netcheck.deploy.apply import apply_all
from netcheck.deploy.manifests import default_root
from netcheck.kube.client import KubeClient
from netcheck.kube.config import connection
from netcheck.kube.errors import KubeError
from netcheck.lab import net
from netcheck.lab.kubelet import lab_nodes, node_name
from netcheck.lab.net import LabError
from netcheck.lab.spec import MGMT_HOST, MGMT_NET, MGMT_NS

API_PORT = 6443
ETCD_PORT, ETCD_PEER_PORT = 2379, 2380
KCM_PORT, SCHEDULER_PORT = 10257, 10259
ADMIN_USER = "netcheck-lab-admin"
CI_USER = "netcheck-ci"  # the user probes/rbac/netcheck-user.yaml binds
NS_PREFIX = "ncl-kcp-"


@dataclass(frozen=True, kw_only=True)
class Plane:
    """Where one cluster's control plane lives."""

    cluster: str
    short: str
    namespace: str
    address: str  # the API server's, on the management network
    service_cidr: str
    directory: str

    @property
    def server(self) -> str:
        return f"https://{self.address}:{API_PORT}"


def planes(clusters: list[dict[str, Any]], state_dir: str) -> list[Plane]:
    out = []
    for k, c in enumerate(clusters):
        out.append(
            Plane(
                cluster=c["name"],
                short=c["short"],
                namespace=f"{NS_PREFIX}{c['short']}",
                address=str(ipaddress.ip_address(MGMT_HOST) + 1 + k),
                # inside the lab's 198.18.0.0/15, clear of the clusters' sites and the WAN
                service_cidr=f"198.19.{64 + k}.0/24",
                directory=os.path.join(state_dir, "kubernetes", c["short"]),
            )
        )
    return out


# --- certificates and tokens -----------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool = False,
    usage: list[x509.ObjectIdentifier] | None = None,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, signer = issuer if issuer else (subject, key)
    b = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        b = b.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    if usage:
        b = b.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(signer, hashes.SHA256())


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _write(path: str, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with open(fd, "wb") as f:
        f.write(data)


def _pki(p: Plane, nodes: list[str], node_ips: list[str]) -> dict[str, str]:
    """CA, serving and kubelet-client certificates, service-account keys, static tokens."""
    d = os.path.join(p.directory, "pki")
    os.makedirs(d, mode=0o700, exist_ok=True)
    ca_key = _key()
    ca_name = _name(f"netcheck-lab-{p.short}-ca")
    ca = _cert(ca_name, ca_key, None, ca=True)
    first_service_ip = next(ipaddress.IPv4Network(p.service_cidr).hosts())
    serving_key = _key()
    serving = _cert(
        _name("kube-apiserver"),
        serving_key,
        (ca_name, ca_key),
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[
            x509.IPAddress(ipaddress.ip_address(p.address)),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(first_service_ip),
            *(
                x509.DNSName(n)
                for n in (
                    "localhost",
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    "kubernetes.default.svc.cluster.local",
                )
            ),
        ],
    )
    client_key = _key()
    client = _cert(
        _name("kube-apiserver-kubelet-client", "kubeadm:cluster-admins"),
        client_key,
        (ca_name, ca_key),
        usage=[ExtendedKeyUsageOID.CLIENT_AUTH],
    )
    kubelet_key = _key()
    kubelet = _cert(
        _name("netcheck-lab-kubelet"),
        kubelet_key,
        (ca_name, ca_key),
        usage=[ExtendedKeyUsageOID.SERVER_AUTH],
        sans=[x509.IPAddress(ipaddress.IPv4Address(a)) for a in node_ips],
    )
    sa_key = _key()
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "ca.key": _pem_key(ca_key),
        "apiserver.crt": serving.public_bytes(serialization.Encoding.PEM),
        "apiserver.key": _pem_key(serving_key),
        "kubelet-client.crt": client.public_bytes(serialization.Encoding.PEM),
        "kubelet-client.key": _pem_key(client_key),
        "kubelet.crt": kubelet.public_bytes(serialization.Encoding.PEM),
        "kubelet.key": _pem_key(kubelet_key),
        "sa.key": _pem_key(sa_key),
        "sa.pub": sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }
    out = {}
    for name, data in files.items():
        path = os.path.join(d, name)
        _write(path, data, private=name.endswith(".key"))
        out[name] = path
    tokens = {
        "admin": secrets.token_hex(24),
        "controller-manager": secrets.token_hex(24),
        "scheduler": secrets.token_hex(24),
        "ci": secrets.token_hex(24),
    }
    node_tokens = {n: secrets.token_hex(24) for n in nodes}
    rows = [
        f'{tokens["admin"]},{ADMIN_USER},uid-admin,"system:masters"',
        f"{tokens['controller-manager']},system:kube-controller-manager,uid-kcm",
        f"{tokens['scheduler']},system:kube-scheduler,uid-scheduler",
        f"{tokens['ci']},{CI_USER},uid-ci",
        # each node's kubelet as itself, so the Node authorizer applies
        *(f'{t},system:node:{n},uid-{n},"system:nodes"' for n, t in node_tokens.items()),
    ]
    out["tokens.csv"] = os.path.join(d, "tokens.csv")
    _write(out["tokens.csv"], ("\n".join(rows) + "\n").encode(), private=True)
    out["audit-policy.yaml"] = os.path.join(d, "audit-policy.yaml")
    _write(out["audit-policy.yaml"], AUDIT_POLICY.encode(), private=False)
    for user, token in tokens.items():
        out[f"token-{user}"] = token
    out["node-kubeconfig"] = _node_kubeconfig(p, out["ca.crt"], node_tokens)
    return out


def _node_kubeconfig(p: Plane, ca_file: str, node_tokens: dict[str, str]) -> str:
    """One context per node, named after it, for the lab kubelet."""
    return _write_kubeconfig(
        os.path.join(p.directory, "nodes.kubeconfig"),
        {p.cluster: (p.server, ca_file)},
        node_tokens,
        [(n, p.cluster, n) for n in node_tokens],
    )


def _kubeconfig(p: Plane, ca_file: str, user: str, token: str) -> str:
    return _write_kubeconfig(
        os.path.join(p.directory, f"{user}.kubeconfig"),
        {p.cluster: (p.server, ca_file)},
        {user: token},
        [(p.cluster, p.cluster, user)],
    )


def _write_kubeconfig(
    path: str,
    clusters: dict[str, tuple[str, str]],
    tokens: dict[str, str],
    contexts: list[tuple[str, str, str]],
) -> str:
    """A kubeconfig (0600): clusters (name -> server, CA file), users with tokens, and
    (context, cluster, user) triples; the first context is the current one."""
    doc = kubeconfig_doc(clusters, tokens, contexts)
    _write(path, yaml.safe_dump(doc, sort_keys=False).encode(), private=True)
    return path


def kubeconfig_doc(
    clusters: dict[str, tuple[str, str]],
    tokens: dict[str, str],
    contexts: list[tuple[str, str, str]],
    embed_ca: bool = False,
) -> dict[str, Any]:
    """The kubeconfig of _write_kubeconfig; embed_ca: the CA file's PEM inline
    (certificate-authority-data), for a kubeconfig that travels (mcctl's Secret)."""

    def ca(path: str) -> dict[str, str]:
        if not embed_ca:
            return {"certificate-authority": path}
        return {"certificate-authority-data": base64.b64encode(Path(path).read_bytes()).decode()}

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": n, "cluster": {"server": server, **ca(ca_file)}}
            for n, (server, ca_file) in clusters.items()
        ],
        "users": [{"name": u, "user": {"token": t}} for u, t in tokens.items()],
        "contexts": [{"name": c, "context": {"cluster": cl, "user": u}} for c, cl, u in contexts],
        "current-context": contexts[0][0] if contexts else "",
    }


# --- processes -------------------------------------------------------------------------------


def _spawn(
    namespace: str, directory: str, name: str, cmd: list[str], *, host_mounts: bool = False
) -> None:
    """Detached in a plane's namespace (teardown finds it there), logging to NAME.log.

    host_mounts: in this machine's mount namespace (nsenter, not `ip netns exec`, which makes
    a mount namespace of its own): the lab kubelet makes the pods' network namespaces, and a
    namespace it mounts under /run/netns must be one `lab down` can see and enter."""
    log = open(os.path.join(directory, f"{name}.log"), "ab")  # noqa: SIM115
    enter = (
        ["nsenter", f"--net=/run/netns/{namespace}", "--"]
        if host_mounts
        else ["ip", "netns", "exec", namespace]
    )
    try:
        subprocess.run(
            ["setsid", "--fork", *enter, *cmd],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=directory,
            check=True,
        )
    finally:
        log.close()


def _network(p: Plane, hosts: list[dict[str, Any]], own_nodes: list[str]) -> None:
    """The plane's namespace on the management bridge, with routes to pod and node addresses.

    The addresses of this cluster's own nodes are local here instead: the API server reaches
    a node's kubelet port (10250) at its InternalIP, and the lab kubelet answers for every
    node from this namespace. Nothing else here talks to node addresses."""
    net.add_namespace(p.namespace)
    net.ip(p.namespace, "link", "set", "lo", "up")
    link = f"k{p.short}"
    net.veth(p.namespace, "mgmt0", MGMT_NS, link)
    net.ip(MGMT_NS, "link", "set", link, "master", "br0", "up")
    net.ip(p.namespace, "addr", "add", f"{p.address}/{MGMT_NET.prefixlen}", "dev", "mgmt0")
    net.ip(p.namespace, "link", "set", "mgmt0", "up")
    for h in hosts:
        if h.get("node_pod_cidr"):
            net.ip(p.namespace, "route", "add", h["node_pod_cidr"], "via", h["mgmt_address"])
        for a in (h["address"], h.get("node_address") or ""):
            if a in own_nodes:
                net.ip(p.namespace, "addr", "add", f"{a}/32", "dev", "lo")
            elif a:
                net.ip(p.namespace, "route", "add", f"{a}/32", "via", h["mgmt_address"])


def start(
    clusters: list[dict[str, Any]],
    hosts: list[dict[str, Any]],
    state_dir: str,
    bins: str,
    timeout_s: float = 120.0,
) -> dict[str, Any]:
    """Start every cluster's control plane and wait until each API server is ready.

    Returns what the lab's state keeps: per cluster the server, its CA and the kubeconfig
    files; and the path of the kubeconfig with every cluster as a context.
    """
    etcd = shutil.which("etcd")
    if etcd is None:
        raise LabError(
            "etcd is missing (the lab's API servers store in it): apt-get install etcd-server"
        )
    out: dict[str, Any] = {"planes": [], "node_kubeconfigs": {}}
    later: list[tuple[Plane, dict[str, str]]] = []
    for p in planes(clusters, state_dir):
        os.makedirs(p.directory, mode=0o700, exist_ok=True)
        nodes = lab_nodes(hosts, p.cluster)
        pki = _pki(p, [n.name for n in nodes], [n.internal_ip for n in nodes])
        out["node_kubeconfigs"][p.cluster] = pki["node-kubeconfig"]
        _network(p, hosts, [n.internal_ip for n in nodes])
        _spawn(p.namespace, p.directory, "etcd", _etcd(etcd, p))
        _spawn(p.namespace, p.directory, "kube-apiserver", _apiserver(bins, p, pki))
        later.append((p, pki))
        out["planes"].append(
            {
                "cluster": p.cluster,
                "server": p.server,
                "namespace": p.namespace,
                "ca_file": pki["ca.crt"],
                "admin_token": pki["token-admin"],
                "ci_token": pki["token-ci"],
                "directory": p.directory,
                "kubelet_cert": pki["kubelet.crt"],
                "kubelet_key": pki["kubelet.key"],
            }
        )
    for plane in out["planes"]:
        wait_ready(plane, timeout_s, controllers=False)
    # the controllers exit when they cannot reach the API server: started once it serves
    for p, pki in later:
        kcm = _kubeconfig(p, pki["ca.crt"], "controller-manager", pki["token-controller-manager"])
        sched = _kubeconfig(p, pki["ca.crt"], "scheduler", pki["token-scheduler"])
        _spawn(
            p.namespace,
            p.directory,
            "kube-controller-manager",
            _controller_manager(bins, p, pki, kcm),
        )
        _spawn(p.namespace, p.directory, "kube-scheduler", _scheduler(bins, sched))
    for plane in out["planes"]:
        wait_ready(plane, timeout_s, controllers=True)
    out["kubeconfig"] = write_kubeconfig(out["planes"], state_dir)
    asyncio.run(_bind_ci_user(out["kubeconfig"], [p.cluster for p, _ in later]))
    return out


def user_rbac() -> Path:
    """The RBAC a netcheck user needs (the lab binds its user netcheck-ci with exactly it)."""
    return default_root().parent / "rbac" / "netcheck-user.yaml"


async def _bind_ci_user(kubeconfig: str, contexts: list[str]) -> None:
    """Apply netcheck-user.yaml, with the namespaces it names (mission-control: as a Mission
    Control install leaves it)."""
    objects = [o for o in yaml.safe_load_all(user_rbac().read_text()) if isinstance(o, dict)]
    namespaces = sorted(
        {str(o["metadata"]["namespace"]) for o in objects if o["metadata"].get("namespace")}
    )
    ns_objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n}} for n in namespaces
    ]
    try:
        for ctx in contexts:
            async with KubeClient(connection(kubeconfig, ctx)) as client:
                await apply_all(client, [*ns_objects, *objects])
    except KubeError as exc:
        raise LabError(f"binding the lab's user {CI_USER}: {exc}") from None


def _etcd(etcd: str, p: Plane) -> list[str]:
    return [
        etcd,
        "--name=default",
        f"--data-dir={os.path.join(p.directory, 'etcd')}",
        f"--listen-client-urls=http://127.0.0.1:{ETCD_PORT}",
        f"--advertise-client-urls=http://127.0.0.1:{ETCD_PORT}",
        f"--listen-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
        f"--initial-advertise-peer-urls=http://127.0.0.1:{ETCD_PEER_PORT}",
        f"--initial-cluster=default=http://127.0.0.1:{ETCD_PEER_PORT}",
    ]


# What the CI user does, in each API server's audit log (audit.log in the plane's folder), as a
# cluster admin would record it: every request's verb, resource and namespace, and for lists of
# Secrets the answer as sent, which shows whether netcheck asked for metadata only.
AUDIT_POLICY = f"""apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  - level: RequestResponse
    users: ["{CI_USER}"]
    verbs: ["list"]
    resources: [{{group: "", resources: ["secrets"]}}]
  - level: Metadata
    users: ["{CI_USER}"]
  - level: None
"""


def audit_log(plane_directory: str) -> str:
    return os.path.join(plane_directory, "audit.log")


def _apiserver(bins: str, p: Plane, pki: dict[str, str]) -> list[str]:
    return [
        os.path.join(bins, "kube-apiserver"),
        f"--bind-address={p.address}",
        f"--advertise-address={p.address}",
        f"--secure-port={API_PORT}",
        f"--etcd-servers=http://127.0.0.1:{ETCD_PORT}",
        f"--tls-cert-file={pki['apiserver.crt']}",
        f"--tls-private-key-file={pki['apiserver.key']}",
        f"--client-ca-file={pki['ca.crt']}",
        f"--token-auth-file={pki['tokens.csv']}",
        f"--kubelet-client-certificate={pki['kubelet-client.crt']}",
        f"--kubelet-client-key={pki['kubelet-client.key']}",
        "--kubelet-preferred-address-types=InternalIP",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={pki['sa.pub']}",
        f"--service-account-signing-key-file={pki['sa.key']}",
        f"--service-cluster-ip-range={p.service_cidr}",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=true",
        "--profiling=false",
        f"--cert-dir={os.path.join(p.directory, 'certs')}",
        f"--audit-policy-file={pki['audit-policy.yaml']}",
        f"--audit-log-path={audit_log(p.directory)}",
        "--audit-log-maxsize=64",
        "--audit-log-maxbackup=1",
    ]


def _controller_manager(bins: str, p: Plane, pki: dict[str, str], kubeconfig: str) -> list[str]:
    return [
        os.path.join(bins, "kube-controller-manager"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={KCM_PORT}",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki['sa.key']}",
        f"--root-ca-file={pki['ca.crt']}",
        f"--cluster-signing-cert-file={pki['ca.crt']}",
        f"--cluster-signing-key-file={pki['ca.key']}",
        f"--service-cluster-ip-range={p.service_cidr}",
        "--profiling=false",
    ]


def _scheduler(bins: str, kubeconfig: str) -> list[str]:
    return [
        os.path.join(bins, "kube-scheduler"),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={SCHEDULER_PORT}",
        "--leader-elect=false",
        "--profiling=false",
    ]


def start_kubelets(kube: dict[str, Any], state_file: str, timeout_s: float = 60.0) -> None:
    """The lab kubelet of each cluster (lab/kubelet.py); waits until every Node is Ready."""
    for pl in kube["planes"]:
        _spawn(
            pl["namespace"],
            pl["directory"],
            "kubelet",
            [
                sys.executable,
                "-m",
                "netcheck.lab.kubelet",
                "--state",
                state_file,
                "--cluster",
                pl["cluster"],
            ],
            host_mounts=True,
        )
    deadline = time.monotonic() + timeout_s
    for pl in kube["planes"]:
        while True:
            status, body = _get(pl, "/api/v1/nodes")
            nodes = json.loads(body).get("items") or [] if status == 200 else []
            ready = [n for n in nodes if _ready(n)]
            if nodes and len(ready) == len(nodes):
                break
            if time.monotonic() > deadline:
                raise LabError(
                    f"the {pl['cluster']} nodes were not Ready within {timeout_s:.0f}s "
                    f"({len(ready)} of {len(nodes)}); see {pl['directory']}/kubelet.log"
                )
            time.sleep(0.5)


NETPOL_QUEUE = 100  # the enforcer's NFQUEUE number (its default)


def start_enforcers(kube: dict[str, Any], hosts: list[dict[str, Any]], binary: str) -> None:
    """The NetworkPolicy enforcer (kube-network-policies, lab/netpolicy) on every node, in the
    node's network namespace, where every packet of the node's pods passes (they sit behind
    it: lab/pods.py). It reads pods, namespaces and policies as the cluster's admin (the lab's
    own machinery, as a CNI's agent reads them with its service account).

    The first packet of each connection from or to a pod of the node goes to the enforcer's
    NFQUEUE, which accepts or drops it as the policies say. kube-network-policies puts it there
    with an nftables `queue` rule, which this machine's kernel lacks (no nft_queue: the rule
    fails with ENOENT and the enforcer logs it at each sync); the lab puts it there with
    iptables' NFQUEUE target instead (xt_NFQUEUE through nft_compat), in the forward path where
    pods' packets cross the node, for new connections only, as the enforcer's own rules do.
    The decisions stay the enforcer's; --queue-bypass lets packets through while it starts,
    and its fail-open mode while its queue is full (lab/netpolicy/main.go says why)."""
    for pl in kube["planes"]:
        for h in hosts:
            if h["cluster"] != pl["cluster"] or h["role"] != "database":
                continue
            node = node_name(h)
            for way in ("-i", "-o"):  # from a pod of this node, or to one
                net.iptables(
                    h["namespace"],
                    "-t",
                    "mangle",
                    "-A",
                    "FORWARD",
                    way,
                    "vp+",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW",
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    str(NETPOL_QUEUE),
                    "--queue-bypass",
                )
            _spawn(
                h["namespace"],
                pl["directory"],
                f"netpol-{node}",
                [
                    binary,
                    f"--kubeconfig={kube['kubeconfig']}",
                    f"--context={pl['cluster']}",
                    f"--node={node}",
                    f"--nfqueue-id={NETPOL_QUEUE}",
                    "-v=1",
                ],
            )


def _ready(node: dict[str, Any]) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or []
    )


def _get(plane: dict[str, Any], path: str, timeout: float = 5.0) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=plane["ca_file"])
    req = urllib.request.Request(
        plane["server"] + path, headers={"Authorization": f"Bearer {plane['admin_token']}"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as resp:
            return int(resp.status), resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode("utf-8", "replace")


def wait_ready(plane: dict[str, Any], timeout_s: float, controllers: bool = True) -> None:
    """Until /readyz answers ok and (controllers) the default ServiceAccount exists, which the
    controller manager makes."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            status, _ = _get(plane, "/readyz")
            if status == 200 and not controllers:
                return
            if status == 200:
                status, _ = _get(plane, "/api/v1/namespaces/default/serviceaccounts/default")
                if status == 200:
                    return
                last = "the controller manager has not made the default ServiceAccount yet"
            else:
                last = f"/readyz answered {status}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(0.5)
    raise LabError(
        f"the {plane['cluster']} API server was not ready within {timeout_s:.0f}s ({last}); "
        f"see {plane['directory']}/*.log"
    )


def write_kubeconfig(plane_states: list[dict[str, Any]], state_dir: str) -> str:
    """Contexts named after the clusters (admin), and CLUSTER-ci for the user netcheck-ci."""
    clusters: dict[str, tuple[str, str]] = {}
    tokens: dict[str, str] = {}
    contexts: list[tuple[str, str, str]] = []
    for pl in plane_states:
        name = pl["cluster"]
        clusters[name] = (pl["server"], pl["ca_file"])
        tokens[f"{name}-admin"] = pl["admin_token"]
        tokens[f"{name}-ci"] = pl["ci_token"]
        contexts += [(name, name, f"{name}-admin"), (f"{name}-ci", name, f"{name}-ci")]
    return _write_kubeconfig(os.path.join(state_dir, "kubeconfig"), clusters, tokens, contexts)


def all_ready(kube: dict[str, Any]) -> bool:
    """Every API server of the lab answers /readyz."""
    try:
        return all(_get(pl, "/readyz", timeout=2.0)[0] == 200 for pl in kube["planes"])
    except (urllib.error.URLError, OSError, KeyError):
        return False
