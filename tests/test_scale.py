"""The diagnosis at growing mesh sizes (bench/meshes.py, the scale benchmark's meshes): one
finding per cause whatever the size, each naming the cause's own scope. No timing here: speed
and memory are measured by `make bench` (section o)."""

from collections import Counter

import pytest

from bench import meshes
from netcheck.diagnosis.findings import diagnose


@pytest.mark.parametrize("pods", [32, 64, 128])
def test_five_faults_give_five_findings_at_every_size(pods):
    """7001 dropped between the clusters, an isolated pod inside the rack pair that also
    stalls, the Vector NodePort refused to the data plane, the data plane's API server
    unreachable: each is one finding with its own scope, not racks and single pods."""
    topo = meshes.topology(pods)
    found = diagnose(topo, meshes.results(topo))
    assert Counter(f.code for f in found) == meshes.EXPECTED, [f.summary for f in found]
    by_code = {f.code: f for f in found}
    scopes = {code: (f.src_scope, f.dst_scope) for code, f in by_code.items()}
    assert scopes == {
        "PORT_TIMEOUT": ("every C0 endpoint", "every C1 endpoint"),
        "POD_ISOLATED": ("every endpoint", meshes.ISOLATED),
        "PORT_REFUSED": ("every C1 endpoint", "every C0 endpoint"),
        "PATH_MTU_STALL": ("rack C0/dc0/r1", "rack C1/dc1/r2"),
        "HOST_UNREACHABLE": ("every C0 endpoint", "api-c1"),
    }
    assert by_code["PORT_TIMEOUT"].ports == (7001,)
    assert "both directions" in by_code["PORT_TIMEOUT"].summary
    assert by_code["PATH_MTU_STALL"].ports == (7000, 8080)
    # every pair of the timeout but the isolated pod's, both directions
    per_cluster = pods // 2
    assert by_code["PORT_TIMEOUT"].affected_pairs == 2 * per_cluster * (per_cluster - 1)


def test_a_healthy_mesh_has_no_finding():
    topo = meshes.topology(32)
    assert diagnose(topo, meshes.results(topo, meshes.healthy)) == ()
