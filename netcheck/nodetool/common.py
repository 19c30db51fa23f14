"""Address and line helpers the parsers share."""

from __future__ import annotations

import ipaddress
import re

from netcheck.model.text import ascii_int

UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
# ANSI colours and carriage returns that terminals and `kubectl exec -t` leave in pastes
_NOISE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


# bounds every regex's work; describecluster of a 1,000-node cluster writes each schema
# version's addresses on one line of about 17,000 characters (`10.0.0.1:7000, ...`)
MAX_LINE = 32 * 1024


# the prefix Scylla's test harness (SCT) puts before each line of a command's output, as its
# users paste them: `< t:2023-04-21 03:22:34,000 f:base.py  l:228  c:Runner p:DEBUG > `
_RUNNER_PREFIX = re.compile(
    r"^< t:\d{4}-\d\d-\d\d [\d:,.]{1,16} f:\S{1,64}\s+l:\d{1,6}\s+c:\S{1,64}\s+p:[A-Z]{1,8}\s+> "
)


# what a document converter (pandoc, a wiki) does to a terminal paste it turns into Markdown:
# a backslash before punctuation (`\|/ State=`, `\--  Address`, `ubuntu\@host`, `\[main\]`)
# and bold around the parts of a prompt (`**user\@host**:**\~**\$ nodetool status`)
_MARKDOWN_ESCAPE = re.compile(r"\\([|\-@~$\[\]#*_'\"<>])")
_BOLD = re.compile(r"\*\*")


def clean(text: str) -> list[str]:
    return [
        _table_tail_cut(_unmarkdown(_RUNNER_PREFIX.sub("", line[:MAX_LINE])))
        for line in _NOISE.sub("", text).splitlines()
    ]


def _unmarkdown(line: str) -> str:
    if "\\" not in line and not line.startswith("**"):
        return line
    line = _MARKDOWN_ESCAPE.sub(r"\1", line)
    return _BOLD.sub("", line) if line.startswith("**") else line


def _table_tail_cut(line: str) -> str:
    """Without the ` | |` cells a copy from a rendered gist or table leaves at the end of
    every line (a loop, linear: a regex for it backtracks quadratically on ` | | | ... x`)."""
    cut = line.rstrip()
    while len(cut) >= 2 and cut[-1] == "|" and cut[-2] in " \t":
        cut = cut[:-1].rstrip()
    return cut if cut != line.rstrip() else line


def split_address(text: str) -> tuple[str, int | None]:
    """'/198.18.1.10:7000' -> ('198.18.1.10', 7000); '[::1]:7000', '::1', 'host' as well."""
    text = text.strip().lstrip("/")
    if "/" in text:  # hostname/ip as some versions print it
        text = text.split("/", 1)[1]
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, _port(port)
    try:
        ipaddress.ip_address(text)
        return text, None  # a bare address, IPv6 included
    except ValueError:
        pass
    host, sep, port = text.rpartition(":")
    if sep and _port(port) is not None and ":" not in host:
        return host, _port(port)
    return text, None


def _port(text: str) -> int | None:
    number = ascii_int(text, max_digits=5)
    return number if number is not None and 0 < number <= 65535 and text.isascii() else None


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def address_list(text: str) -> tuple[tuple[tuple[str, int | None], ...], bool]:
    """'[a, b:7000, c]' -> (address, port) pairs, and whether the list was complete (closing
    bracket)."""
    body = text.strip()
    complete = body.endswith("]")
    body = body.strip("[]")
    out = []
    for part in body.split(","):
        part = part.strip()
        if part:
            out.append(split_address(part))
    if not complete and out:
        out.pop()  # the last one may be cut in half
    return tuple(out), complete
