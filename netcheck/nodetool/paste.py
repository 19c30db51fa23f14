"""Saved outputs as users paste them into tickets: one file per node, or several command
outputs in one file, with shell prompts, comments and cut lines around them.

A command line (`$ nodetool status`, `kubectl exec POD -- nodetool -pp status`, a prompt
`cassandra@POD:/$ nodetool gossipinfo`) starts a section and may name the node it ran on;
otherwise a section starts where an output's own first line is recognised.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from netcheck.model.gossip import Observation
from netcheck.model.mgmt_endpoints import EndpointsBodyError, endpoints_view
from netcheck.nodetool.common import clean
from netcheck.nodetool.logs import is_log_line
from netcheck.nodetool.observe import Output, observe

_NODETOOL = re.compile(r"\b(?:nodetool|dsetool)$")  # dsetool status: DSE's form of the table
_SUBCOMMAND = re.compile(r"^(status|describecluster|gossipinfo)\b")
_OPTION = re.compile(r"^-{1,2}\w[\w-]*(=\S*)?$")
MAX_COMMAND_LINE = 1024  # longer lines are output, not a command someone typed
_POD_IN_KUBECTL = re.compile(r"kubectl\s.*?\bexec\b(?:\s+-\S+)*\s+(?:pod/)?([a-z0-9][a-z0-9.-]*)")
# `nodetool -h HOST status`: the view is that host's, wherever the command ran
_HOST_OPTION = re.compile(r"\bnodetool\s(?:.*\s)?(?:-h|--host)(?:\s+|=)([A-Za-z0-9][\w.:-]*)")
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_POD_IN_PROMPT = re.compile(r"^\s*(?:\[)?[\w.-]+@([\w.-]+)[:\s]")
_LOGS_COMMAND = re.compile(
    r"kubectl\s.*\blogs\b(?:\s+-\S+)*\s+(?:pod/)?([a-z0-9][a-z0-9.-]*)|\bsystem\.log\b"
)
# a prompt with a command, or an empty one (`user@host:~$ ` at the end of a paste)
_PROMPT = re.compile(
    r"^\s*(?:[\w.-]+@[\w.-]+\S*\s*)?[$>]\s+\S|^\s*[\w.-]+@[\w.-]+:\S*#\s+\S"
    r"|^\s*[\w.-]+@[\w.-]+:\S*[$#]\s*$"
)
_STARTS = (
    (re.compile(r"^\s*(Datacenter|DC):\s*\S+"), "status"),
    (re.compile(r"^\s*Cluster Information:\s*$"), "describecluster"),
    (re.compile(r"^(?:[\w.-]*)/[0-9A-Fa-f.:\[\]]+\s*$"), "gossipinfo"),
)
# a gossipinfo key: no space after its colon, unlike status' `Datacenter: dc1`
_GOSSIP_KEY = re.compile(r"^\s*[A-Za-z][A-Za-z0-9_]*:\S")
# what kubectl itself prints around a command's output
_KUBECTL_NOISE = re.compile(
    r"^(Defaulted container \S+ out of:|Unable to use a TTY|If you don't see a command prompt)"
)


@dataclass(frozen=True, kw_only=True)
class Section:
    kind: str
    node: str  # the pod or host the command names, "" when it does not say
    text: str
    line: int  # where it starts in the file


def nodetool_command(line: str) -> str | None:
    """The subcommand of `nodetool [options] status|describecluster|gossipinfo` in a line.

    Scanned token by token (linear): a regex with nested optional repeats over the options
    backtracks exponentially on a line like `nodetool -x -x -x ...`.
    """
    if ("nodetool" not in line and "dsetool" not in line) or len(line) > MAX_COMMAND_LINE:
        return None
    tokens = line.split()
    for i, token in enumerate(tokens):
        if not _NODETOOL.search(token):
            continue
        j = i + 1
        while j < len(tokens):
            command = _SUBCOMMAND.match(tokens[j])
            if command:
                return command.group(1)
            option = _OPTION.match(tokens[j])
            if not option:
                break
            j += 1
            # `-p 7199`: the option's value, unless the option carried it (`--port=7199`)
            if (
                option.group(1) is None
                and j < len(tokens)
                and not tokens[j].startswith("-")
                and not _SUBCOMMAND.match(tokens[j])
            ):
                j += 1
    return None


def sections(text: str) -> list[Section]:
    out: list[Section] = []
    kind, node, start = "", "", 0
    body: list[str] = []

    def close() -> None:
        if kind and any(b.strip() for b in body):
            out.append(Section(kind=kind, node=node, text="\n".join(body) + "\n", line=start))

    for n, line in enumerate(clean(text), 1):
        command = nodetool_command(line)
        logs_command = (
            _LOGS_COMMAND.search(line)
            if not command
            and len(line) <= MAX_COMMAND_LINE
            and ("kubectl" in line or "system.log" in line)
            else None
        )
        if command or logs_command:
            close()
            kind = command or "logs"
            host = _HOST_OPTION.search(line)
            if host and host.group(1) in _LOCAL_HOSTS:
                host = None  # `-h localhost`: the node the command ran on, named below
            named = host or _POD_IN_KUBECTL.search(line) or _POD_IN_PROMPT.search(line)
            if logs_command and logs_command.group(1):
                node = logs_command.group(1)
            else:
                node = named.group(1) if named else ""
            start, body = n, []
            continue
        if len(line) <= MAX_COMMAND_LINE and _PROMPT.match(line):
            close()  # another command: its output is not ours until something is recognised
            kind, body = "", []
            continue
        if line.lstrip().startswith("#") or _KUBECTL_NOISE.match(line):
            continue  # a comment in the paste, or kubectl's own words
        started = (
            "logs" if is_log_line(line) else next((k for p, k in _STARTS if p.match(line)), "")
        )
        if kind == "gossipinfo" and _GOSSIP_KEY.match(line):
            started = ""  # `DC:8:dc1` is a key of the block, not status' `Datacenter: dc1`
        if started and started != kind:
            close()  # an output without its command line: same node as the paste around it
            kind, start, body = started, n, []
        if kind:
            body.append(line)
    close()
    return out


def observations(text: str, source: str) -> list[Observation]:
    """One observation per node the file speaks for (the file itself when it names none).
    A saved Management API answer (`curl .../api/v0/metadata/endpoints > node1.json`) is the
    view of the node it was asked on."""
    if text.lstrip().startswith("{"):
        return [_endpoints_body(text, source)]
    by_node: dict[str, list[Output]] = {}
    for s in sections(text):
        observer = f"{source}:{s.node}" if s.node else source
        by_node.setdefault(observer, []).append(
            Output(kind=s.kind, text=s.text, where=source, offset=s.line, cleaned=True)
        )
    return [observe(observer, outputs) for observer, outputs in by_node.items()]


def _endpoints_body(text: str, source: str) -> Observation:
    try:
        view = endpoints_view(text.encode("utf-8", errors="replace"))
    except EndpointsBodyError as exc:
        return Observation(observer=source, warnings=(f"{source}: {exc}",))
    return Observation(observer=source, mgmt=view)
