"""Outputs of one observer (a node, or a saved file) read into one Observation."""

from __future__ import annotations

from dataclasses import dataclass

from netcheck.model.gossip import (
    ClusterDescription,
    GossipEndpoint,
    Listener,
    LogSignature,
    Observation,
    StatusRow,
)
from netcheck.nodetool.describecluster import parse_describecluster
from netcheck.nodetool.gossipinfo import parse_gossipinfo
from netcheck.nodetool.logs import parse_log
from netcheck.nodetool.status import parse_status


@dataclass(frozen=True, kw_only=True)
class Output:
    kind: str  # status, describecluster, gossipinfo, logs
    text: str
    where: str  # the file or node it came from, for warnings
    offset: int = 0  # its first line's number in that file, minus one
    cleaned: bool = False  # its lines went through common.clean already (a paste's section)


def observe(observer: str, outputs: list[Output], observer_address: str = "") -> Observation:
    status: list[StatusRow] | None = None
    description: ClusterDescription | None = None
    gossip: list[GossipEndpoint] | None = None
    logs: list[LogSignature] | None = None
    listeners: list[Listener] = []
    warnings: list[str] = []
    for out in outputs:
        where = f"{out.where} ({out.kind})"
        if out.kind == "status":
            rows, w = parse_status(out.text, where, out.offset, cleaned=out.cleaned)
            status = (status or []) + rows
        elif out.kind == "describecluster":
            description, w = parse_describecluster(out.text, where, out.offset, cleaned=out.cleaned)
        elif out.kind == "gossipinfo":
            endpoints, w = parse_gossipinfo(out.text, where, out.offset, cleaned=out.cleaned)
            gossip = (gossip or []) + endpoints
        elif out.kind == "logs":
            reading = parse_log(out.text, cleaned=out.cleaned)
            logs = (logs or []) + reading.signatures
            listeners += reading.listeners
            w = []
        else:
            w = [f"{where}: unknown output kind"]
        warnings += w
    return Observation(
        observer=observer,
        observer_address=observer_address,
        status=tuple(status) if status is not None else None,
        description=description,
        gossip=tuple(gossip) if gossip is not None else None,
        logs=tuple(logs) if logs is not None else None,
        listeners=tuple(listeners),
        warnings=tuple(warnings),
    )
