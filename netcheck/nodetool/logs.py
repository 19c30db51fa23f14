"""Cassandra system.log: internode trouble counted per peer, and the internode listeners.

4.x/5.x (netty) and 3.x shapes; see ../../shared field facts. Stack-trace lines after a
'failed to connect' say why it failed; they are read, never counted on their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from netcheck.model.gossip import Listener, LogSignature, Signature
from netcheck.model.probe import LOOK_SOURCE_PORTS
from netcheck.nodetool.common import clean, split_address

_TIME = re.compile(r"(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[,.]\d+)?)")
_OUT_FAIL = re.compile(r"->(/?[^\s>]+?)-[A-Z_]+_MESSAGES-\[no-channel\] failed to connect")
_OUT_3X = re.compile(r"Cannot handshake version with (/?\S+)")
_IN_HANDSHAKE = re.compile(r"Failed to properly handshake with peer (/?\S+?)\.? Closing")
_TLS_OFF_HERE = re.compile(r"Rejected incoming TLS connection before negotiating from (/?\S+?) to")
_DOWN = re.compile(r"InetAddress (/?\S+?) is now DOWN")
# fatal at start-up (the exception under "Exception encountered during startup"); seeds log
# it at INFO "but continuing anyway", which is normal
_NO_PEERS = re.compile(r"Unable to gossip with any peers(?! but continuing)")
_STARTUP_FAILED = re.compile(r"Exception encountered during startup")
_CONSISTENCY = re.compile(r"Cannot achieve consistency level (\w+)")
_LISTEN = re.compile(r"Listening on address: \((/?[^)]+)\), nic: \S+, encryption: (.+?)\s*$")
_REASONS = (
    (re.compile(r"timed out|ConnectTimeoutException", re.I), Signature.CONNECT_TIMEOUT),
    (re.compile(r"Connection refused", re.I), Signature.CONNECT_REFUSED),
    (re.compile(r"No route to host|Network is unreachable", re.I), Signature.NO_ROUTE),
    (re.compile(r"SSL|TLS|handshake|certificate", re.I), Signature.TLS_HANDSHAKE),
)
_DETAIL = re.compile(
    r"(not an SSL/TLS record|certificate_unknown|unable to find valid certification path"
    r"|PKIX path \w+ failed|bad_certificate|PEER_DID_NOT_RETURN_A_CERTIFICATE|"
    r"No subject alternative names?[^.]*|"
    r"Received fatal alert: \w+|handshake_failure|connection timed out|Connection refused|"
    r"No route to host|TLS is explicitly disabled by configuration)",
    re.I,
)
_LOG_LINE = re.compile(r"^(TRACE|DEBUG|INFO|WARN|ERROR)\s+\[")


@dataclass
class _Count:
    count: int = 0
    first: str = ""
    last: str = ""
    detail: str = ""


@dataclass
class LogReading:
    signatures: list[LogSignature] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    lines: int = 0


def is_log_line(line: str) -> bool:
    return bool(_LOG_LINE.match(line))


def parse_log(text: str) -> LogReading:
    counts: dict[tuple[Signature, str], _Count] = {}
    listeners: dict[tuple[str, int], Listener] = {}
    lines = clean(text)
    pending: tuple[Signature | None, str, str, int] | None = None  # (sig, peer, time, line)

    def add(sig: Signature, peer: str, when: str, detail: str = "") -> None:
        c = counts.setdefault((sig, peer), _Count())
        c.count += 1
        c.first = c.first or when
        c.last = when or c.last
        c.detail = c.detail or detail

    def settle() -> None:
        nonlocal pending
        if pending is not None:
            sig, peer, when, _ = pending
            add(sig or Signature.CONNECT_FAILED, peer, when)
            pending = None

    read = 0
    for i, line in enumerate(lines):
        if pending is not None and not is_log_line(line) and i - pending[3] <= 4:
            for pattern, sig in _REASONS:
                if pattern.search(line):
                    detail = _DETAIL.search(line)
                    add(sig, pending[1], pending[2], detail.group(1) if detail else "")
                    pending = None
                    break
            continue
        if not is_log_line(line):
            continue
        settle()
        read += 1
        stamp = _TIME.search(line)
        when = stamp.group(1) if stamp else ""
        m = _OUT_FAIL.search(line)
        if m:
            pending = (None, _peer(m.group(1)), when, i)
            continue
        m = _IN_HANDSHAKE.search(line)
        if m:
            # the reason is on the next line; one count per failed handshake
            if not _netcheck_look(m.group(1)):
                add(Signature.TLS_HANDSHAKE, _peer(m.group(1)), when, _detail_after(lines, i))
            continue
        m = _TLS_OFF_HERE.search(line)
        if m:
            if not _netcheck_look(m.group(1)):
                add(
                    Signature.TLS_DISABLED_HERE,
                    _peer(m.group(1)),
                    when,
                    "TLS is explicitly disabled by configuration",
                )
            continue
        m = _OUT_3X.search(line)
        if m:
            add(Signature.CONNECT_FAILED, _peer(m.group(1)), when, "Cannot handshake version")
            continue
        m = _DOWN.search(line)
        if m:
            add(Signature.MARKED_DOWN, _peer(m.group(1)), when)
            continue
        if _STARTUP_FAILED.search(line) and any(
            _NO_PEERS.search(after) for after in lines[i + 1 : i + 3]
        ):
            add(Signature.UNABLE_TO_GOSSIP, "", when)
            continue
        m = _CONSISTENCY.search(line)
        if m:
            add(Signature.CONSISTENCY, "", when, f"Cannot achieve consistency level {m.group(1)}")
            continue
        m = _LISTEN.search(line)
        if m:
            address, port = split_address(m.group(1))
            if port is not None:
                listeners[(address, port)] = Listener(
                    address=address, port=port, encryption=m.group(2)
                )
    settle()
    return LogReading(
        signatures=[
            LogSignature(
                signature=sig, peer=peer, count=c.count, first=c.first, last=c.last, detail=c.detail
            )
            for (sig, peer), c in sorted(counts.items())
        ],
        listeners=sorted(listeners.values(), key=lambda x: (x.address, x.port)),
        lines=read,
    )


def _peer(text: str) -> str:
    return split_address(text)[0]


def _netcheck_look(text: str) -> bool:
    """An inbound connection from one of netcheck's TLS looks (probes/tls_facts.py), which
    fail a handshake on purpose: told by their source port, never a peer's trouble."""
    return split_address(text)[1] in LOOK_SOURCE_PORTS


def _detail_after(lines: list[str], i: int) -> str:
    for line in lines[i + 1 : i + 4]:
        if is_log_line(line):
            break
        m = _DETAIL.search(line)
        if m:
            return m.group(1)
    return ""
