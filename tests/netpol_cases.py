"""A table of NetworkPolicy shapes and the connections each must admit or refuse.

The same table is checked against netcheck's evaluator (test_netpol.py) and, on the lab's real
API servers and packets, against the enforcer (the lab). Each case is a set of policies as a
user writes them and a list of (source, destination, port, admitted) as Kubernetes' semantics
say (the reference's "Network Policies" page; see netcheck/discovery/netpol.py).

The world: namespace `demo` with two database pods (cass-operator's labels and named container
ports) and a non-database pod (reaper); namespace `netcheck` with the agent; namespace `shop`
(label team=web) with a web pod; and two sources outside the cluster, which its policies know
only by address: the other cluster's database pod (`west-db`) and another pod of that cluster
(`elsewhere`). Policies name addresses through placeholders that `resolve` fills from a World:
$WEST_CIDR (the other cluster's network, both outside sources in it) and $WEST_DB (west-db's
address), so the same cases run on made-up addresses here and on the lab's real pods.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DB_LABELS = {
    "cassandra.datastax.com/cluster": "demo",
    "cassandra.datastax.com/datacenter": "dc1",
    "app.kubernetes.io/managed-by": "cass-operator",
}
NAMED_PORTS = {"internode": 7000, "tls-internode": 7001, "mgmt-api-http": 8080}


@dataclass(frozen=True)
class WorldPod:
    namespace: str
    name: str
    labels: dict[str, str]
    address: str
    ports: dict[str, int]


POD = {
    "db0": WorldPod("demo", "demo-dc1-r1-sts-0", DB_LABELS, "198.18.1.10", NAMED_PORTS),
    "db1": WorldPod("demo", "demo-dc1-r2-sts-0", DB_LABELS, "198.18.2.10", NAMED_PORTS),
    "reaper": WorldPod("demo", "reaper-0", {"app": "reaper"}, "198.18.1.20", {}),
    "agent": WorldPod("netcheck", "netcheck-agent-x", {"app": "netcheck-agent"}, "198.18.1.21", {}),
    "web": WorldPod("shop", "web-0", {"app": "web"}, "198.18.2.21", {}),
}
NAMESPACE_LABELS = {"demo": {}, "netcheck": {}, "shop": {"team": "web"}}
EXTERNAL = {"west-db": "198.18.33.10", "elsewhere": "198.18.56.11"}
PLACES = {"$WEST_CIDR": "198.18.32.0/19", "$WEST_DB": "198.18.33.10"}


def resolve(obj: Any, places: dict[str, str]) -> Any:
    """The policy with its placeholders ("$WEST_DB/32" too) replaced by the world's values."""
    if isinstance(obj, dict):
        return {k: resolve(v, places) for k, v in obj.items()}
    if isinstance(obj, list):
        return [resolve(v, places) for v in obj]
    if isinstance(obj, str) and obj.startswith("$"):
        key, _, rest = obj.partition("/")
        return places[key] + (f"/{rest}" if rest else "")
    return obj


DB_SELECTOR = {"matchLabels": {"cassandra.datastax.com/cluster": "demo"}}
INTERNODE = [{"port": 7000}, {"port": 7001}]


def policy(name: str, spec: dict[str, Any], namespace: str = "demo") -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def db_only(extra_from: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The guide's isolation: only database pods (and extra peers) reach 7000/7001."""
    return policy(
        "internode-db-only",
        {
            "podSelector": DB_SELECTOR,
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"podSelector": DB_SELECTOR}, *(extra_from or [])], "ports": INTERNODE},
                {"ports": [{"port": 8080}, {"port": 9042}]},  # the rest stays open
            ],
        },
    )


@dataclass(frozen=True)
class Case:
    name: str
    policies: list[dict[str, Any]]
    # (source: a POD key or an EXTERNAL key, destination POD key, port, admitted)
    expect: list[tuple[str, str, int, bool]]


