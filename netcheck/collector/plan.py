"""Plan the full mesh: every agent endpoint to every other endpoint on each of its ports."""

from __future__ import annotations

from netcheck.model.probe import ProbeSpec
from netcheck.model.topology import Topology


def plan_mesh(topology: Topology) -> list[ProbeSpec]:
    specs = []
    for src in topology.agents:
        for dst in topology.endpoints:
            if dst.name == src.name:
                continue
            for port in dst.ports:
                specs.append(
                    ProbeSpec(
                        src=src.name,
                        dst=dst.name,
                        port=port.port,
                        kind=port.kind,
                        echo=dst.stand_in,
                    )
                )
    return specs
