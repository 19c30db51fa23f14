"""Cassandra system.log and debug.log: internode trouble counted per peer, the internode
listeners, and the start-up failures that keep a node out of the ring.

The shapes of 2.1 to 5.0 and DSE (see ../../shared field facts and tests/data/README.md):
- lines as log4j/logback write them (`LEVEL [thread] DATE TIME File.java:N - message`), as
  the console of a container prints them (`LEVEL  HH:MM:SS message`), and with the prefixes
  `kubectl logs --timestamps` (`2020-10-23T08:08:04.06Z `) or `--prefix` (`[pod/x/c] `) adds;
- 4.0+ (netty): `LOCAL->PEER-URGENT_MESSAGES-[no-channel] failed to connect`, `Failed to
  connect to peer NAME/PEER:PORT(...)`, `Failed to properly handshake with peer PEER`;
- 3.x (OutboundTcpConnection): `Unable to connect to /PEER` in debug.log, `SSL handshake
  error for outbound connection to ...`, `Cannot handshake version with /PEER`.
The lines after a failure (its exception and stack) say why it failed; they are read, never
counted on their own, and only TLS words make a failure a TLS one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netcheck.model.gossip import Listener, LogSignature, Signature
from netcheck.model.probe import LOOK_SOURCE_PORTS
from netcheck.nodetool.common import clean, is_address, split_address

_TIME = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?|\b\d\d:\d\d:\d\d(?:,\d+)?)")
# what tools put before a log line: `kubectl logs --prefix`, `--timestamps`, both
_PREFIX = re.compile(
    r"^(?:\[[\w./-]{1,253}\]\s+)?(?:\d{4}-\d\d-\d\dT[\d:.]+(?:Z|[+-]\d\d:?\d\d)\s+)?"
)
_LOG_LINE = re.compile(r"^(TRACE|DEBUG|INFO|WARN|ERROR)\s+(?:\[|\d\d:\d\d:\d\d\b)")
_OUT_FAIL = re.compile(
    r"(?:^|\s)(?:(\S+?)->)?(\S+?)-[A-Z_]+_MESSAGES-\[no-channel\] failed to connect"
)
# 4.0: Failed to connect to peer; 4.1+: Failed to handshake with peer (OutboundConnectionInitiator)
_OUT_PEER = re.compile(r"Failed to (?:connect to|handshake with) peer (\S+?)(?:\(|\s|$)")
_OWN_CERT_EXPIRED = re.compile(r"Certificate for (\S+) expired on (.+?)\s*$")
# an alert the peer sent: it refused this node's side of the handshake
_ALERT_RECEIVED = re.compile(r"(?:SSLV3|TLSV1)_ALERT_[A-Z_]+|Received fatal alert: \w+")
_OUT_3X = re.compile(r"Unable to connect to (/?\S+)")
_OUT_3X_SSL = re.compile(r"SSL handshake error for outbound connection to .*?addr=(/?[^,\]]+)")
_HANDSHAKE_3X = re.compile(r"Cannot handshake version with (/?\S+)")
_IN_HANDSHAKE = re.compile(r"Failed to properly handshake with peer (/?\S+?)\.? Closing")
_TLS_OFF_HERE = re.compile(r"Rejected incoming TLS connection before negotiating from (/?\S+?) to")
_DOWN = re.compile(r"InetAddress (/?\S+?) is now DOWN")
_SHUTDOWN = re.compile(r"Node (/?\S+?) state jump to shutdown|Marked (/?\S+?) as shutdown")
_FAT_CLIENT = re.compile(r"FatClient (/?\S+) has been silent for \d+ms, removing from gossip")
_SEED_LOOKUP = re.compile(r"Seed provider couldn't lookup host (\S+)")
_NO_SEEDS = re.compile(r"The seed provider lists no seeds")
# fatal at start-up (the exception under "Exception encountered during startup"); seeds log
# it at INFO "but continuing anyway", which is normal for the first node of a cluster
_NO_PEERS = re.compile(r"Unable to gossip with any peers(?! but continuing)")
_ALONE = re.compile(r"Unable to gossip with any peers but continuing anyway")
_STARTUP_FAILED = re.compile(r"Exception encountered during startup")
_CONSISTENCY = re.compile(r"Cannot achieve consistency level (\w+)")
_LISTEN = re.compile(r"Listening on address: \((/?[^)]+)\), nic: \S+, encryption: (.+?)\s*$")
_TLS_WORDS = re.compile(
    r"SSL|TLS|certificat|PKIX|handshake_failure|bad_record_mac|unknown_ca|Received fatal alert"
)
_REASONS = (
    (re.compile(r"timed out|ConnectTimeoutException", re.I), Signature.CONNECT_TIMEOUT),
    (re.compile(r"Connection refused", re.I), Signature.CONNECT_REFUSED),
    (re.compile(r"No route to host|Network is unreachable", re.I), Signature.NO_ROUTE),
    (_TLS_WORDS, Signature.TLS_HANDSHAKE),
)
_DETAIL = re.compile(
    r"(not an SSL/TLS record|certificate_unknown|unable to find valid certification path"
    r"|PKIX path \w+ failed|bad_certificate|PEER_DID_NOT_RETURN_A_CERTIFICATE|"
    r"No subject alternative names?[^.]*|certificate_expired|NotAfter: [^,]+|"
    r"(?:SSLV3|TLSV1)_ALERT_[A-Z_]+|validity check failed|"
    r"Received fatal alert: \w+|handshake_failure|connection timed out|Connection refused|"
    r"Connection reset by peer|No route to host|TLS is explicitly disabled by configuration)",
    re.I,
)
_CLOSED_IN_TLS = "closed during the TLS handshake (ClosedChannelException in SslHandler)"
# lines after a failure that may hold its reason: the exception chain up to its root cause
# ("Caused by: ...CertificateExpiredException: NotAfter: ..." sits 50 lines down on 5.0)
FOLLOWING = 120


@dataclass
class _Count:
    count: int = 0
    first: str = ""
    last: str = ""
    detail: str = ""
    local: str = ""


@dataclass
class LogReading:
    signatures: list[LogSignature] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    lines: int = 0


def log_body(line: str) -> str | None:
    """The log line without what tools put before it, or None when it is no log line."""
    body = line[_PREFIX.match(line).end() :]  # type: ignore[union-attr]  # always matches
    return body if _LOG_LINE.match(body) else None


def is_log_line(line: str) -> bool:
    return log_body(line) is not None


def parse_log(text: str, *, cleaned: bool = False) -> LogReading:
    """`cleaned`: the text is clean()'s lines already (a paste's section), not read again."""
    counts: dict[tuple[Signature, str], _Count] = {}
    listeners: dict[tuple[str, int], Listener] = {}
    lines = text.splitlines() if cleaned else clean(text)

    def add(sig: Signature, peer: str, when: str, detail: str = "", local: str = "") -> None:
        c = counts.setdefault((sig, peer), _Count())
        c.count += 1
        c.first = c.first or when
        c.last = when or c.last
        c.detail = c.detail or detail
        c.local = c.local or local

    read = 0
    for i, line in enumerate(lines):
        body = log_body(line)
        if body is None:
            continue
        read += 1
        stamp = _TIME.search(body)
        when = stamp.group(1) if stamp else ""
        m = _OUT_FAIL.search(body)
        if m:
            sig, detail = _why(_following(lines, i), Signature.CONNECT_FAILED)
            add(sig, _peer(m.group(2)), when, detail, _peer(m.group(1) or ""))
            continue
        m = _OUT_PEER.search(body) or _OUT_3X.search(body)
        if m and is_address(_peer(m.group(1))):
            sig, detail = _why(_following(lines, i), Signature.CONNECT_FAILED)
            add(sig, _peer(m.group(1)), when, detail)
            continue
        m = _OUT_3X_SSL.search(body)
        if m:
            _, detail = _why(_following(lines, i), Signature.TLS_HANDSHAKE)
            add(Signature.TLS_HANDSHAKE, _peer(m.group(1)), when, detail)
            continue
        m = _IN_HANDSHAKE.search(body)
        if m:
            if not _netcheck_look(m.group(1)):
                # a TLS failure only when the lines after it say TLS; a reset or a timeout
                # during Cassandra's own handshake is a connect-level failure
                sig, detail = _why(_following(lines, i), Signature.HANDSHAKE_FAILED)
                tls = sig in (Signature.TLS_HANDSHAKE, Signature.TLS_REFUSED_BY_PEER)
                add(sig if tls else Signature.HANDSHAKE_FAILED, _peer(m.group(1)), when, detail)
            continue
        m = _OWN_CERT_EXPIRED.search(body)
        if m:
            add(Signature.CERT_EXPIRED_HERE, "", when, f"{m.group(1)} expired on {m.group(2)}")
            continue
        m = _TLS_OFF_HERE.search(body)
        if m:
            if not _netcheck_look(m.group(1)):
                add(
                    Signature.TLS_DISABLED_HERE,
                    _peer(m.group(1)),
                    when,
                    "TLS is explicitly disabled by configuration",
                )
            continue
        m = _HANDSHAKE_3X.search(body)
        if m:
            add(Signature.CONNECT_FAILED, _peer(m.group(1)), when, "Cannot handshake version")
            continue
        m = _DOWN.search(body)
        if m:
            add(Signature.MARKED_DOWN, _peer(m.group(1)), when)
            continue
        m = _SHUTDOWN.search(body)
        if m:
            add(Signature.SHUTDOWN_ANNOUNCED, _peer(m.group(1) or m.group(2)), when)
            continue
        m = _FAT_CLIENT.search(body)
        if m:
            add(Signature.FAT_CLIENT_REMOVED, _peer(m.group(1)), when)
            continue
        m = _SEED_LOOKUP.search(body)
        if m:
            add(Signature.SEED_UNRESOLVED, m.group(1), when)
            continue
        if _STARTUP_FAILED.search(body):
            told = [body, *_following(lines, i)[:2]]
            if any(_NO_PEERS.search(t) for t in told):
                add(Signature.UNABLE_TO_GOSSIP, "", when)
            elif any(_NO_SEEDS.search(t) for t in told):
                add(Signature.NO_SEEDS, "", when, "The seed provider lists no seeds")
            continue
        if _ALONE.search(body):
            add(Signature.STARTED_ALONE, "", when)
            continue
        m = _CONSISTENCY.search(body)
        if m:
            add(Signature.CONSISTENCY, "", when, f"Cannot achieve consistency level {m.group(1)}")
            continue
        m = _LISTEN.search(body)
        if m:
            address, port = split_address(m.group(1))
            if port is not None:
                listeners[(address, port)] = Listener(
                    address=address, port=port, encryption=m.group(2)
                )
    return LogReading(
        signatures=[
            LogSignature(
                signature=sig,
                peer=peer,
                count=c.count,
                first=c.first,
                last=c.last,
                detail=c.detail,
                local=c.local,
            )
            for (sig, peer), c in sorted(counts.items())
        ],
        listeners=sorted(listeners.values(), key=lambda x: (x.address, x.port)),
        lines=read,
    )


def _following(lines: list[str], i: int) -> list[str]:
    """The lines after line i up to the next log line (its exception and stack), bounded."""
    out = []
    for line in lines[i + 1 : i + 1 + FOLLOWING]:
        if is_log_line(line):
            break
        out.append(line)
    return out


def _why(after: list[str], otherwise: Signature) -> tuple[Signature, str]:
    """What the exception lines after a failure say: the first reason line gives the kind,
    the deepest cause that names a reason gives the detail (the root cause is last in the
    chain); a channel closed inside netty's SslHandler is a TLS handshake cut short; a TLS
    alert the peer sent means the peer refused this node's side."""
    sig, closed = otherwise, False
    # stack frames (`at ...`, `... 23 more`) name no reason: only the exception lines are read
    said = [line for line in after if not line.lstrip().startswith(("at ", "..."))]
    for line in after:
        if closed and "SslHandler" in line:
            return Signature.TLS_HANDSHAKE, _CLOSED_IN_TLS
        closed = closed or "ClosedChannelException" in line
    for line in said:
        hit = next((s for pattern, s in _REASONS if pattern.search(line)), None)
        if hit is not None:
            sig = hit
            break
    details = [m.group(1) for line in said if (m := _DETAIL.search(line))]
    detail = details[-1] if details else ""
    if sig is Signature.TLS_HANDSHAKE and _ALERT_RECEIVED.fullmatch(detail):
        sig = Signature.TLS_REFUSED_BY_PEER
    return sig, detail


def _peer(text: str) -> str:
    return split_address(text)[0] if text else ""


def _netcheck_look(text: str) -> bool:
    """An inbound connection from one of netcheck's TLS looks (probes/tls_facts.py), which
    fail a handshake on purpose: told by their source port, never a peer's trouble."""
    return split_address(text)[1] in LOOK_SOURCE_PORTS
