import textwrap

import pytest

from netcheck.discovery.inventory import (
    InventoryError,
    dump_inventory,
    load_inventory,
    parse_inventory,
)
from netcheck.model.probe import ProbeKind
from netcheck.model.topology import Role

GOOD = textwrap.dedent(
    """
    clusters:
      - name: CP_EAST
        region: east
        pod_cidrs: [198.18.0.0/20]
        endpoints:
          - name: cp-dc1-r1-p0
            address: 198.18.1.10
            datacenter: dc1
            rack: r1
            zone: east-a
            role: database
            agent: http://198.18.1.10:9925
            ports: [7000, 7001, 8080]
          - name: cp-apiserver
            address: 198.18.16.20
            role: api-server
            ports: [6443]
      - name: DP_WEST
        region: west
        endpoints:
          - name: dp-dc2-r1-p0
            address: 198.18.33.10
            datacenter: dc2
            rack: r1
            agent: http://198.18.33.10:9925
            ports: [7000, {port: 9999, kind: http}]
    token_file: token
    """
)


def test_good_inventory(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(GOOD)
    topo = load_inventory(str(path))
    assert [c.name for c in topo.clusters] == ["CP_EAST", "DP_WEST"]
    ep = topo.endpoint("cp-dc1-r1-p0")
    assert ep.zone == "east-a" and ep.role is Role.DATABASE and ep.stand_in
    assert [(p.port, p.kind) for p in ep.ports] == [
        (7000, ProbeKind.TCP),
        (7001, ProbeKind.TLS),
        (8080, ProbeKind.HTTP),
    ]
    api = topo.endpoint("cp-apiserver")
    assert api.ports[0].kind is ProbeKind.TLS and not api.has_agent and not api.stand_in
    assert topo.endpoint("dp-dc2-r1-p0").ports[1].kind is ProbeKind.HTTP
    assert topo.token_file == str(tmp_path / "token")  # relative to the inventory
    again = parse_inventory(dump_inventory(topo), "dumped")
    assert again.endpoints == topo.endpoints


@pytest.mark.parametrize(
    ("mutate", "path_in_message", "fix_in_message"),
    [
        (lambda t: t.replace("clusters:", "clusterz:"), "clusterz", "use one of"),
        (lambda t: t.replace("198.18.1.10\n", "198.18.1.300\n", 1), "endpoints[0].address", "IP"),
        (lambda t: t.replace("dp-dc2-r1-p0", "cp-dc1-r1-p0"), "endpoints[0].name", "unique"),
        (lambda t: t.replace("http://198.18.33.10:9925", "198.18.33.10"), ".agent", "http://"),
        (lambda t: t.replace("[7000, 7001, 8080]", "[7000, 70001]"), "ports[1]", "1 to 65535"),
        (lambda t: t.replace("role: database", "role: dba"), ".role", "database"),
        (lambda t: t.replace("198.18.0.0/20", "198.18.0.1/20"), "pod_cidrs[0]", "host bits"),
        (
            lambda t: t.replace("    region: west\n", "    region: west\n    colour: red\n"),
            "colour",
            "",
        ),
        (lambda t: t.replace("region: east", "region: [east"), "line", "YAML"),
        (lambda t: t.replace("agent:", "agnt:"), "agnt", "use one of"),
    ],
)
def test_bad_inventory_names_file_path_and_fix(tmp_path, mutate, path_in_message, fix_in_message):
    path = tmp_path / "broken.yaml"
    text = mutate(GOOD)
    assert text != GOOD
    path.write_text(text)
    with pytest.raises(InventoryError) as err:
        load_inventory(str(path))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert path_in_message in message
    assert fix_in_message in message


def test_inventory_without_agents_is_refused():
    text = "\n".join(line for line in GOOD.splitlines() if "agent:" not in line)
    with pytest.raises(InventoryError, match="no endpoint has an agent"):
        parse_inventory(text, "x.yaml")


def test_missing_file():
    with pytest.raises(InventoryError, match="cannot read it"):
        load_inventory("/nonexistent/inventory.yaml")
