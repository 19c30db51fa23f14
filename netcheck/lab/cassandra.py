"""Real Apache Cassandra 5.0 in the lab: one JVM per database pod, inside its namespace.

The jars come from Maven Central once (`cassandra-all` and its runtime dependencies) and are
kept under the user's cache directory, so later labs start offline. Every node gets:
GossipingPropertyFileSnitch with the pod's DC and rack, seeds in every DC, internode TLS on 7000
from a CA the lab generates (PEM files, mutual TLS), JMX on the pod's loopback for nodetool,
and a small heap. The JVM runs as nobody; its data, logs and configuration live under the lab's
state directory, which `lab down` removes.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from netcheck.lab.net import LabError

CASSANDRA_VERSION = "5.0.8"
CLUSTER_NAME = "netcheck-lab"
JMX_PORT = 7199
NATIVE_PORT = 9042
STORAGE_PORT = 7000
SSL_STORAGE_PORT = 7001
HEAP = "320M"
NOBODY = "65534"
STARTED = "Startup complete"
CACHE_ENV = "NETCHECK_CACHE_DIR"
ENCRYPTIONS = ("all", "dc", "rack", "none")

# conf/jvm17-server.options of Cassandra 5.0 (JPMS part) and the Netty options next to it.
JVM17_OPTIONS = (
    "-Djdk.attach.allowAttachSelf=true",
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED",
    "--add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED",
    "--add-exports=java.sql/java.sql=ALL-UNNAMED",
    "--add-exports=java.base/java.lang.ref=ALL-UNNAMED",
    "--add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED",
    "--add-exports=jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED",
    "--add-exports=jdk.attach/sun.tools.attach=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.loader=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.math=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.module=ALL-UNNAMED",
    "--add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED",
    "--add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=jdk.compiler/com.sun.tools.javac=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dio.netty.allocator.useCacheForAllThreads=true",
    "-Dio.netty.allocator.maxOrder=11",
)

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>netcheck.lab</groupId>
  <artifactId>cassandra-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
</project>
"""

LOGBACK = """<configuration scan="false">
  <appender name="SYSTEMLOG" class="ch.qos.logback.core.FileAppender">
    <file>{log}</file>
    <encoder><pattern>%-5level [%thread] %date{{ISO8601}} %F:%L - %msg%n</pattern></encoder>
  </appender>
{console}  <logger name="org.apache.cassandra" level="INFO"/>
  <logger name="com.datastax" level="WARN"/>
  <root level="INFO"><appender-ref ref="SYSTEMLOG"/>{console_ref}</root>
</configuration>
"""
# In a pod Cassandra also logs to stdout (its own logback.xml does), so the pod's log is its log.
CONSOLE = """  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
"""


@dataclass(frozen=True, kw_only=True)
class NodeFiles:
    """Where one node keeps everything, under the lab's state directory."""

    root: str

    @property
    def conf(self) -> str:
        return os.path.join(self.root, "conf")

    @property
    def data(self) -> str:
        return os.path.join(self.root, "data")

    @property
    def logs(self) -> str:
        return os.path.join(self.root, "logs")

    @property
    def system_log(self) -> str:
        return os.path.join(self.logs, "system.log")

    @property
    def stdout_log(self) -> str:
        return os.path.join(self.logs, "stdout.log")


def cache_root() -> str:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "netcheck")


