"""`nodetool status` of Apache Cassandra 3.11 to 5.0 (with or without Tokens, -r, -pp) and the
DSE form with `DC: NAME  Workload: ...` headers and Owns/VNodes/Rack/Health columns."""

from __future__ import annotations

import re

from netcheck.model.gossip import StatusRow
from netcheck.nodetool.common import UUID, clean, is_address, split_address

# an address someone edited by hand: four dotted parts that are not an IPv4 address
_REDACTED = re.compile(r"^\d{1,3}\.\w+\.\w+\.\w+$")
# `Datacenter: NAME`; DSE's `DC: NAME  Workload: ...`, also with its first letters cut off in a
# paste (`C: Cassandra  Workload: Cassandra  Graph: no`)
_DC = re.compile(r"^\s*(?:Datacenter|DC):\s*(\S+)|^\s*\w{0,2}:\s*(\S+)\s+Workload:")
_ROW = re.compile(r"^\s*([UD][NLJMS])\s+(\S+)(.*)$")
_LOAD = re.compile(r"(?<!\S)(\d+(?:\.\d+)?) ((?:bytes|[KMGTPE]i?B))\b")
_BOILERPLATE = re.compile(
    r"^\s*(=+|Status=Up/Down|\|/ State=.*|Note: .*|Warning: .*|Using .*|"
    r"\(effective\).*|.*Non-system keyspaces.*)\s*$"
)


def parse_status(
    text: str, where: str = "status", offset: int = 0
) -> tuple[list[StatusRow], list[str]]:
    rows: list[StatusRow] = []
    warnings: list[str] = []
    datacenter = ""
    columns: list[str] = []
    for n, line in enumerate(clean(text), 1 + offset):
        if not line.strip() or _BOILERPLATE.match(line):
            continue
        dc = _DC.match(line)
        if dc:
            datacenter, columns = dc.group(1) or dc.group(2), []
            continue
        if line.lstrip().startswith("--"):
            columns = [c.strip().lower() for c in re.split(r"\s{2,}", line.strip()[2:].strip())]
            continue
        row = _ROW.match(line)
        if row is None:
            warnings.append(f"{where} line {n}: not a status row: {line.strip()[:80]}")
            continue
        parsed = _row(row, columns, datacenter)
        if parsed is None:
            warnings.append(f"{where} line {n}: no address in: {line.strip()[:80]}")
            continue
        rows.append(parsed)
        if _REDACTED.match(parsed.hostname):
            warnings.append(
                f"{where} line {n}: {parsed.hostname} is no IP address (edited out of the "
                "paste?): kept under that name"
            )
        if not datacenter:
            warnings.append(f"{where} line {n}: row before any 'Datacenter:' header")
        elif not parsed.rack and columns and "rack" in columns:
            warnings.append(f"{where} line {n}: truncated, rack unknown: {line.strip()[:80]}")
    return rows, warnings


def _row(m: re.Match[str], columns: list[str], datacenter: str) -> StatusRow | None:
    state, first, rest = m.group(1), m.group(2), m.group(3)
    address, port = split_address(first)
    hostname = ""
    if not is_address(address):
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9.\-]*$", address):
            return None
        hostname = address  # -r resolved the address to a name
    # values by column when the row has as many as the header; the tail otherwise
    values = _LOAD.sub(r"\1\2", rest).split()
    named = columns[1:] if columns and columns[0] == "address" else []
    by_column = dict(zip(named, values, strict=False)) if len(values) == len(named) else {}
    host_id_match = UUID.search(rest)
    rack = by_column.get("rack", "")
    if not rack and host_id_match and (not named or named[-1] == "rack"):
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
