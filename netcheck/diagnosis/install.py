"""Mission Control's install across the planes of a run: the Helm release in `mission-control`
the same on every plane and deployed, and each data plane registered on the control plane (a
ClientConfig naming its context, and that ClientConfig's Secret, as `mcctl register` leaves
them). Read from discovery (Secrets' metadata and ClientConfigs only, never a Secret's data).

`installing` (preflight): states a partial install passes through (not installed yet, not
registered yet, the namespace or its RoleBinding not there yet) are info; after install (`run
--control-plane`) they are errors, and a read RBAC refused leaves the check not made.
"""

from __future__ import annotations

from dataclasses import dataclass

from netcheck.discovery.kube import MISSION_CONTROL_NS, ContextDiscovery, HelmRelease
from netcheck.model.findings import Finding, Severity, cluster_finding

# Helm's release statuses: the latest revision is `deployed` when the install or upgrade
# finished; `uninstalled` (kept with --keep-history) is gone; any other is a problem
DEPLOYED, UNINSTALLED = "deployed", "uninstalled"
RBAC_HINT = (
    "bind ClusterRole netcheck-secret-names in namespace mission-control, and list "
    "clientconfigs there (probes/rbac/netcheck-user.yaml)"
)


@dataclass(frozen=True, kw_only=True)
class InstallCheck:
    findings: tuple[Finding, ...]
    problems: tuple[str, ...]  # checks not made after install (the run is incomplete)


def _why(d: ContextDiscovery, what: str) -> str:
    prefix = f"{what} in {MISSION_CONTROL_NS}: "
    return next((w[len(prefix) :] for w in d.warnings if w.startswith(prefix)), "not read")


def _names(releases: tuple[HelmRelease, ...]) -> str:
    return ", ".join(r.name for r in releases)


def install_check(
    discoveries: list[ContextDiscovery], control_plane: str, *, installing: bool
) -> InstallCheck:
    """The install of every plane discovered; nothing when the control plane was not read (its
    context's failure is the run's problem already)."""
    by_ctx = {d.context: d for d in discoveries}
    cp = by_ctx.get(control_plane)
    if cp is None:
        return InstallCheck(findings=(), problems=())
    out: list[Finding] = []
    problems: list[str] = []

    def unread(d: ContextDiscovery, what: str, checks: str) -> None:
        line = f"{d.context}: {checks} not checked: {what} in {MISSION_CONTROL_NS}: {_why(d, what)}"
        if installing:
            out.append(
                cluster_finding(
                    Severity.INFO,
                    "MC_INSTALL_NOT_CHECKED",
                    d.context,
                    line + " (before install the namespace and its RoleBinding may not exist)",
                    RBAC_HINT,
                )
            )
        else:
            problems.append(f"{line}; {RBAC_HINT}")

    for d in discoveries:
        if not d.secrets_read:
            unread(d, "secrets", "Mission Control's Helm release")
    read = [d for d in discoveries if d.secrets_read]
    out += _releases(read, cp, installing)
    installed = any(r.status != UNINSTALLED for d in read for r in d.helm_releases)
    if installing and read and not installed:
        pass  # nothing installed yet (MC_NOT_INSTALLED): no registration to look for
    elif not cp.client_configs_served:
        out.append(
            cluster_finding(
                Severity.INFO if installing else Severity.ERROR,
                "MC_CONTROL_PLANE_NOT_INSTALLED",
                control_plane,
                f"{control_plane}: the ClientConfig API (config.k8ssandra.io) is not served: "
                "Mission Control's control plane is not installed there"
                + (" yet" if installing else ""),
                "install Mission Control's control plane there (Helm, `controlPlane: true`), "
                "or name the control plane's context with --control-plane",
            )
        )
    elif not (cp.client_configs_read and cp.secrets_read):
        what = "secrets" if cp.client_configs_read else "clientconfigs"
        unread(cp, what, "the data planes' registration")
    else:
        for d in discoveries:
            if d.context != control_plane:
                out += _registration(d, cp, installing)
    return InstallCheck(findings=tuple(out), problems=tuple(problems))


