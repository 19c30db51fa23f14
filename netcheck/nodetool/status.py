"""`nodetool status` of Apache Cassandra 3.11 to 5.0 (with or without Tokens, -r, -pp) and the
DSE form with `DC: NAME  Workload: ...` headers and Owns/VNodes/Rack/Health columns."""

from __future__ import annotations

import re
from dataclasses import replace

from netcheck.model.gossip import StatusRow
from netcheck.nodetool.common import UUID, clean, is_address, split_address

# an address someone edited by hand: four dotted parts that are not an IPv4 address
# (`172.0.XYZ.WZY`, `x.x.x.x`)
_REDACTED = re.compile(r"^(?:\d{1,3}|[xX*]+)\.\w+\.\w+\.\w+$")
# `Datacenter: NAME` (Scylla printed an empty name); DSE's `DC: NAME  Workload: ...`, also with
# its first letters cut off in a paste (`C: Cassandra  Workload: Cassandra  Graph: no`)
_DC = re.compile(
    r"^\s*(?:Datacenter|DC):\s*(\S+)|^\s*\w{0,2}:\s*(\S+)\s+Workload:|^\s*Datacenter:\s*$"
)
_ROW = re.compile(r"^\s*([UD?][NLJMS])\s+(\S+)(.*)$")
_LOAD = re.compile(r"(?<!\S)(\d+(?:\.\d+)?) ((?:bytes|[KMGTPE]i?B))\b")
# a row that ends in spaces after its host id: the rack was printed empty, not cut off
_EMPTY_RACK = re.compile(UUID.pattern + r"\s+$")
_NOTE = re.compile(r"^\s*Note: ")
_BOILERPLATE = re.compile(
    r"^\s*(=+|Status=Up/Down|\|/ State=.*|Warning: .*|Using .*|"
    r"\(effective\).*|.*Non-system keyspaces.*)\s*$"
)
# column names of more than one word, in every version's header
_PHRASES = ("host id", "server id", "owns (effective)", "health [0,1]")
_COLUMN_WORDS = frozenset(
    {"address", "load", "tokens", "token", "owns", "vnodes", "rack", "effective-ownership"}
)
# words that make a line outside the table worth a warning: nodetool's own errors
_TROUBLE = re.compile(r"error|exception|failed|refused|denied", re.I)


def parse_status(
    text: str, where: str = "status", offset: int = 0, *, cleaned: bool = False
) -> tuple[list[StatusRow], list[str]]:
    rows: list[StatusRow] = []
    lines: list[int] = []  # each row's line number
    warnings: list[str] = []
    datacenter, header_seen, table_ended = "", False, False
    columns: list[str] = []
    numbered = list(enumerate(text.splitlines() if cleaned else clean(text), 1 + offset))
    i = 0
    while i < len(numbered):
        n, line = numbered[i]
        after = numbered[i + 1][1].strip() if i + 1 < len(numbered) else ""
        i += 1
        if not line.strip() or _BOILERPLATE.match(line):
            continue
        if _NOTE.match(line):
            table_ended = True  # nodetool's last line: what follows is the paste's, until a header
            continue
        dc = _DC.match(line)
        if dc:
            datacenter, columns = dc.group(1) or dc.group(2) or "", []
            header_seen, table_ended = True, False
            continue
        if line.lstrip().startswith("--"):
            columns = _columns(line.strip()[2:])
            if after and set(_columns(after)) <= _COLUMN_WORDS | set(_PHRASES):
                columns += _columns(after)  # the header wrapped: its last column below it
                i += 1
            continue
        row = _ROW.match(line)
        if row is None:
            if (not header_seen or table_ended) and not _TROUBLE.search(line):
                continue  # the paste's own words before the table or after nodetool's note
            warnings.append(f"{where} line {n}: not a status row: {line.strip()[:80]}")
            continue
        if "host id" in columns and not UUID.search(line) and UUID.match(after):
            row = _ROW.match(f"{line.rstrip()} {after}")  # the row wrapped before its host id
            assert row is not None
            i += 1
        parsed = _row(row, columns, datacenter)
        if parsed is None:
            warnings.append(f"{where} line {n}: no address in: {line.strip()[:80]}")
            continue
        rows.append(parsed)
        lines.append(n)
        if _REDACTED.match(parsed.hostname) and parsed.address not in {
            r.address for r in rows[:-1]
        }:
            warnings.append(
                f"{where} line {n}: {parsed.hostname} is no IP address (edited out of the "
                "paste?): kept under that name"
            )
        if not header_seen:
            warnings.append(f"{where} line {n}: row before any 'Datacenter:' header")
        elif not parsed.rack and columns and "rack" in columns and not _EMPTY_RACK.search(line):
            warnings.append(f"{where} line {n}: truncated, rack unknown: {line.strip()[:80]}")
    rows = _ported(rows)
    return rows, warnings + _repeated(rows, lines, where)


