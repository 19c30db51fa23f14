"""Plan the full mesh: every agent endpoint to every other endpoint on each of its ports.

A 1,000-pod mesh plans four million probes. The plan is kept in columns (MeshPlan: endpoint
indexes, port, kind, echo), made by copying each destination list once per source, not by
making one object per probe; it reads as a sequence of ProbeSpec, each made when asked.
"""

from __future__ import annotations

from array import array

from netcheck.model.probe import ProbeKind, ProbeSpec
from netcheck.model.probe_table import KIND_CODE, KINDS, Rows
from netcheck.model.topology import Role, Topology


class MeshPlan(Rows[ProbeSpec]):
    """Read-only once made (plan_mesh)."""

    def __init__(
        self,
        *,
        names: tuple[str, ...],
        src: array[int],
        dst: array[int],
        port: array[int],
        kind: bytearray,
        echo: bytearray,
    ) -> None:
        self.names = names
        self.src, self.dst, self.port, self.kind, self.echo = src, dst, port, kind, echo

    def __len__(self) -> int:
        return len(self.src)

    def row(self, i: int) -> ProbeSpec:
        return ProbeSpec(
            src=self.names[self.src[i]],
            dst=self.names[self.dst[i]],
            port=self.port[i],
            kind=KINDS[self.kind[i]],
            echo=bool(self.echo[i]),
        )


class _Destinations:
    """Every (endpoint, port) probed, in endpoint order, and where each endpoint's run is."""

    def __init__(self, topology: Topology, keep: set[str] | None) -> None:
        self.dst, self.port = array("I"), array("H")
        self.kind, self.echo = bytearray(), bytearray()
        self.run: dict[int, tuple[int, int]] = {}
        for j, ep in enumerate(topology.endpoints):
            if keep is not None and ep.name not in keep:
                continue
            start = len(self.dst)
            for p in ep.ports:
                self.dst.append(j)
                self.port.append(p.port)
                self.kind.append(KIND_CODE[ProbeKind(p.kind)])
                self.echo.append(int(ep.stand_in if p.stand_in is None else p.stand_in))
            self.run[j] = (start, len(self.dst))


def plan_mesh(topology: Topology, control_plane: str | None = None) -> MeshPlan:
    """With a control plane named (preflight), only its agents probe the API servers."""
    names = tuple(ep.name for ep in topology.endpoints)
    index = {name: i for i, name in enumerate(names)}
    every = _Destinations(topology, None)
    no_api = every
    if control_plane:
        no_api = _Destinations(
            topology, {ep.name for ep in topology.endpoints if ep.role is not Role.API_SERVER}
        )
    src, dst, port = array("I"), array("I"), array("H")
    kind, echo = bytearray(), bytearray()
    for ep in topology.agents:
        at = index[ep.name]
        to = no_api if control_plane and ep.cluster != control_plane else every
        a, b = to.run.get(at, (0, 0))  # its own ports: no probe to itself
        src.extend(array("I", [at]) * (len(to.dst) - (b - a)))
        for column, whole in ((dst, to.dst), (port, to.port), (kind, to.kind), (echo, to.echo)):
            column.extend(whole[:a])
            column.extend(whole[b:])
    return MeshPlan(names=names, src=src, dst=dst, port=port, kind=kind, echo=echo)
