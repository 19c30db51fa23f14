"""Mission Control's install across planes (diagnosis/install.py), on discoveries shaped as
discover() leaves them: Helm's release Secrets read as metadata (their labels), ClientConfigs
and Secret names in mission-control. The lab tests (test_kube_cassandra) run the same checks
against the real API servers; these cover every state a user's planes can be in."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from netcheck.diagnosis.install import install_check
from netcheck.discovery.kube import ClientConfigInfo, ContextDiscovery, HelmRelease, helm_releases
from tests.test_kube import discovery

CP, DP, DP2 = "CP_EAST", "DP_WEST", "DP_SOUTH"


def release(name: str, version: int, status: str, owner: str = "helm") -> dict[str, Any]:
    """A release Secret as a metadata-only list gives it (Helm's own labels)."""
    return {
        "metadata": {
            "name": f"sh.helm.release.v1.{name}.v{version}",
            "labels": {"owner": owner, "name": name, "status": status, "version": str(version)},
        }
    }


def plane(ctx: str, *releases: tuple[str, int, str], **kw: Any) -> ContextDiscovery:
    base: dict[str, Any] = dict(
        helm_releases=helm_releases([release(*r) for r in releases]),
        secrets_read=True,
        client_configs_read=True,
    )
    return discovery(ctx, (), **(base | kw))


def registered(*contexts: str, secret_found: bool = True) -> dict[str, Any]:
    name = lambda c: c.lower().replace("_", "-") + "-dataplane1"  # noqa: E731
    return dict(
        client_configs=tuple(
            ClientConfigInfo(
                name=name(c), context_name=c, secret=f"{name(c)}-config", secret_found=secret_found
            )
            for c in contexts
        )
    )


def codes(planes: list[ContextDiscovery], installing: bool = False) -> list[tuple[str, str, str]]:
    check = install_check(planes, CP, installing=installing)
    return sorted((f.code, f.severity.value, f.src_cluster) for f in check.findings)


MC = ("mission-control", 1, "deployed")


def test_a_healthy_install_says_so_and_nothing_else():
    planes = [plane(CP, MC, **registered(DP, DP2)), plane(DP, MC), plane(DP2, MC)]
    check = install_check(planes, CP, installing=False)
    assert check.problems == ()
    assert codes(planes) == [
        ("MC_DATA_PLANE_REGISTERED", "info", DP2),
        ("MC_DATA_PLANE_REGISTERED", "info", DP),
        ("MC_HELM_RELEASES_MATCH", "info", CP),
    ]
    match = next(f for f in check.findings if f.code == "MC_HELM_RELEASES_MATCH")
    assert match.summary == (
        "Mission Control's Helm release mission-control is on the control plane CP_EAST "
        "and on DP_WEST, DP_SOUTH"
    )


def test_the_latest_revision_of_each_release_counts():
    secrets = [
        release("mission-control", 1, "superseded"),
        release("mission-control", 3, "deployed"),
        release("mission-control", 2, "superseded"),
        release("cert-manager", 10, "failed"),
        release("other", 1, "deployed", owner="someone-else"),  # not Helm's
        {"metadata": {"name": "dp-west-dataplane1-config"}},  # a Secret of mcctl's
        {"metadata": {"name": "x", "labels": {"owner": "helm", "name": "y", "version": "v2"}}},
    ]
    assert helm_releases(secrets) == (
        HelmRelease(name="cert-manager", revision=10, status="failed"),
        HelmRelease(name="mission-control", revision=3, status="deployed"),
    )


@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["owner", "name", "status", "version", "other"]),
            st.one_of(st.sampled_from(["helm", "mc", "7", "deployed"]), st.text(max_size=8)),
        ),
        max_size=12,
    )
)
def test_release_labels_of_any_shape_give_the_highest_revision_or_nothing(labels):
    secrets = [{"metadata": {"labels": dict(lb)}} for lb in labels]
    found = helm_releases(secrets)
    for r in found:
        same = [
            int(lb["version"])
            for lb in labels
            if lb.get("owner") == "helm" and lb.get("name") == r.name
            and str(lb.get("version", "")).isdigit()
        ]  # fmt: skip
        assert r.revision == max(same)
    assert len({r.name for r in found}) == len(found)


