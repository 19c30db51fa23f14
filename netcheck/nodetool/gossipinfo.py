"""`nodetool gossipinfo`: one block per endpoint, `KEY:VERSION:VALUE` (3.0+) or `KEY:VALUE`."""

from __future__ import annotations

import re

from netcheck.model.gossip import GossipEndpoint
from netcheck.model.text import ascii_int
from netcheck.nodetool.common import clean, split_address

_ENDPOINT = re.compile(r"^(?:\S*/)?(\[?[0-9A-Fa-f.:]+\]?(?::\d+)?)\s*$")
_STATE = re.compile(r"^\s+([A-Za-z_]+):(?:([0-9]+):)?(.*)$")
_FIELDS = {
    "DC": "datacenter",
    "RACK": "rack",
    "HOST_ID": "host_id",
    "SCHEMA": "schema",
    "RELEASE_VERSION": "release_version",
}


def parse_gossipinfo(
    text: str, where: str = "gossipinfo", offset: int = 0
) -> tuple[list[GossipEndpoint], list[str]]:
    endpoints: list[GossipEndpoint] = []
    warnings: list[str] = []
    current: dict[str, object] | None = None

    def close() -> None:
        if current is not None:
            endpoints.append(GossipEndpoint(**current))  # type: ignore[arg-type]

    for n, line in enumerate(clean(text), 1 + offset):
        if not line.strip():
            continue
        head = _ENDPOINT.match(line)
        if head and not line[0].isspace():
            close()
            current = {"address": split_address(head.group(1))[0]}
            continue
        state = _STATE.match(line)
        if state is None or current is None:
            warnings.append(f"{where} line {n}: not understood: {line.strip()[:80]}")
            continue
        key, value = state.group(1), state.group(3).strip()
        if key in ("generation", "heartbeat"):
            number = ascii_int(state.group(2) or value)
            if number is not None and number >= 0:
                current[key] = number
        elif key in ("STATUS", "STATUS_WITH_PORT"):
            # STATUS_WITH_PORT (4.0+) wins over STATUS; the value before ',' is the state
            if key == "STATUS_WITH_PORT" or "status" not in current:
                current["status"] = value.split(",", 1)[0]
        elif key in _FIELDS:
            current[_FIELDS[key]] = value
    close()
    return endpoints, warnings