def java_major(java: str = "java") -> int:
    if shutil.which(java) is None:
        raise LabError("Java is not installed: apt-get install openjdk-17-jre-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if found is None:
        raise LabError(f"cannot read the Java version from `java -version`: {out.strip()[:80]}")
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def ensure_runtime(version: str = CASSANDRA_VERSION) -> str:
    """The lib directory with cassandra-all and its dependencies; Maven fills it once."""
    major = java_major()
    if major not in (11, 17):
        raise LabError(
            f"Cassandra {version} runs on Java 11 or 17, this machine has Java {major}: "
            "install openjdk-17-jre-headless"
        )
    home = os.path.join(cache_root(), f"cassandra-{version}")
    lib = os.path.join(home, "lib")
    if os.path.exists(os.path.join(home, ".complete")):
        return lib
    if shutil.which("mvn") is None:
        raise LabError(
            f"Cassandra {version} is not cached in {home} and Maven is missing: "
            "apt-get install maven"
        )
    os.makedirs(home, exist_ok=True)
    work = tempfile.mkdtemp(prefix="fetch-", dir=home)
    try:
        with open(os.path.join(work, "pom.xml"), "w", encoding="utf-8") as f:
            f.write(POM.format(version=version))
        proc = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                os.path.join(work, "pom.xml"),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={os.path.join(work, 'lib')}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
            raise LabError(
                f"Maven could not fetch org.apache.cassandra:cassandra-all:{version} "
                f"({tail[0][:120]}): check access to Maven Central, then run `lab up` again"
            )
        shutil.rmtree(lib, ignore_errors=True)
        os.replace(os.path.join(work, "lib"), lib)
        with open(os.path.join(home, ".complete"), "w", encoding="utf-8") as f:
            f.write(version + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return lib


def install_runtime(lib: str, state_dir: str) -> str:
    """A copy of the jars the JVMs (running as nobody) can read: the cache may sit in /root."""
    dest = os.path.join(state_dir, "cassandra", "lib")
    if not os.path.isdir(dest):
        tmp = dest + ".tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(lib, tmp)
        os.chmod(os.path.join(state_dir, "cassandra"), 0o755)
        os.replace(tmp, dest)
    scratch = java_tmpdir(dest)
    os.makedirs(scratch, mode=0o700, exist_ok=True)
    os.chown(scratch, int(NOBODY), int(NOBODY))
    return dest


def java_tmpdir(lib: str) -> str:
    """The lab JVMs' java.io.tmpdir, beside their jars: lz4 and snappy unpack native libraries
    there at every start, and `lab down` removes it (in /tmp they piled up)."""
    return os.path.join(os.path.dirname(lib), "tmp")


def classpath(lib: str, conf: str | None = None) -> str:
    jars = sorted(os.path.join(lib, j) for j in os.listdir(lib) if j.endswith(".jar"))
    return os.pathsep.join(([conf] if conf else []) + jars)


def _jar(lib: str, prefix: str) -> str | None:
    for j in sorted(os.listdir(lib)):
        if j.startswith(prefix) and j.endswith(".jar"):
            return os.path.join(lib, j)
    return None


# ---------------------------------------------------------------- certificates


@dataclass(frozen=True, kw_only=True)
class LabCA:
    cert_pem: bytes
    key: ec.EllipticCurvePrivateKey

    @staticmethod
    def generate(common_name: str = "netcheck lab internode CA") -> LabCA:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256())
        )
        return LabCA(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key=key)

    def issue(
        self, common_name: str, address: str, *, expired: bool = False, days: int = 365
    ) -> bytes:
        """A PEM holding the node's PKCS#8 key and its certificate (Cassandra's PEM keystore):
        valid `days`, or (a lab fault) expired yesterday."""
        ca_cert = x509.load_pem_x509_certificate(self.cert_pem)
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        start = now - datetime.timedelta(days=30 if expired else 0, minutes=5)
        end = now - datetime.timedelta(days=1) if expired else now + datetime.timedelta(days=days)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(end)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(common_name), x509.IPAddress(ipaddress.ip_address(address))]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return key_pem + cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------- configuration


def node_files(state_dir: str, host: dict[str, Any]) -> NodeFiles:
    return NodeFiles(root=os.path.join(state_dir, "cassandra", host["name"]))


def seeds_of(hosts: Iterable[dict[str, Any]]) -> list[str]:
    """The first pod of every datacenter: seeds in both DCs, as cass-operator labels them."""
    seeds: dict[tuple[str, str], str] = {}
    for h in hosts:
        if h["role"] == "database":
            seeds.setdefault((h["cluster"], h["datacenter"]), h["address"])
    return list(seeds.values())