def _columns(header: str) -> list[str]:
    """A header's column names: split on spaces with the names of several words kept whole,
    so that a header whose spacing a paste collapsed reads like the aligned one."""
    text = header.strip().lower()
    for phrase in _PHRASES:
        text = text.replace(phrase, phrase.replace(" ", "\0"))
    return [c.replace("\0", " ") for c in text.split()]


def _ported(rows: list[StatusRow]) -> list[StatusRow]:
    """Nodes that share one address and differ by port (`-pp` of several nodes on one host)
    are told apart as ADDRESS:PORT."""
    ports: dict[str, set[int]] = {}
    for r in rows:
        if r.port is not None:
            ports.setdefault(r.address, set()).add(r.port)
    return [
        replace(r, address=f"{r.address}:{r.port}")
        if r.port is not None and len(ports[r.address]) > 1
        else r
        for r in rows
    ]


def _repeated(rows: list[StatusRow], lines: list[int], where: str) -> list[str]:
    """One warning per address on several rows of one view: two nodes cannot share an
    address, so it was edited out of the paste (`x.x.x.x`) and the rows read as one node."""
    at: dict[str, list[int]] = {}
    for r, n in zip(rows, lines, strict=True):
        at.setdefault(r.address, []).append(n)
    return [
        f"{where} lines {', '.join(map(str, ns))}: {len(ns)} rows with the address {a} "
        "(edited out of the paste?): read as one node"
        for a, ns in at.items()
        if len(ns) > 1
    ]


def _row(m: re.Match[str], columns: list[str], datacenter: str) -> StatusRow | None:
    state, first, rest = m.group(1), m.group(2), m.group(3)
    # values by column when the row has as many as the header; the tail otherwise
    values = [first, *_LOAD.sub(r"\1\2", rest).split()]
    by_column = dict(zip(columns, values, strict=True)) if len(values) == len(columns) else {}
    if by_column.get("address"):
        first = by_column["address"]
    elif columns[:1] == ["server id"] and len(values) > 1:
        first = values[1]  # DSE's Server ID column comes before the address
    address, port = split_address(first)
    hostname = ""
    if not is_address(address):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$", address):
            return None
        hostname = address  # -r resolved the address to a name
    host_id_match = UUID.search(rest)
    rack = by_column.get("rack", "")
    if not rack and host_id_match and (not columns or columns[-1] == "rack"):
        # a row that does not fill the header: Apache prints the rack last, after the host id
        tail = rest[host_id_match.end() :].split()
        rack = tail[-1] if tail else ""
    return StatusRow(
        address=address,
        state=state,
        datacenter=datacenter,
        rack=rack,
        host_id=host_id_match.group(0) if host_id_match else "",
        load=by_column.get("load", ""),
        owns=next((v for k, v in by_column.items() if k.startswith("owns")), ""),
        port=port,
        hostname=hostname,
    )
