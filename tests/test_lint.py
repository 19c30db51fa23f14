"""`netcheck lint`: the guide's MissionControlCluster passes; each broken variant fails, naming
the rule, the field and its line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from netcheck.diagnosis.mission_control import (
    ManifestError,
    Registration,
    heap_bytes,
    lint,
    placement_findings,
    quantity_bytes,
    registration_findings,
)
from netcheck.model.findings import Severity
from tests.lab_support import netcheck

DEMO = Path(__file__).parent / "data" / "mcc" / "demo-mcc.yaml"


def _demo() -> dict:
    return yaml.safe_load(DEMO.read_text())


def _codes(doc: dict) -> list[tuple[str, str, str]]:
    (linted,) = lint(yaml.safe_dump(doc, sort_keys=False), "mcc.yaml")
    return sorted((f.severity.value, f.code, f.location) for f in linted.findings)


def test_the_guides_manifest_passes():
    (linted,) = lint(DEMO.read_text(), str(DEMO))
    assert linted.cluster == "demo"
    assert [(f.severity, f.code) for f in linted.findings] == [
        (Severity.INFO, "MCC_INTERNODE_PORTS")
    ]
    assert "7000 only" in linted.findings[0].summary


def test_internode_encryption_off_is_an_error_at_its_field():
    doc = _demo()
    doc["spec"]["encryption"]["internodeEncryption"]["enabled"] = False
    (linted,) = lint(yaml.safe_dump(doc, sort_keys=False), "mcc.yaml")
    (off,) = [f for f in linted.findings if f.code == "MCC_INTERNODE_ENCRYPTION_OFF"]
    assert off.severity is Severity.ERROR and "is false" in off.summary
    assert off.location.startswith("mcc.yaml: spec.encryption.internodeEncryption.enabled (line ")
    del doc["spec"]["encryption"]
    assert ("error", "MCC_INTERNODE_ENCRYPTION_OFF") in {(s, c) for s, c, _ in _codes(doc)}


def test_duplicate_datacenter_names():
    doc = _demo()
    doc["spec"]["k8ssandra"]["cassandra"]["datacenters"][1]["metadata"]["name"] = "dc1"
    assert ("error", "MCC_DATACENTER_DUPLICATE") in {(s, c) for s, c, _ in _codes(doc)}


@pytest.mark.parametrize(
    "break_it, words",
    [
        (lambda d: d.pop("apiVersion"), "apiVersion"),
        (lambda d: d["spec"]["k8ssandra"]["cassandra"].pop("datacenters"), "datacenters"),
        (
            lambda d: d["spec"]["k8ssandra"]["cassandra"]["datacenters"][0].update(size="three"),
            "datacenters[0].size",
        ),
        (
            lambda d: d["spec"]["k8ssandra"]["cassandra"]["datacenters"][1].update(size=0),
            "datacenters[1].size",
        ),
        (
            lambda d: d["spec"]["k8ssandra"]["cassandra"]["datacenters"][1].update(k8sContext=7),
            "datacenters[1].k8sContext",
        ),
        (
            lambda d: d["spec"]["k8ssandra"]["cassandra"]["config"]["jvmOptions"].update(
                heapSize="lots"
            ),
            "jvmOptions.heapSize",
        ),
    ],
)
def test_schema_errors_name_the_field(break_it, words):
    doc = _demo()
    break_it(doc)
    schema = [loc for s, c, loc in _codes(doc) if c == "MCC_SCHEMA"]
    assert schema and all(s for s in schema)
    assert any(words in loc for loc in schema), schema


def test_racks_and_zones():
    doc = _demo()
    dc2 = doc["spec"]["k8ssandra"]["cassandra"]["datacenters"][1]
    dc2["racks"][1]["nodeAffinityLabels"]["topology.kubernetes.io/zone"] = "us-west1-a"
    dc2["racks"][2]["nodeAffinityLabels"] = {}
    dc2["size"] = 4
    (linted,) = lint(yaml.safe_dump(doc, sort_keys=False), "mcc.yaml")
    said = sorted(f.summary for f in linted.findings if f.code == "MCC_RACK_ZONES")
    assert len(said) == 3, said
    assert any("r1, r2 land in one zone us-west1-a" in s for s in said)
    assert any("r3 name no zone" in s for s in said)
    assert any("4 nodes over 3 racks" in s for s in said)


def test_heap_against_memory():
    doc = _demo()
    cassandra = doc["spec"]["k8ssandra"]["cassandra"]
    cassandra["config"]["jvmOptions"]["heapSize"] = "20G"  # over half of 32Gi
    assert ("warning", "MCC_HEAP") in {(s, c) for s, c, _ in _codes(doc)}
    # a datacenter's own settings win over the cluster's
    cassandra["datacenters"][1]["resources"] = {"requests": {"memory": "16Gi"}}
    heap = [loc for s, c, loc in _codes(doc) if c == "MCC_HEAP" and s == "error"]
    assert heap == [heap[0]] and "jvmOptions.heapSize" in heap[0]
    assert quantity_bytes("32Gi") == 32 * 2**30 and quantity_bytes("512M") == 512e6
    assert heap_bytes("8G") == heap_bytes("8Gi") == 8 * 2**30


def test_internode_ports_by_server():
    doc = _demo()
    cassandra = doc["spec"]["k8ssandra"]["cassandra"]
    cassandra["serverType"], cassandra["serverVersion"] = "dse", "6.8.50"
    (ports,) = [
        f for f in lint(yaml.safe_dump(doc), "x")[0].findings if f.code == "MCC_INTERNODE_PORTS"
    ]
    assert ports.severity is Severity.WARNING and ports.ports == (7001,)
    cassandra["serverType"], cassandra["serverVersion"] = "cassandra", "4.0.17"
    cassandra["config"]["cassandraYaml"] = {
        "server_encryption_options": {"legacy_ssl_storage_port_enabled": True}
    }
    (ports,) = [
        f for f in lint(yaml.safe_dump(doc), "x")[0].findings if f.code == "MCC_INTERNODE_PORTS"
    ]
    assert ports.ports == (7000, 7001) and "legacy" in ports.summary


def test_stopped_datacenter():
    doc = _demo()
    doc["spec"]["k8ssandra"]["cassandra"]["datacenters"][1]["stopped"] = True
    assert ("warning", "MCC_DATACENTER_STOPPED") in {(s, c) for s, c, _ in _codes(doc)}


def test_bad_input_is_one_line_naming_the_file():
    with pytest.raises(ManifestError, match=r"^x.yaml: line \d+: .*give a YAML manifest"):
        lint("a: [1, 2\n", "x.yaml")
    with pytest.raises(ManifestError, match=r"^x.yaml: no MissionControlCluster in it"):
        lint("kind: ConfigMap\n", "x.yaml")
    laughs = (
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + "".join(
            f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        )
        + "kind: MissionControlCluster\n"
    )
    with pytest.raises(ManifestError, match="aliases"):
        lint(laughs, "x.yaml")


@given(st.text(max_size=400))
def test_any_text_is_findings_or_one_line(text):
    try:
        linted = lint("kind: MissionControlCluster\n" + text, "f.yaml")
    except ManifestError as exc:
        assert str(exc).startswith("f.yaml") and "\n" not in str(exc)
    else:
        assert all(f.code.startswith("MCC_") for one in linted for f in one.findings)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return netcheck("lint", *args)


def test_cli_exit_codes_and_outputs(tmp_path):
    good = _cli(str(DEMO), "-o", "json")
    assert good.returncode == 0, good.stderr
    doc = json.loads(good.stdout)
    assert [(f["severity"], f["code"]) for f in doc["findings"]] == [
        ("info", "MCC_INTERNODE_PORTS")
    ]
    broken = _demo()
    broken["spec"]["encryption"]["internodeEncryption"]["enabled"] = False
    path = tmp_path / "off.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    bad = _cli(str(path))
    assert bad.returncode == 1
    assert "MCC_INTERNODE_ENCRYPTION_OFF" in bad.stdout and "line" in bad.stdout
    as_yaml = _cli(str(path), "-o", "yaml")
    assert as_yaml.returncode == 1
    assert yaml.safe_load(as_yaml.stdout)["findings"][0]["code"]
    (tmp_path / "junk.yaml").write_text("a: [\n")
    junk = _cli(str(tmp_path / "junk.yaml"))
    assert junk.returncode == 2 and junk.stderr.count("\n") == 1 and "Traceback" not in junk.stderr


def test_lint_from_python_keeps_every_files_findings_beside_the_unread_ones(tmp_path):
    """The workflow a script calls: each readable file linted, each unreadable one a line."""
    import asyncio

    from netcheck.workflows.lint import lint_manifests

    broken = _demo()
    broken["spec"]["encryption"]["internodeEncryption"]["enabled"] = False
    off = tmp_path / "off.yaml"
    off.write_text(yaml.safe_dump(broken, sort_keys=False))
    done = asyncio.run(lint_manifests([str(DEMO), str(tmp_path / "gone.yaml"), str(off)]))
    assert [one.source for one in done.linted] == [str(DEMO), str(off)]
    assert "MCC_INTERNODE_ENCRYPTION_OFF" in {f.code for f in done.findings}
    assert done.unread == (f"{tmp_path / 'gone.yaml'}: cannot read it (No such file or "
                           "directory); give a manifest file",)  # fmt: skip
    assert done.exit_code == 2
    clean = asyncio.run(lint_manifests([str(DEMO)]))
    assert (clean.exit_code, clean.unread, clean.errors) == (0, (), ())
    assert asyncio.run(lint_manifests([str(off)])).exit_code == 1


def _registered(*contexts: str, secret: bool = True) -> tuple[Registration, ...]:
    return tuple(
        Registration(
            name=f"{c.lower()}-dataplane1",
            context_name=c,
            secret=f"{c.lower()}-dataplane1-config",
            secret_found=secret,
        )
        for c in contexts
    )


def test_each_datacenters_context_is_registered_on_the_control_plane():
    (linted,) = lint(DEMO.read_text(), "mcc.yaml")
    both = frozenset({"CP_EAST", "DP_WEST"})
    # dc1 lands on the control plane itself, dc2 on DP_WEST, which is registered
    assert registration_findings(linted, "CP_EAST", _registered("DP_WEST"), both) == ()
    (missing,) = registration_findings(linted, "CP_EAST", (), both)
    assert (missing.severity, missing.code) == (Severity.ERROR, "MCC_CONTEXT_NOT_REGISTERED")
    assert missing.hint == "mcctl register --source-context DP_WEST --dest-context CP_EAST"
    assert "datacenters[1].k8sContext (line " in missing.location
    (secret,) = registration_findings(linted, "CP_EAST", _registered("DP_WEST", secret=False), both)
    assert secret.code == "MCC_REGISTRATION_SECRET_MISSING" and "dp_west" in secret.summary
    (unknown,) = registration_findings(
        linted, "CP_EAST", _registered("DP_WEST"), frozenset({"CP_EAST"})
    )
    assert (unknown.severity, unknown.code) == (Severity.INFO, "MCC_CONTEXT_NOT_IN_KUBECONFIG")


def _cluster(ctx: str, zones: tuple[str, ...], classes: tuple[tuple[str, bool], ...], read=True):
    from netcheck.discovery.kube import NodeInfo, StorageClassInfo
    from tests.test_kube import discovery

    return discovery(
        ctx,
        (),
        nodes=tuple(
            NodeInfo(name=f"{ctx}-{z}", internal_ip="", zone=z, region="r", pod_cidrs=(), taints=())
            for z in zones
        ),
        storage_classes=tuple(
            StorageClassInfo(name=n, default=d, provisioner="pd.csi.storage.gke.io")
            for n, d in classes
        ),
        storage_classes_read=read,
    )


EAST = ("us-east1-b", "us-east1-c", "us-east1-d")
WEST = ("us-west1-a", "us-west1-b", "us-west1-c")


def test_where_each_datacenter_lands_has_its_storage_class_and_its_racks_zones():
    (linted,) = lint(DEMO.read_text(), "mcc.yaml")
    good = {
        "CP_EAST": _cluster("CP_EAST", EAST, (("premium-rwo", False), ("standard", True))),
        "DP_WEST": _cluster("DP_WEST", WEST, (("premium-rwo", True),)),
    }
    assert placement_findings(linted, "CP_EAST", good) == ((), ())
    bad = {
        "CP_EAST": _cluster("CP_EAST", EAST[:2], (("standard", True),)),
        "DP_WEST": _cluster("DP_WEST", WEST, (), read=False),
    }
    findings, unread = placement_findings(linted, "CP_EAST", bad)
    got = {(f.code, f.summary.split(":")[0]): f for f in findings}
    assert set(got) == {
        ("MCC_STORAGE_CLASS_MISSING", "dc1"),
        ("MCC_RACK_ZONE_EMPTY", "dc1 rack r3"),
    }
    storage = got["MCC_STORAGE_CLASS_MISSING", "dc1"]
    assert "storageClassName premium-rwo is not a StorageClass of CP_EAST (it has: standard)" in (
        storage.summary
    )
    assert "spec.k8ssandra.cassandra.storageConfig.cassandraDataVolumeClaimSpec" in storage.location
    zone = got["MCC_RACK_ZONE_EMPTY", "dc1 rack r3"]
    assert "no node of CP_EAST is in zone us-east1-d (zones there: us-east1-b, us-east1-c)" in (
        zone.summary
    )
    assert "datacenters[0].racks[2].nodeAffinityLabels (line " in zone.location
    # DP_WEST's classes could not be read: not a pass, a check not made
    assert unread == (
        "context DP_WEST: storage classes not read, so dc2's is not checked; grant list on "
        "storageclasses (probes/rbac/netcheck-user.yaml)",
    )


def test_a_datacenters_own_storage_class_wins_and_none_needs_a_default():
    doc = _demo()
    cassandra = doc["spec"]["k8ssandra"]["cassandra"]
    del cassandra["storageConfig"]
    dcs = cassandra["datacenters"]
    dcs[1]["storageConfig"] = {"cassandraDataVolumeClaimSpec": {"storageClassName": "gp3"}}
    (linted,) = lint(yaml.safe_dump(doc, sort_keys=False), "mcc.yaml")
    found = {
        "CP_EAST": _cluster("CP_EAST", EAST, (("standard", False),)),
        "DP_WEST": _cluster("DP_WEST", WEST, (("gp3", False),)),
    }
    (f,), _ = placement_findings(linted, "CP_EAST", found)
    assert f.code == "MCC_STORAGE_CLASS_MISSING" and f.summary.startswith(
        "dc1: no storageClassName, and CP_EAST has no default StorageClass (it has: standard)"
    )
    found["CP_EAST"] = _cluster("CP_EAST", EAST, (("standard", True),))
    assert placement_findings(linted, "CP_EAST", found) == ((), ())
    # a datacenter whose context this kubeconfig does not reach: left to the registration rule
    assert placement_findings(linted, "CP_EAST", {"CP_EAST": found["CP_EAST"]}) == ((), ())
