"""`nodetool describecluster`: the pre-4.0 block (name, snitch, schema versions with
UNREACHABLE) and the 4.0+ additions (stats for all nodes, per-DC counts, database versions)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from netcheck.model.gossip import ClusterDescription, DatacenterCount, SchemaVersion
from netcheck.model.text import ascii_int
from netcheck.nodetool.common import UUID, address_list, clean, is_address, split_address

_KEY = re.compile(r"^\s*(Name|Snitch|Live|Unreachable):\s*(.*?)\s*$")
# `VERSION: [addresses]`; DataStax's documentation also shows `UNREACHABLE: VERSION: [...]`
_VERSION_LINE = re.compile(r"^\s*(\S+?):\s*(?:[0-9a-fA-F-]{36}:\s*)?(\[.*)$")
_DC = re.compile(r"^\s*(\S+)\s+#Nodes:\s*([0-9]{1,9})\s+#Down:\s*([0-9]{1,9})\b")
_SECTION = re.compile(
    r"^\s*(Cluster Information|Schema versions|Stats for all nodes|Data Centers|"
    r"Database versions|Keyspaces|Effective Dynamic Snitch Scores):\s*$"
)
_IGNORED = re.compile(
    r"^\s*(DynamicEndPointSnitch|Partitioner|Joining|Moving|Leaving|DatabaseVersion):"
    r"|^\s*\S+ -> Replication"
)


def parse_describecluster(
    text: str, where: str = "describecluster", offset: int = 0, *, cleaned: bool = False
) -> tuple[ClusterDescription, list[str]]:
    warnings: list[str] = []
    section = ""
    fields: dict[str, str] = {}
    schemas: list[SchemaVersion] = []
    databases: list[SchemaVersion] = []
    dcs: list[DatacenterCount] = []
    listed: list[tuple[str, int | None]] = []  # every (address, port) the lists name
    for n, line in _unwrapped(text.splitlines() if cleaned else clean(text), 1 + offset):
        if not line.strip():
            continue
        head = _SECTION.match(line)
        if head:
            section = head.group(1)
            continue
        if _IGNORED.match(line):
            continue
        version = _VERSION_LINE.match(line)
        if version and section in ("Schema versions", "Database versions"):
            name = version.group(1)
            entries, complete = address_list(version.group(2))
            listed += entries
            addresses = tuple(f"{a}\0{p}" for a, p in entries)  # named once all lists are read
            if not complete:
                warnings.append(f"{where} line {n}: truncated address list: {line.strip()[:80]}")
            target = schemas if section == "Schema versions" else databases
            if section == "Schema versions" and is_address(split_address(name)[0]):
                # Scylla's nodetool turns the map around: `ADDRESS: [VERSION]`
                name, addresses = version.group(2).strip("[] "), (split_address(name)[0],)
                listed.append((addresses[0], None))
            if section == "Schema versions" and name != "UNREACHABLE" and not UUID.fullmatch(name):
                warnings.append(f"{where} line {n}: not a schema version: {line.strip()[:80]}")
                continue
            target.append(SchemaVersion(version=name, addresses=addresses))
            continue
        dc = _DC.match(line)
        if dc:
            dcs.append(
                DatacenterCount(
                    datacenter=dc.group(1), nodes=int(dc.group(2)), down=int(dc.group(3))
                )
            )
            continue
        key = _KEY.match(line)
        if key:
            fields[key.group(1)] = key.group(2)
            continue
        if section in ("Keyspaces", "Effective Dynamic Snitch Scores"):
            continue
        warnings.append(f"{where} line {n}: not understood: {line.strip()[:80]}")
    named = _names(listed)
    schemas = [replace(v, addresses=tuple(named(a) for a in v.addresses)) for v in schemas]
    databases = [replace(v, addresses=tuple(named(a) for a in v.addresses)) for v in databases]
    unreachable = tuple(a for v in schemas if v.version == "UNREACHABLE" for a in v.addresses)
    return (
        ClusterDescription(
            name=fields.get("Name", ""),
            snitch=fields.get("Snitch", ""),
            schema_versions=tuple(schemas),
            unreachable=unreachable,
            live=_int(fields.get("Live")),
            unreachable_count=_int(fields.get("Unreachable")),
            datacenters=tuple(dcs),
            database_versions=tuple(databases),
        ),
        warnings,
    )


def _names(listed: list[tuple[str, int | None]]) -> Callable[[str], str]:
    """A node's name: its address, or ADDRESS:PORT where one address carries several ports
    (`-pp` of nodes that share a host: `[127.0.0.1:9000, 127.0.0.1:7000]`)."""
    ports: dict[str, set[int | None]] = {}
    for address, port in listed:
        if port is not None:  # some lists print the port, some not (4.0+ Database versions)
            ports.setdefault(address, set()).add(port)

    def named(entry: str) -> str:
        address, _, port = entry.partition("\0")
        several = len(ports.get(address, ())) > 1
        return f"{address}:{port}" if several and port != "None" else address

    return named


def _int(text: str | None) -> int | None:
    number = ascii_int(text)
    return number if number is not None and number >= 0 else None


# a version line whose address list a terminal or a mail wrapped: the list goes on below it
_OPEN_LIST = re.compile(r"^\s*\S+?:\s*(?:[0-9a-fA-F-]{36}:\s*)?\[[^\]]*$")
_GOES_ON = re.compile(r"^[^\[\]]*(?:,|\])\s*$|^[^\[\]:]*,\s")
MAX_LIST = 64 * 1024  # about 3,500 addresses with ports: bounds a joined list


def _unwrapped(lines: list[str], first: int) -> list[tuple[int, str]]:
    """(line number, line) with each wrapped address list joined back onto its version line."""
    out: list[tuple[int, str]] = []
    for n, line in enumerate(lines, first):
        if (
            out
            and _OPEN_LIST.match(out[-1][1])
            and _GOES_ON.match(line.strip())
            and len(out[-1][1]) + len(line) < MAX_LIST
        ):
            out[-1] = (out[-1][0], f"{out[-1][1].rstrip()} {line.strip()}")
            continue
        out.append((n, line))
    return out
