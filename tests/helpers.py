"""Small builders shared by the tests."""

from __future__ import annotations

from collections.abc import Callable

from netcheck.collector.plan import plan_mesh
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.topology import Cluster, Endpoint, PortSpec, Topology

PORTS = tuple(PortSpec.default(p) for p in (7000, 7001, 8080))
# one probe result as an agent sends it on the wire: open, 7000 of 127.0.0.2
GOOD_RESULT = {
    "address": "127.0.0.2",
    "port": 7000,
    "kind": "tcp",
    "outcome": "open",
    "latency_ms": 0.1,
    "detail": "",
}


def two_region_topology(pods_per_rack: int = 2) -> Topology:
    """CP_EAST (dc1) and DP_WEST (dc2), racks r1 and r2, agents on every pod."""
    endpoints = []
    for ci, (cluster, short, region, dc) in enumerate(
        (("CP_EAST", "cp", "east", "dc1"), ("DP_WEST", "dp", "west", "dc2"))
    ):
        for ri, rack in enumerate(("r1", "r2")):
            for p in range(pods_per_rack):
                address = f"198.18.{32 * ci + ri + 1}.{10 + p}"
                endpoints.append(
                    Endpoint(
                        name=f"{short}-{dc}-{rack}-p{p}",
                        cluster=cluster,
                        region=region,
                        address=address,
                        datacenter=dc,
                        rack=rack,
                        agent=f"http://{address}:9925",
                        ports=PORTS,
                        stand_in=True,
                    )
                )
    clusters = (
        Cluster(name="CP_EAST", region="east", pod_cidrs=("198.18.0.0/20",)),
        Cluster(name="DP_WEST", region="west", pod_cidrs=("198.18.32.0/20",)),
    )
    return Topology(clusters=clusters, endpoints=tuple(endpoints))


Rule = Callable[[Endpoint, Endpoint, int], Outcome | None]


def results_for(topology: Topology, *rules: Rule) -> tuple[ProbeResult, ...]:
    """Results of the full mesh: the first rule that returns an outcome wins, else open."""
    eps = {ep.name: ep for ep in topology.endpoints}
    out = []
    for spec in plan_mesh(topology):
        outcome = Outcome.OPEN
        for rule in rules:
            got = rule(eps[spec.src], eps[spec.dst], spec.port)
            if got is not None:
                outcome = got
                break
        out.append(
            ProbeResult(
                src=spec.src,
                dst=spec.dst,
                port=spec.port,
                kind=spec.kind,
                outcome=outcome,
                latency_ms=None if outcome is not Outcome.OPEN else 0.3,
            )
        )
    return tuple(out)


def one_context_kubeconfig(
    context: str, server: str, user: dict[str, object], ca_file: str = ""
) -> str:
    """A kubeconfig of one context (YAML text)."""
    import yaml

    cluster: dict[str, object] = {"server": server}
    if ca_file:
        cluster["certificate-authority"] = ca_file
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "u", "user": user}],
            "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}}],
            "current-context": context,
        }
    )