def test_a_data_plane_with_another_release_name_is_an_error_with_the_helm_commands():
    planes = [plane(CP, MC, **registered(DP)), plane(DP, ("mc-west", 1, "deployed"))]
    check = install_check(planes, CP, installing=True)  # wrong before and after install
    (bad,) = [f for f in check.findings if f.severity.value == "error"]
    assert bad.code == "MC_HELM_RELEASE_NAME_MISMATCH" and bad.src_cluster == DP
    assert "DP_WEST: Mission Control's Helm release is mc-west" in bad.summary
    assert "the control plane CP_EAST's is mission-control" in bad.summary
    assert bad.hint.startswith(
        "helm uninstall mc-west -n mission-control --kube-context DP_WEST; then helm install "
        "mission-control"
    )


def test_a_failed_or_interrupted_release_is_an_error_naming_its_revision():
    planes = [
        plane(CP, ("mission-control", 4, "pending-upgrade"), **registered(DP)),
        plane(DP, ("mission-control", 2, "failed")),
    ]
    check = install_check(planes, CP, installing=False)
    bad = {f.src_cluster: f for f in check.findings if f.code == "MC_HELM_RELEASE_NOT_DEPLOYED"}
    assert set(bad) == {CP, DP}
    assert "revision 4, is pending-upgrade: a Helm operation was cut short" in bad[CP].summary
    assert "helm rollback mission-control -n mission-control --kube-context CP_EAST" in (
        bad[CP].hint
    )
    assert "revision 2, is failed" in bad[DP].summary and "helm upgrade" in bad[DP].hint


def test_partial_installs_are_info_before_install_and_errors_after():
    # the control plane installed, the data plane neither installed nor registered yet
    planes = [plane(CP, MC), plane(DP)]
    assert codes(planes, installing=True) == [
        ("MC_DATA_PLANE_NOT_REGISTERED", "info", DP),
        ("MC_NOT_INSTALLED", "info", DP),
    ]
    assert codes(planes, installing=False) == [
        ("MC_DATA_PLANE_NOT_REGISTERED", "error", DP),
        ("MC_NOT_INSTALLED", "error", DP),
    ]
    check = install_check(planes, CP, installing=False)
    missing = next(f for f in check.findings if f.code == "MC_NOT_INSTALLED")
    assert missing.summary == (
        "DP_WEST: no Mission Control Helm release in mission-control "
        "(the control plane CP_EAST's is mission-control)"
    )
    assert missing.hint.startswith("helm install mission-control with the data plane's values")
    unregistered = next(f for f in check.findings if f.code == "MC_DATA_PLANE_NOT_REGISTERED")
    assert unregistered.hint == "mcctl register --source-context DP_WEST --dest-context CP_EAST"
    assert "(they name: none)" in unregistered.summary
    # nothing installed anywhere: one line before install, no registration looked for
    nothing = [plane(CP), plane(DP)]
    assert codes(nothing, installing=True) == [("MC_NOT_INSTALLED", "info", CP)]
    # after install without any Helm release: installed another way, said, not judged
    assert ("MC_HELM_RELEASE_NOT_FOUND", "warning", CP) in codes(nothing)


def test_a_data_plane_installed_before_its_control_plane_names_the_control_plane():
    planes = [plane(CP), plane(DP, MC)]
    assert codes(planes, installing=True)[1] == ("MC_NOT_INSTALLED", "info", CP)
    (cp_missing,) = [
        f for f in install_check(planes, CP, installing=False).findings
        if f.code == "MC_NOT_INSTALLED"
    ]  # fmt: skip
    assert cp_missing.severity.value == "error" and cp_missing.src_cluster == CP
    assert "(the data planes have mission-control)" in cp_missing.summary