CASES = [
    Case(
        "no policy admits everything",
        [],
        [("agent", "db0", 7000, True), ("web", "db0", 7001, True)],
    ),
    Case(
        "default deny of ingress in the namespace",
        [policy("deny", {"podSelector": {}, "policyTypes": ["Ingress"]})],
        [("db1", "db0", 7000, False), ("agent", "db0", 8080, False), ("db0", "agent", 7000, True)],
    ),
    Case(
        "database pods only on 7000/7001, the rest open",
        [db_only()],
        [
            ("db1", "db0", 7000, True),
            ("db1", "db0", 7001, True),
            ("agent", "db0", 7000, False),
            ("reaper", "db0", 7001, False),  # same namespace, not a database pod
            ("web", "db0", 7000, False),
            ("agent", "db0", 8080, True),
            ("west-db", "db0", 7000, False),
            ("reaper", "reaper", 7000, True),  # not selected: not isolated
        ],
    ),
    Case(
        "database pods and the other cluster's database pod's address",
        [db_only([{"ipBlock": {"cidr": "$WEST_DB/32"}}])],
        [
            ("west-db", "db0", 7001, True),
            ("elsewhere", "db0", 7001, False),
            ("agent", "db0", 7001, False),
        ],
    ),
    Case(
        "ipBlock with an except",
        [db_only([{"ipBlock": {"cidr": "$WEST_CIDR", "except": ["$WEST_DB/32"]}}])],
        [
            ("west-db", "db0", 7000, False),
            ("elsewhere", "db0", 7000, True),
            ("db1", "db0", 7000, True),
        ],
    ),
    Case(
        "namespaceSelector alone admits every pod of the namespace, not the policy's own",
        [
            policy(
                "from-netcheck",
                {
                    "podSelector": DB_SELECTOR,
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "netcheck"}
                                    }
                                }
                            ]
                        }
                    ],
                },
            )
        ],
        [("agent", "db0", 7000, True), ("db1", "db0", 7000, False), ("web", "db0", 7000, False)],
    ),
    Case(
        "namespaceSelector and podSelector in one peer: both must hold",
        [
            policy(
                "and",
                {
                    "podSelector": DB_SELECTOR,
                    "ingress": [
                        {
                            "from": [
                                {
                                    "namespaceSelector": {"matchLabels": {"team": "web"}},
                                    "podSelector": {"matchLabels": {"app": "netcheck-agent"}},
                                }
                            ]
                        }
                    ],
                },
            )
        ],
        [("agent", "db0", 7000, False), ("web", "db0", 7000, False)],
    ),
    Case(
        "namespaceSelector and podSelector as two peers: either admits",
        [
            policy(
                "or",
                {
                    "podSelector": DB_SELECTOR,
                    "ingress": [
                        {
                            "from": [
                                {"namespaceSelector": {"matchLabels": {"team": "web"}}},
                                {"podSelector": {"matchLabels": {"app": "reaper"}}},
                            ]
                        }
                    ],
                },
            )
        ],
        [("web", "db0", 7000, True), ("reaper", "db0", 7000, True), ("agent", "db0", 7000, False)],
    ),
    Case(
        "matchExpressions: In, NotIn, Exists",
        [
            policy(
                "expressions",
                {
                    "podSelector": {
                        "matchExpressions": [
                            {"key": "cassandra.datastax.com/cluster", "operator": "Exists"}
                        ]
                    },
                    "ingress": [
                        {
                            "from": [
                                {
                                    "podSelector": {
                                        "matchExpressions": [
                                            {
                                                "key": "cassandra.datastax.com/cluster",
                                                "operator": "In",
                                                "values": ["demo", "other"],
                                            }
                                        ]
                                    }
                                },
                                {
                                    "namespaceSelector": {
                                        "matchExpressions": [
                                            {"key": "team", "operator": "NotIn", "values": ["web"]}
                                        ]
                                    },
                                    "podSelector": {
                                        "matchExpressions": [
                                            {"key": "app", "operator": "DoesNotExist"}
                                        ]
                                    },
                                },
                            ]
                        }
                    ],
                },
            )
        ],
        [("db1", "db0", 7000, True), ("agent", "db0", 7000, False), ("web", "db0", 7000, False)],
    ),
    Case(
        "a named port is the destination container's port of that name",
        [
            policy(
                "named",
                {
                    "podSelector": DB_SELECTOR,
                    "ingress": [{"ports": [{"port": "internode"}]}],
                },
            )
        ],
        [("agent", "db0", 7000, True), ("agent", "db0", 7001, False)],
    ),
    Case(
        "a port range to endPort",
        [
            policy(
                "range",
                {
                    "podSelector": DB_SELECTOR,
                    "ingress": [{"ports": [{"port": 7000, "endPort": 7001}]}],
                },
            )
        ],
        [("agent", "db0", 7001, True), ("agent", "db0", 8080, False)],
    ),
    Case(
        "a UDP rule does not admit TCP",
        [
            policy(
                "udp",
                {
                    "podSelector": DB_SELECTOR,
                    "ingress": [{"ports": [{"protocol": "UDP", "port": 7000}]}],
                },
            )
        ],
        [("agent", "db0", 7000, False)],
    ),
    Case(
        "policies add up",
        [
            db_only(),
            policy(
                "mgmt-from-everyone",
                {"podSelector": DB_SELECTOR, "ingress": [{"ports": [{"port": 7001}]}]},
            ),
        ],
        [("agent", "db0", 7000, False), ("agent", "db0", 7001, True)],
    ),
    Case(
        "egress isolation of the source: the agent's namespace denies all egress",
        [policy("no-egress", {"podSelector": {}, "policyTypes": ["Egress"]}, namespace="netcheck")],
        [("agent", "db0", 7000, False), ("db1", "db0", 7000, True)],
    ),
    Case(
        "egress admitted to the database pods' namespace only",
        [
            policy(
                "egress-to-demo",
                {
                    "podSelector": {},
                    "egress": [
                        {
                            "to": [
                                {
                                    "namespaceSelector": {
                                        "matchLabels": {"kubernetes.io/metadata.name": "demo"}
                                    }
                                }
                            ]
                        }
                    ],
                },
                namespace="shop",
            )
        ],
        [("web", "db0", 7000, True), ("web", "agent", 7000, False)],
    ),
    Case(
        "an empty rule admits everything to the pods it isolates",
        [policy("all", {"podSelector": DB_SELECTOR, "ingress": [{}]})],
        [("elsewhere", "db0", 7000, True), ("web", "db0", 7001, True)],
    ),
    Case(
        "a policy selecting other pods isolates none of the database pods",
        [policy("web-only", {"podSelector": {"matchLabels": {"app": "reaper"}}, "ingress": []})],
        [("agent", "db0", 7000, True), ("agent", "reaper", 7000, False)],
    ),
]
