"""Synthetic meshes for the scale benchmark (`make bench`, section o) and its test.

Two clusters of one datacenter and four racks each, C0 the control plane (two nodes serving
Mission Control's Vector NodePort 30600) and C1 a data plane, each with its API server.
Every database pod probes every other on 7000, 7001 and 8080, the control plane's nodes on
30600 and both API servers on 6443, as `netcheck run` plans it (collector/plan.py).

`compound` injects five independent faults, each with an outcome of its own, so the right
diagnosis is exactly one finding per fault at every size:

- 7001 dropped between the clusters, both directions (timeout)
- one pod isolated: every probe in and out of it times out
- 30600 refused from the data plane's pods (the NodePort not served)
- full-size data stalls from one rack of C0 to one rack of C1 on 7000 and 8080 (MTU)
- C1's API server unreachable from C0's pods
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from netcheck.collector.plan import MeshPlan, plan_mesh
from netcheck.model.outcome import Outcome
from netcheck.model.probe_table import KINDS, OUTCOME_CODE, OUTCOMES, ProbeTable, ProbeTableBuilder
from netcheck.model.topology import (
    VECTOR_NODEPORT,
    Cluster,
    Endpoint,
    PortSpec,
    Role,
    Topology,
)

RACKS = 4
DATABASE_PORTS = (7000, 7001, 8080)
ISOLATED = "c1-r2-p0"  # in the rack whose pairs also stall: the hardest place for it
STALL = ("r1", "r2")  # source rack in C0, destination rack in C1

# what the diagnosis must say on `compound`: one finding per fault
EXPECTED = {
    "PORT_TIMEOUT": 1,
    "POD_ISOLATED": 1,
    "PORT_REFUSED": 1,
    "PATH_MTU_STALL": 1,
    "HOST_UNREACHABLE": 1,
}

Rule = Callable[[Endpoint, Endpoint, int], Outcome]


def topology(pods: int) -> Topology:
    """`pods` database pods (a multiple of 8: two clusters of four racks), two control-plane
    nodes in C0 and an API server per cluster."""
    per_rack = max(1, pods // (2 * RACKS))
    db_ports = tuple(PortSpec.default(p) for p in DATABASE_PORTS)
    eps: list[Endpoint] = []
    for c in range(2):
        for r in range(RACKS):
            for p in range(per_rack):
                address = f"198.{18 + c}.{r * 64 + p // 250}.{p % 250 + 2}"
                eps.append(
                    Endpoint(
                        name=f"c{c}-r{r}-p{p}",
                        cluster=f"C{c}",
                        region=f"g{c}",
                        address=address,
                        datacenter=f"dc{c}",
                        rack=f"r{r}",
                        agent=f"http://{address}:9925",
                        ports=db_ports,
                        stand_in=True,
                    )
                )
        eps.append(
            Endpoint(
                name=f"api-c{c}",
                cluster=f"C{c}",
                region=f"g{c}",
                address=f"198.{18 + c}.255.1",
                role=Role.API_SERVER,
                ports=(PortSpec.default(6443),),
            )
        )
    for n in range(2):
        eps.append(
            Endpoint(
                name=f"cp-node-{n}",
                cluster="C0",
                region="g0",
                address=f"198.18.254.{n + 1}",
                role=Role.CONTROL_PLANE_NODE,
                ports=(PortSpec.default(VECTOR_NODEPORT),),
            )
        )
    return Topology(
        clusters=(Cluster(name="C0", region="g0"), Cluster(name="C1", region="g1")),
        endpoints=tuple(eps),
    )


def compound(s: Endpoint, d: Endpoint, port: int) -> Outcome:
    """The five faults of the module's docstring."""
    if ISOLATED in (s.name, d.name):
        return Outcome.TIMEOUT
    if port == 7001 and {s.cluster, d.cluster} == {"C0", "C1"}:
        return Outcome.TIMEOUT
    if port == VECTOR_NODEPORT and s.cluster == "C1":
        return Outcome.REFUSED
    if (
        port in (7000, 8080)
        and (s.cluster, s.rack) == ("C0", STALL[0])
        and (d.cluster, d.rack) == ("C1", STALL[1])
    ):
        return Outcome.STALLED
    if d.name == "api-c1" and s.cluster == "C0":
        return Outcome.UNREACHABLE
    return Outcome.OPEN


def healthy(s: Endpoint, d: Endpoint, port: int) -> Outcome:
    return Outcome.OPEN


def probes(topo: Topology) -> Iterator[tuple[Endpoint, Endpoint, int]]:
    """Every probe `netcheck run` plans on this mesh (collector/plan.py's plan_mesh)."""
    for src in topo.agents:
        for dst in topo.endpoints:
            if dst.name != src.name:
                for port in dst.ports:
                    yield src, dst, port.port


def answers(topo: Topology, rule: Rule = compound) -> bytearray:
    """What the agents would answer: each planned probe's outcome code (model/probe_table.py),
    in the plan's order."""
    return bytearray(OUTCOME_CODE[rule(s, d, port)] for s, d, port in probes(topo))


def table(plan: MeshPlan, codes: bytearray) -> ProbeTable:
    """The results as the collector hands them over: a ProbeTable filled row by row (an
    open probe took 0.4 ms)."""
    if len(codes) != len(plan):
        raise ValueError(f"{len(codes)} answers for a plan of {len(plan)} probes")
    out = ProbeTableBuilder(plan.names)
    add = out.add_row
    for src, dst, port, kind, code in zip(
        plan.src, plan.dst, plan.port, plan.kind, codes, strict=True
    ):
        outcome = OUTCOMES[code]
        add(src, dst, port, KINDS[kind], outcome, None if outcome.failed else 0.4)
    return out.table()


def results(topo: Topology, rule: Rule = compound) -> ProbeTable:
    return table(plan_mesh(topo), answers(topo, rule))