def test_registration_matches_the_context_or_its_kubeconfig_cluster_name():
    # the user's context DP_WEST-ci points at the kubeconfig cluster DP_WEST, registered so
    planes = [plane(CP, MC, **registered(DP)), plane("DP_WEST-ci", MC, kube_cluster=DP)]
    assert ("MC_DATA_PLANE_REGISTERED", "info", "DP_WEST-ci") in codes(planes)
    other = [plane(CP, MC, **registered(DP2)), plane(DP, MC, kube_cluster="west")]
    (f,) = [
        f for f in install_check(other, CP, installing=False).findings
        if f.code == "MC_DATA_PLANE_NOT_REGISTERED"
    ]  # fmt: skip
    assert "names context DP_WEST or west (they name: DP_SOUTH)" in f.summary


def test_a_registration_without_its_secret_is_an_error_before_and_after_install():
    planes = [plane(CP, MC, **registered(DP, secret_found=False)), plane(DP, MC)]
    for installing in (True, False):
        (bad,) = [
            f for f in install_check(planes, CP, installing=installing).findings
            if f.severity.value == "error"
        ]  # fmt: skip
        assert bad.code == "MC_REGISTRATION_SECRET_MISSING"
        assert "its Secret dp-west-dataplane1-config is not in mission-control" in bad.summary
        assert bad.hint.startswith("mcctl register --source-context DP_WEST")


def test_what_could_not_be_read_is_never_a_pass():
    refused = 'RBAC forbids "list" on "secrets" in namespace mission-control'
    cp = plane(
        CP,
        secrets_read=False,
        warnings=(f"secrets in mission-control: {refused}",),
        **registered(DP),
    )
    planes = [cp, plane(DP, MC)]
    after = install_check(planes, CP, installing=False)
    # after install: the run is incomplete, with the why and the grant that fixes it
    assert len(after.problems) == 2
    assert after.problems[0].startswith(
        f"CP_EAST: Mission Control's Helm release not checked: secrets in mission-control: "
        f"{refused}; bind ClusterRole netcheck-secret-names"
    )
    assert "the data planes' registration not checked" in after.problems[1]
    assert not [f for f in after.findings if f.code.endswith(("REGISTERED", "MATCH"))]
    # before install: the namespace (and so its RoleBinding) may not exist yet: info
    before = install_check(planes, CP, installing=True)
    assert before.problems == ()
    assert {f.code for f in before.findings} == {"MC_INSTALL_NOT_CHECKED"}


def test_a_control_plane_without_the_clientconfig_api_is_not_a_mission_control_one():
    # a release of that name, but no k8ssandra-operator CRDs: not a control plane (yet)
    planes = [plane(CP, MC, client_configs_read=False, client_configs_served=False), plane(DP, MC)]
    assert ("MC_CONTROL_PLANE_NOT_INSTALLED", "info", CP) in codes(planes, installing=True)
    assert ("MC_CONTROL_PLANE_NOT_INSTALLED", "error", CP) in codes(planes)
    assert not [c for c in codes(planes) if c[0] == "MC_DATA_PLANE_NOT_REGISTERED"]
    assert install_check(planes, "NOT_READ", installing=False).findings == ()


def test_no_plane_read_says_nothing_of_the_install_but_that_it_was_not_checked():
    refused = "RBAC forbids it"
    planes = [
        plane(CP, secrets_read=False, warnings=(f"secrets in mission-control: {refused}",)),
        plane(DP, secrets_read=False, warnings=(f"secrets in mission-control: {refused}",)),
    ]
    before = install_check(planes, CP, installing=True)
    assert {f.code for f in before.findings} == {"MC_INSTALL_NOT_CHECKED"}
    after = install_check(planes, CP, installing=False)
    assert not after.findings and len(after.problems) == 3  # two planes, and the registration
