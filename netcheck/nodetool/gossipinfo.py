"""`nodetool gossipinfo`: one block per endpoint, `KEY:VERSION:VALUE` (2.1.11+) or `KEY:VALUE`
(2.1 before that, and Scylla's nodetool).

Block headers as versions and tools print them: `/10.0.0.1` (2.1 to 3.11), `/10.0.0.1:7000`
(4.0+), `/[2001:db8::1]:7000`, `hostname/10.0.0.1`, a bare `10.0.0.1` (Scylla), indented or
not (a paste that lost or added indentation); keys may carry digits (`X1`, `X_11_PADDING`).
"""

from __future__ import annotations

import re

from netcheck.model.gossip import GossipEndpoint
from netcheck.model.text import ascii_int
from netcheck.nodetool.common import clean, is_address, split_address

_ENDPOINT = re.compile(r"^\s*(\S*/)?(\[?[0-9A-Fa-f.:]+\]?(?::\d+)?)\s*$")
_STATE = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_]*):(?:([0-9]+):)?(.*)$")
_FIELDS = {
    "DC": "datacenter",
    "RACK": "rack",
    "HOST_ID": "host_id",
    "SCHEMA": "schema",
    "RELEASE_VERSION": "release_version",
}
# keys that hold a number, not a state: the block's generation and heartbeat
_COUNTERS = ("generation", "heartbeat")


def endpoint_header(line: str) -> str | None:
    """The address a block header names, or None when the line is not a header."""
    head = _ENDPOINT.match(line)
    if head is None:
        return None
    address = split_address(head.group(2))[0]
    return address if is_address(address) else None


def parse_gossipinfo(
    text: str, where: str = "gossipinfo", offset: int = 0, *, cleaned: bool = False
) -> tuple[list[GossipEndpoint], list[str]]:
    endpoints: list[GossipEndpoint] = []
    warnings: list[str] = []
    current: dict[str, object] | None = None
    status_version = -1  # STATUS_WITH_PORT (4.0+) wins over STATUS whatever their order

    def close() -> None:
        if current is not None:
            endpoints.append(GossipEndpoint(**current))  # type: ignore[arg-type]

    for n, line in enumerate(text.splitlines() if cleaned else clean(text), 1 + offset):
        if not line.strip():
            continue
        address = endpoint_header(line)
        if address is not None:
            close()
            current, status_version = {"address": address}, -1
            continue
        state = _STATE.match(line)
        if state is None or current is None:
            warnings.append(f"{where} line {n}: not understood: {line.strip()[:80]}")
            continue
        key, value = state.group(1), state.group(3).strip()
        if key in _COUNTERS:
            number = ascii_int(state.group(2) or value)
            if number is not None and number >= 0:
                current[key] = number
        elif key in ("STATUS", "STATUS_WITH_PORT"):
            rank = 1 if key == "STATUS_WITH_PORT" else 0
            if rank >= status_version:
                word, _, detail = value.partition(",")
                current["status"], current["status_detail"] = word.strip(), detail.strip()
                status_version = rank
        elif key == "REMOVAL_COORDINATOR":
            current["removal_coordinator"] = value.partition(",")[2].strip() or value
        elif key in _FIELDS:
            current[_FIELDS[key]] = value
    close()
    return endpoints, warnings