def _releases(
    planes: list[ContextDiscovery], cp: ContextDiscovery, installing: bool
) -> list[Finding]:
    """Release names compared with the control plane's, each latest revision's status (of the
    planes whose Secrets were read: none read, nothing said here)."""
    if not planes:
        return []
    live = {d.context: tuple(r for r in d.helm_releases if r.status != UNINSTALLED) for d in planes}
    out: list[Finding] = []
    for d in planes:
        for r in live[d.context]:
            if r.status != DEPLOYED:
                out.append(_unfinished(d.context, r))
    if not any(live.values()):
        if installing:
            out.append(
                cluster_finding(
                    Severity.INFO,
                    "MC_NOT_INSTALLED",
                    cp.context,
                    f"Mission Control is not installed yet: no Helm release in "
                    f"{MISSION_CONTROL_NS} on {', '.join(live)}; the release-name and registration "
                    "checks apply once it is",
                    "install the control plane first, then every data plane with the control "
                    "plane's release name",
                )
            )
        else:
            out.append(
                cluster_finding(
                    Severity.WARNING,
                    "MC_HELM_RELEASE_NOT_FOUND",
                    cp.context,
                    f"no Helm release in {MISSION_CONTROL_NS} on {', '.join(live)}: Mission "
                    "Control was installed without Helm (KOTS?), so the release names were "
                    "not compared",
                    "compare the application's name on every plane by hand: the data planes "
                    "must use the control plane's",
                )
            )
        return out
    ref = live.get(cp.context, ())
    ref_names = {r.name for r in ref}
    matched: list[str] = []
    for d in planes:
        mine = live[d.context]
        names = {r.name for r in mine}
        if d.context == cp.context or not ref:
            continue  # without the control plane's release there is nothing to compare with
        if not mine:
            out.append(_missing(d.context, cp.context, ref, installing))
        elif not names & ref_names:
            out.append(
                cluster_finding(
                    Severity.ERROR,
                    "MC_HELM_RELEASE_NAME_MISMATCH",
                    d.context,
                    f"{d.context}: Mission Control's Helm release is {_names(mine)}, the control "
                    f"plane {cp.context}'s is {_names(ref)}: every data plane must use the "
                    "control plane's release name",
                    f"helm uninstall {mine[0].name} -n {MISSION_CONTROL_NS} --kube-context "
                    f"{d.context}; then helm install {ref[0].name} with the data plane's values "
                    f"(controlPlane: false) -n {MISSION_CONTROL_NS} --kube-context {d.context}",
                )
            )
        else:
            matched.append(d.context)
    if not ref and cp.context in live:
        others = sorted({r.name for rs in live.values() for r in rs})
        out.append(
            cluster_finding(
                Severity.INFO if installing else Severity.ERROR,
                "MC_NOT_INSTALLED",
                cp.context,
                f"{cp.context}: no Mission Control Helm release in {MISSION_CONTROL_NS} on the "
                f"control plane (the data planes have {', '.join(others)})",
                "install the control plane with the data planes' release name "
                f"(controlPlane: true) -n {MISSION_CONTROL_NS} --kube-context {cp.context}",
            )
        )
    elif matched:
        out.append(
            cluster_finding(
                Severity.INFO,
                "MC_HELM_RELEASES_MATCH",
                cp.context,
                f"Mission Control's Helm release {_names(ref)} is on the control plane "
                f"{cp.context} and on {', '.join(matched)}",
                "",
            )
        )
    return out


def _unfinished(ctx: str, r: HelmRelease) -> Finding:
    pending = r.status.startswith("pending") or r.status == "uninstalling"
    return cluster_finding(
        Severity.ERROR,
        "MC_HELM_RELEASE_NOT_DEPLOYED",
        ctx,
        f"{ctx}: Helm release {r.name} in {MISSION_CONTROL_NS}, revision {r.revision}, is "
        f"{r.status or 'without a status'}"
        + (": a Helm operation was cut short and Helm refuses the next one" if pending else ""),
        f"helm history {r.name} -n {MISSION_CONTROL_NS} --kube-context {ctx} says what "
        + (
            f"happened; helm rollback {r.name} -n {MISSION_CONTROL_NS} --kube-context {ctx} "
            "to the last deployed revision"
            if pending
            else f"failed; fix the values and helm upgrade {r.name} again, or helm rollback it"
        ),
    )


def _missing(ctx: str, cp: str, ref: tuple[HelmRelease, ...], installing: bool) -> Finding:
    return cluster_finding(
        Severity.INFO if installing else Severity.ERROR,
        "MC_NOT_INSTALLED",
        ctx,
        f"{ctx}: no Mission Control Helm release in {MISSION_CONTROL_NS}"
        + (" yet" if installing else "")
        + f" (the control plane {cp}'s is {_names(ref)})",
        f"helm install {ref[0].name} with the data plane's values (controlPlane: false) "
        f"-n {MISSION_CONTROL_NS} --kube-context {ctx}: the control plane's release name",
    )


def _registration(d: ContextDiscovery, cp: ContextDiscovery, installing: bool) -> list[Finding]:
    """A ClientConfig on the control plane naming this data plane, by its context's name or
    its kubeconfig cluster's (`mcctl register` names it after the context it was given)."""
    names = {d.context, d.kube_cluster} - {""}
    mine = [c for c in cp.client_configs if (c.context_name or c.name) in names]
    register = f"mcctl register --source-context {d.context} --dest-context {cp.context}"
    if not mine:
        known = ", ".join(sorted({c.context_name or c.name for c in cp.client_configs})) or "none"
        return [
            cluster_finding(
                Severity.INFO if installing else Severity.ERROR,
                "MC_DATA_PLANE_NOT_REGISTERED",
                d.context,
                f"{d.context}: not registered on the control plane {cp.context}"
                + (" yet" if installing else "")
                + f": no ClientConfig in {MISSION_CONTROL_NS} names context "
                + " or ".join(sorted(names))
                + f" (they name: {known}); the operator cannot reach this data plane",
                register,
            )
        ]
    out = []
    for c in mine:
        if c.secret_found:
            out.append(
                cluster_finding(
                    Severity.INFO,
                    "MC_DATA_PLANE_REGISTERED",
                    d.context,
                    f"{d.context}: registered on {cp.context} as ClientConfig {c.name} "
                    f"(context {c.context_name or c.name}, Secret {c.secret})",
                    "",
                )
            )
        else:
            out.append(
                cluster_finding(
                    Severity.ERROR,
                    "MC_REGISTRATION_SECRET_MISSING",
                    d.context,
                    f"{d.context}: ClientConfig {c.name} on {cp.context} names this data "
                    f"plane, but its Secret {c.secret or '(none named)'} is not in "
                    f"{MISSION_CONTROL_NS}: the operator cannot reach it",
                    f"{register} (again: it writes the Secret with the data plane's kubeconfig)",
                )
            )
    return out
