"""Plan the full mesh: every agent endpoint to every other endpoint on each of its ports."""

from __future__ import annotations

from netcheck.model.probe import ProbeSpec
from netcheck.model.topology import Role, Topology


def plan_mesh(topology: Topology, control_plane: str | None = None) -> list[ProbeSpec]:
    """With a control plane named (preflight), only its agents probe the API servers."""
    specs = []
    for src in topology.agents:
        for dst in topology.endpoints:
            if dst.name == src.name:
                continue
            if control_plane and dst.role is Role.API_SERVER and src.cluster != control_plane:
                continue
            for port in dst.ports:
                specs.append(
                    ProbeSpec(
                        src=src.name,
                        dst=dst.name,
                        port=port.port,
                        kind=port.kind,
                        echo=dst.stand_in if port.stand_in is None else port.stand_in,
                    )
                )
    return specs
