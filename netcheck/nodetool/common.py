"""Address and line helpers the parsers share."""

from __future__ import annotations

import ipaddress
import re

UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
# ANSI colours and carriage returns that terminals and `kubectl exec -t` leave in pastes
_NOISE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


def clean(text: str) -> list[str]:
    return _NOISE.sub("", text).splitlines()


def split_address(text: str) -> tuple[str, int | None]:
    """'/198.18.1.10:7000' -> ('198.18.1.10', 7000); '[::1]:7000', '::1', 'host' as well."""
    text = text.strip().lstrip("/")
    if "/" in text:  # hostname/ip as some versions print it
        text = text.split("/", 1)[1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    try:
        ipaddress.ip_address(text)
        return text, None  # a bare address, IPv6 included
    except ValueError:
        pass
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return text, None


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def address_list(text: str) -> tuple[tuple[str, ...], bool]:
    """'[a, b:7000, c]' -> addresses, and whether the list was complete (closing bracket)."""
    body = text.strip()
    complete = body.endswith("]")
    body = body.strip("[]")
    out = []
    for part in body.split(","):
        part = part.strip()
        if part:
            out.append(split_address(part)[0])
    if not complete and out:
        out.pop()  # the last one may be cut in half
    return tuple(out), complete
