"""The topology of a running lab, as the collector will see it."""

from __future__ import annotations

from typing import Any

from netcheck.lab.build import AGENT_API_PORT
from netcheck.lab.cassandra import SSL_STORAGE_PORT as SSL_PORT
from netcheck.lab.cassandra import STORAGE_PORT
from netcheck.lab.mgmt_standin import PORT as MGMT_PORT
from netcheck.model.probe import ProbeKind
from netcheck.model.topology import Cluster, Endpoint, PortSpec, Role, Topology


def lab_topology(state: dict[str, Any]) -> Topology:
    clusters = tuple(
        Cluster(name=c["name"], region=c["region"], pod_cidrs=(c["pod_cidr"],))
        for c in state["clusters"]
    )
    endpoints = []
    for h in state["hosts"]:
        probes = bool(h["probes"])
        endpoints.append(
            Endpoint(
                name=h["name"],
                cluster=h["cluster"],
                region=h["region"],
                address=h["address"],
                datacenter=h["datacenter"],
                rack=h["rack"],
                zone=h["zone"],
                role=Role(h["role"]),
                agent=f"http://{h['mgmt_address']}:{AGENT_API_PORT}" if probes else None,
                ports=_ports(h, bool(state.get("cassandra"))),
                # the control-plane NodePort is fronted by agents in preflight; API servers are real
                stand_in=h["role"] != Role.API_SERVER.value,
            )
        )
    return Topology(
        clusters=clusters,
        endpoints=tuple(endpoints),
        token_file=state["token_file"],
        cassandra_exec="lab" if state.get("cassandra") else "",
    )


def _ports(h: dict[str, Any], cassandra: bool) -> tuple[PortSpec, ...]:
    served = tuple(PortSpec(port=p, kind=ProbeKind(m)) for p, m in h["serve"])
    if not cassandra or h["role"] != Role.DATABASE.value:
        return served
    # real Cassandra owns the internode ports (TLS required on 7000; 7001 where it listens):
    # a plain connect, since a TLS probe without a client certificate makes Cassandra log a
    # handshake failure per probe,
    # declared like cass-operator declares them; 8080 is the Management API (its stand-in)
    internode = tuple(
        PortSpec(port=p, kind=ProbeKind.TCP, stand_in=False) for p in (STORAGE_PORT, SSL_PORT)
    )
    mgmt = PortSpec(port=MGMT_PORT, kind=ProbeKind.HTTP, stand_in=False)
    return (*internode, mgmt, *served)