NUM_TOKENS = 16


def initial_tokens(index: int, count: int, per_node: int = NUM_TOKENS) -> str:
    """Tokens given up front, spread evenly and interleaved over the nodes.

    Nodes that start together and let Cassandra allocate tokens race each other ("Token
    allocation failed" when a node sees fewer racks than the replication factor); a new
    cluster with its tokens written down has nothing to allocate.
    """
    total = count * per_node
    tokens = (-(2**63) + (k * 2**64) // total for k in range(index, total, count))
    return ",".join(str(t) for t in tokens)


def cassandra_yaml(
    host: dict[str, Any],
    files: NodeFiles,
    seeds: list[str],
    encryption: str,
    legacy_ssl: bool,
    tokens: str,
    tls_overrides: dict[str, Any] | None = None,
) -> dict[str, Any]:
    tls = {
        "internode_encryption": encryption,
        "optional": False,
        "legacy_ssl_storage_port_enabled": legacy_ssl,
        "ssl_context_factory": {
            "class_name": "org.apache.cassandra.security.PEMBasedSslContextFactory"
        },
        "keystore": os.path.join(files.conf, "node.pem"),
        "truststore": os.path.join(files.conf, "ca.pem"),
        "require_client_auth": True,
        "protocol": "TLS",
        "accepted_protocols": ["TLSv1.2", "TLSv1.3"],
        **(tls_overrides or {}),
    }
    return {
        "cluster_name": CLUSTER_NAME,
        "num_tokens": NUM_TOKENS,
        "initial_token": tokens,
        "partitioner": "org.apache.cassandra.dht.Murmur3Partitioner",
        "endpoint_snitch": "GossipingPropertyFileSnitch",
        "seed_provider": [
            {
                "class_name": "org.apache.cassandra.locator.SimpleSeedProvider",
                "parameters": [{"seeds": ",".join(f"{s}:{STORAGE_PORT}" for s in seeds)}],
            }
        ],
        "listen_address": host["address"],
        "rpc_address": "0.0.0.0",
        "broadcast_rpc_address": host["address"],
        "storage_port": STORAGE_PORT,
        "ssl_storage_port": SSL_STORAGE_PORT,
        "native_transport_port": NATIVE_PORT,
        "start_native_transport": True,
        "auto_bootstrap": False,
        "data_file_directories": [os.path.join(files.data, "data")],
        "commitlog_directory": os.path.join(files.data, "commitlog"),
        "saved_caches_directory": os.path.join(files.data, "saved_caches"),
        "hints_directory": os.path.join(files.data, "hints"),
        "cdc_raw_directory": os.path.join(files.data, "cdc_raw"),
        "commitlog_sync": "periodic",
        "commitlog_sync_period": "10000ms",
        "commitlog_segment_size": "8MiB",
        "concurrent_reads": 4,
        "concurrent_writes": 4,
        "concurrent_counter_writes": 4,
        "concurrent_compactors": 1,
        "memtable_heap_space": "32MiB",
        "memtable_offheap_space": "32MiB",
        "key_cache_size": "4MiB",
        "prepared_statements_cache_size": "4MiB",
        "authenticator": "PasswordAuthenticator",
        "authorizer": "AllowAllAuthorizer",
        "server_encryption_options": tls,
        # no client TLS: Cassandra 5.0 serves it on 9042 itself (9142 beside it, the dual
        # port, is deprecated there and advertises peers on the TLS port, which slows plaintext
        # clients that discover peers: the Management API stand-in stalled on the lab)
        "client_encryption_options": {"enabled": False},
        "dynamic_snitch": True,
        "read_request_timeout": "5000ms",
        "write_request_timeout": "2000ms",
    }


def write_node_config(
    host: dict[str, Any],
    files: NodeFiles,
    seeds: list[str],
    ca: LabCA,
    encryption: str,
    legacy_ssl: bool,
    tokens: str,
    console: bool = False,
    tls_fault: str | None = None,
) -> None:
    """tls_fault: one of TLS_FAULTS, for the lab's TLS tests (None: as a healthy node)."""
    for d in (files.conf, files.data, files.logs):
        os.makedirs(d, exist_ok=True)
    overrides = {"optional": {"optional": True}, "no-client-auth": {"require_client_auth": False}}
    with open(os.path.join(files.conf, "cassandra.yaml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(
            cassandra_yaml(
                host, files, seeds, encryption, legacy_ssl, tokens, overrides.get(tls_fault or "")
            ),
            f,
        )
    with open(os.path.join(files.conf, "cassandra-rackdc.properties"), "w", encoding="utf-8") as f:
        f.write(f"dc={host['datacenter']}\nrack={host['rack']}\nprefer_local=false\n")
    with open(os.path.join(files.conf, "logback.xml"), "w", encoding="utf-8") as f:
        f.write(
            LOGBACK.format(
                log=files.system_log,
                console=CONSOLE if console else "",
                console_ref='<appender-ref ref="STDOUT"/>' if console else "",
            )
        )
    with open(os.path.join(files.conf, "ca.pem"), "wb") as f:
        f.write(ca.cert_pem)
    write_certificate(host, files, ca, tls_fault if tls_fault in CERT_FAULTS else None)
    # the JVM runs as nobody: it owns its tree, nobody else reads its key
    for root, dirs, names in os.walk(files.root):
        for n in (*dirs, *names):
            os.chown(os.path.join(root, n), int(NOBODY), int(NOBODY))
    os.chown(files.root, int(NOBODY), int(NOBODY))


CERT_FAULTS = ("expired", "other-ca", "expiring")
EXPIRING_DAYS = 10


def write_certificate(host: dict[str, Any], files: NodeFiles, ca: LabCA, fault: str | None) -> None:
    """The node's key and certificate (node.pem, internode and client TLS alike): from the
    lab's CA and valid a year, or with a certificate fault."""
    issuer = LabCA.generate("another CA") if fault == "other-ca" else ca
    pem = issuer.issue(
        host["name"],
        host["address"],
        expired=fault == "expired",
        days=EXPIRING_DAYS if fault == "expiring" else 365,
    )
    key_path = os.path.join(files.conf, "node.pem")
    with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(pem)
    if os.path.isdir(files.root):
        os.chown(key_path, int(NOBODY), int(NOBODY))


def jvm_command(lib: str, files: NodeFiles, heap: str = HEAP) -> list[str]:
    jamm = _jar(lib, "jamm-")
    return [
        "java",
        f"-Xms{heap}",
        f"-Xmx{heap}",
        "-Xss256k",
        "-XX:MaxDirectMemorySize=256M",
        "-XX:+UseG1GC",
        "-XX:+ParallelRefProcEnabled",
        "-XX:MaxTenuringThreshold=1",
        "-XX:TieredStopAtLevel=1",
        "-XX:CICompilerCount=2",
        "-XX:ActiveProcessorCount=1",
        "-XX:ParallelGCThreads=1",
        *JVM17_OPTIONS,
        f"-Djava.io.tmpdir={java_tmpdir(lib)}",
        *([f"-javaagent:{jamm}"] if jamm else []),
        "-Dcassandra-foreground=yes",
        f"-Dcassandra.config=file://{os.path.join(files.conf, 'cassandra.yaml')}",
        f"-Dcassandra.logdir={files.logs}",
        f"-Dcassandra.storagedir={files.data}",
        f"-Dlogback.configurationFile={os.path.join(files.conf, 'logback.xml')}",
        f"-Dcassandra.jmx.local.port={JMX_PORT}",
        "-Dcassandra.skip_wait_for_gossip_to_settle=0",
        "-Dcassandra.ring_delay_ms=3000",
        "-Dcassandra.superuser_setup_delay_ms=0",
        "-Djava.net.preferIPv4Stack=true",
        "-cp",
        classpath(lib, files.conf),
        "org.apache.cassandra.service.CassandraDaemon",
    ]


NODETOOL_BATCH = "NodetoolBatch"  # java/NodetoolBatch.java: several commands, one JVM


def nodetool_command(lib: str, *args: str) -> list[str]:
    jmx = ["-h", "127.0.0.1", "-p", str(JMX_PORT)]
    return [*nodetool_jvm(lib, classpath(lib)), "org.apache.cassandra.tools.NodeTool", *jmx, *args]


def nodetool_batch_command(lib: str, batch_classes: str, commands: list[list[str]]) -> list[str]:
    """nodetool's commands in one JVM (the lab's pods share this machine's cores)."""
    cp = os.pathsep.join((batch_classes, classpath(lib)))
    main = f"org.apache.cassandra.tools.{NODETOOL_BATCH}"
    jmx = ["127.0.0.1", str(JMX_PORT)]
    return [*nodetool_jvm(lib, cp), main, *jmx, *(" ".join(c) for c in commands)]


def nodetool_jvm(lib: str, cp: str) -> list[str]:
    """java and the options nodetool runs with, up to the main class."""
    return [
        "java",
        "-Xmx128M",
        "-XX:TieredStopAtLevel=1",
        "-XX:+UseSerialGC",
        "-Xshare:auto",
        "-Dcassandra.storagedir=/nonexistent",
        "-Dlogback.configurationFile=/nonexistent",
        *JVM17_OPTIONS,
        f"-Djava.io.tmpdir={java_tmpdir(lib)}",
        "-cp",
        cp,
    ]


# ---------------------------------------------------------------- processes


def in_pod_as_nobody(namespace: str) -> list[str]:
    """The prefix that runs a command in a lab pod's namespace as nobody, no capabilities."""
    return [
        "ip",
        "netns",
        "exec",
        namespace,
        "setpriv",
        f"--reuid={NOBODY}",
        f"--regid={NOBODY}",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
    ]


def start_node(namespace: str, lib: str, files: NodeFiles) -> None:
    cmd = ["setsid", "--fork", *in_pod_as_nobody(namespace), *jvm_command(lib, files)]
    out = open(files.stdout_log, "ab")  # noqa: SIM115
    try:
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/", check=True)
    finally:
        out.close()


def stop_node(namespace: str, grace_s: float = 10.0) -> None:
    pid = jvm_pid(namespace)
    if pid is None:
        return
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def log_tail(path: str) -> str:
    """Why a node stopped: its last ERROR and the exception under it, or its last line."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return "no log yet"
    errors = [i for i, ln in enumerate(lines) if ln.startswith(("ERROR", "Error", "Exception"))]
    if not errors:
        return (lines[-1] if lines else "empty log")[:300]
    i = errors[-1]
    text = lines[i].split(" - ", 1)[-1]
    if i + 1 < len(lines) and not lines[i + 1].startswith(("INFO", "WARN", "ERROR", "\t")):
        text += f": {lines[i + 1]}"
    return text[:300]


def log_contains(path: str, needle: str) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return needle in f.read()
    except OSError:
        return False


def pid_in(namespace: str, marker: bytes) -> int | None:
    """A process in the namespace whose command line holds marker, if any."""
    out = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    )
    for pid in out.stdout.split():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if marker in f.read():
                    return int(pid)
        except OSError:
            continue
    return None


def jvm_pid(namespace: str) -> int | None:
    """The CassandraDaemon running in the namespace, if any."""
    return pid_in(namespace, b"CassandraDaemon")


def jvm_running(namespace: str) -> bool:
    return jvm_pid(namespace) is not None


def wait_started(nodes: dict[str, tuple[str, NodeFiles]], timeout_s: float) -> dict[str, str]:
    """Until every node logged 'Startup complete' or its JVM exited; name -> "started" or
    why it exited. nodes: name -> (namespace, files)."""
    deadline = time.monotonic() + timeout_s
    waiting = dict(nodes)
    outcome: dict[str, str] = {}
    while waiting and time.monotonic() < deadline:
        time.sleep(0.5)
        for name, (namespace, files) in list(waiting.items()):
            if log_contains(files.system_log, STARTED):
                outcome[name] = "started"
            elif not jvm_running(namespace):
                why = log_tail(files.system_log)
                outcome[name] = log_tail(files.stdout_log) if why == "no log yet" else why
            else:
                continue
            del waiting[name]
    if waiting:
        name, (_, files) = next(iter(sorted(waiting.items())))
        raise LabError(
            f"Cassandra did not start within {timeout_s:.0f}s on {', '.join(sorted(waiting))}: "
            f"{log_tail(files.system_log)} (see {files.logs})"
        )
    return outcome


def require_started(outcome: dict[str, str], nodes: dict[str, tuple[str, NodeFiles]]) -> None:
    for name, what in sorted(outcome.items()):
        if what != "started":
            raise LabError(
                f"Cassandra on {name} exited during start-up: {what} (see {nodes[name][1].logs})"
            )


# ---------------------------------------------------------------- the lab's cluster

_UP_DOWN = re.compile(r"InetAddress /?([0-9a-fA-F.:]+?)(?::\d+)? is now (UP|DOWN)")


def peers_up(system_log: str) -> set[str]:
    """Peers this node's gossip last marked UP, read from its log."""
    last: dict[str, str] = {}
    try:
        with open(system_log, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = _UP_DOWN.search(line)
                if m:
                    last[m.group(1)] = m.group(2)
    except OSError:
        return set()
    return {a for a, s in last.items() if s == "UP"}


def database_hosts(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [h for h in state["hosts"] if h["role"] == "database"]


def legacy_clusters(state: dict[str, Any]) -> set[str]:
    return {c["name"] for c in state["spec"]["clusters"] if c.get("legacy_ssl_port")}


def _ca(state_dir: str) -> LabCA:
    """The lab's CA, made once per lab and kept (root only) for node restarts."""
    root = os.path.join(state_dir, "cassandra")
    cert_path, key_path = os.path.join(root, "ca.pem"), os.path.join(root, "ca.key")
    if os.path.exists(key_path):
        with open(cert_path, "rb") as f:
            cert = f.read()
        with open(key_path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return LabCA(cert_pem=cert, key=key)
    ca = LabCA.generate()
    os.makedirs(root, mode=0o755, exist_ok=True)
    with open(cert_path, "wb") as f:
        f.write(ca.cert_pem)
    with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(
            ca.key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return ca


def _configure(
    state: dict[str, Any],
    state_dir: str,
    host: dict[str, Any],
    encryption: str,
    tls_fault: str | None = None,
) -> NodeFiles:
    files = node_files(state_dir, host)
    hosts = database_hosts(state)
    index = next(i for i, h in enumerate(hosts) if h["name"] == host["name"])
    write_node_config(
        host,
        files,
        seeds_of(hosts),
        _ca(state_dir),
        encryption,
        host["cluster"] in legacy_clusters(state),
        initial_tokens(index, len(hosts)),
        console=bool(state.get("kubernetes")),
        tls_fault=tls_fault,
    )
    return files


TLS_FAULTS = (*CERT_FAULTS, "optional", "no-client-auth")


def set_tls_fault(state: dict[str, Any], state_dir: str, name: str, fault: str | None) -> None:
    """Rewrite one node's configuration with a TLS fault (None: healthy again). It takes
    effect when the node starts again (in the Kubernetes lab: its pod is made anew)."""
    if fault is not None and fault not in TLS_FAULTS:
        raise LabError(f"TLS fault {fault!r}: use one of {', '.join(TLS_FAULTS)}")
    host = next((h for h in database_hosts(state) if h["name"] == name), None)
    if host is None:
        raise LabError(f"no database node {name!r} in the lab")
    encryption = ((state.get("cassandra") or {}).get("encryption") or {}).get(name, "all")
    _configure(state, state_dir, host, encryption, fault)


def swap_certificate(state: dict[str, Any], state_dir: str, name: str, fault: str | None) -> None:
    """Give a running node another certificate (one of CERT_FAULTS; None: a good one again).
    It takes effect at `nodetool reloadssl` in the node (Cassandra 4.0+ reloads its keystore
    for new connections; those already open stay): a node with an expired certificate or one
    from another CA would not rejoin its peers if restarted, and a fault that keeps the node
    out of the cluster hides the TLS finding behind the outage."""
    if fault is not None and fault not in CERT_FAULTS:
        raise LabError(f"certificate fault {fault!r}: use one of {', '.join(CERT_FAULTS)}")
    host = next((h for h in database_hosts(state) if h["name"] == name), None)
    if host is None:
        raise LabError(f"no database node {name!r} in the lab")
    write_certificate(host, node_files(state_dir, host), _ca(state_dir), fault)


def ca_file(state_dir: str) -> str:
    """The lab's internode CA certificate (what `run --ca-file` is given)."""
    return os.path.join(state_dir, "cassandra", "ca.pem")


def configure_all(state: dict[str, Any], state_dir: str) -> None:
    """Every node's configuration, before any starts (a Kubernetes lab's pods read it)."""
    for h in database_hosts(state):
        _configure(state, state_dir, h, "all")


def start_cluster(
    state: dict[str, Any], state_dir: str, lib: str, timeout_s: float
) -> dict[str, Any]:
    """Start the seeds, then every other node (a new cluster with its tokens given: nobody
    bootstraps), retry a node whose JVM exited during start-up, and wait until every node
    has started and sees every other UP; returns the lab state's record."""
    started = time.monotonic()
    run_lib = install_runtime(lib, state_dir)
    hosts = database_hosts(state)
    seeds = set(seeds_of(hosts))
    # A node that finds no seed answering exits ("Unable to gossip with any peers"): the
    # seeds come first, as cass-operator starts them.
    for group in (
        [h for h in hosts if h["address"] in seeds],
        [h for h in hosts if h["address"] not in seeds],
    ):
        nodes = {}
        for h in group:
            files = _configure(state, state_dir, h, "all")
            start_node(h["namespace"], run_lib, files)
            nodes[h["name"]] = (h["namespace"], files)
        left = timeout_s - (time.monotonic() - started)
        outcome = wait_started(nodes, left)
        for _ in range(START_RETRIES):
            failed = {n: nodes[n] for n, what in outcome.items() if what != "started"}
            if not failed:
                break
            for namespace, files in failed.values():
                _fresh_data(files)
                start_node(namespace, run_lib, files)
            outcome.update(wait_started(failed, timeout_s - (time.monotonic() - started)))
        require_started(outcome, nodes)
    wait_gossip(state, state_dir, timeout_s - (time.monotonic() - started))
    return {
        "version": CASSANDRA_VERSION,
        "lib": run_lib,
        "nodes": [h["name"] for h in hosts],
        "encryption": {h["name"]: "all" for h in hosts},
        "legacy_ssl_port": sorted(
            h["name"] for h in hosts if h["cluster"] in legacy_clusters(state)
        ),
        "start_s": round(time.monotonic() - started, 1),
    }


def wait_gossip(
    state: dict[str, Any], state_dir: str, timeout_s: float, names: Iterable[str] | None = None
) -> None:
    """Until each node (of names, default all) has marked every other UP in its log."""
    hosts = database_hosts(state)
    everyone = {h["address"] for h in hosts}
    wanted = set(names) if names is not None else {h["name"] for h in hosts}
    deadline = time.monotonic() + max(timeout_s, 1.0)
    while True:
        missing = {
            h["name"]: everyone - {h["address"]} - peers_up(node_files(state_dir, h).system_log)
            for h in hosts
            if h["name"] in wanted
        }
        missing = {n: m for n, m in missing.items() if m}
        if not missing:
            return
        if time.monotonic() > deadline:
            name, peers = sorted(missing.items())[0]
            raise LabError(
                f"Cassandra gossip did not converge within {timeout_s:.0f}s: {name} does not see "
                f"{', '.join(sorted(peers))} UP (see {node_files(state_dir, hosts[0]).logs})"
            )
        time.sleep(0.5)


START_RETRIES = 2


def _fresh_data(files: NodeFiles) -> None:
    """A node that exited during start-up starts again as new: its data and log go."""
    shutil.rmtree(files.data, ignore_errors=True)
    with contextlib.suppress(FileNotFoundError):
        os.remove(files.system_log)
    os.makedirs(files.data, exist_ok=True)
    os.chown(files.data, int(NOBODY), int(NOBODY))


def cluster_running(state: dict[str, Any], state_dir: str) -> bool:
    return all(jvm_running(h["namespace"]) for h in database_hosts(state))


def restart_node(
    state: dict[str, Any], state_dir: str, name: str, encryption: str, timeout_s: float = 180.0
) -> str:
    """Restart one node, with another internode_encryption (none: a node without TLS, which
    real Cassandra lets exit with "Unable to gossip with any peers"); returns "started" or
    why the JVM exited. A node that started is also waited for until gossip sees it UP."""
    record = state.get("cassandra")
    if not record:
        raise LabError("the lab runs no Cassandra: run `netcheck lab up --cassandra` first")
    if record.get("kubernetes"):
        raise LabError(
            "the lab's Cassandra runs in Kubernetes pods: delete the pod and its StatefulSet "
            "makes it again"
        )
    if encryption not in ENCRYPTIONS:
        raise LabError(f"--internode-encryption {encryption}: use one of {', '.join(ENCRYPTIONS)}")
    host = next((h for h in database_hosts(state) if h["name"] == name), None)
    if host is None:
        known = ", ".join(record["nodes"])
        raise LabError(f"no Cassandra node named {name!r} in the lab: use one of {known}")
    files = node_files(state_dir, host)
    stop_node(host["namespace"])
    with contextlib.suppress(FileNotFoundError):
        os.remove(files.system_log)  # a fresh log: start-up and gossip waits read it
    _configure(state, state_dir, host, encryption)
    start_node(host["namespace"], record["lib"], files)
    record["encryption"][name] = encryption
    what = wait_started({name: (host["namespace"], files)}, timeout_s)[name]
    if what == "started" and encryption == "all":
        wait_gossip(state, state_dir, timeout_s)
    return what


def nodetool_argv(state: dict[str, Any], name: str, args: Iterable[str]) -> list[str]:
    """The command that runs nodetool inside a lab pod, as nobody, against its local JMX."""
    namespace, lib = _pod_and_lib(state, name)
    return [*in_pod_as_nobody(namespace), *nodetool_command(lib, *args)]


def nodetool_batch_argv(
    state: dict[str, Any], name: str, batch_classes: str, commands: list[list[str]]
) -> list[str]:
    """Like nodetool_argv, for several commands in one JVM (java/NodetoolBatch.java)."""
    namespace, lib = _pod_and_lib(state, name)
    return [*in_pod_as_nobody(namespace), *nodetool_batch_command(lib, batch_classes, commands)]


def _pod_and_lib(state: dict[str, Any], name: str) -> tuple[str, str]:
    record = state.get("cassandra")
    if not record:
        raise LabError("the lab runs no Cassandra: run `netcheck lab up --cassandra` first")
    host = next((h for h in database_hosts(state) if h["name"] == name), None)
    if host is None:
        raise LabError(f"no Cassandra node named {name!r} in the lab")
    return host["namespace"], str(record["lib"])
