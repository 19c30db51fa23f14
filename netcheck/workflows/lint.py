"""`lint`: MissionControlCluster manifests checked before they are applied.

Offline, each file's documents against the guide's rules (diagnosis/mission_control.py). With
the control plane's context, each datacenter's k8sContext registered there, and where each
datacenter lands (the contexts of the same kubeconfig) its storage class and racks' zones.

    import asyncio
    from netcheck.workflows.lint import ControlPlane, lint_manifests

    done = asyncio.run(lint_manifests(["mcc.yaml"], ControlPlane("kubeconfig", "CP_EAST")))
    print([f.code for f in done.findings], done.unread, done.errors, done.exit_code)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netcheck.diagnosis.mission_control import (
    MAX_MANIFEST_BYTES,
    Linted,
    ManifestError,
    lint,
    placement_findings,
    registration_findings,
    registrations_of,
)
from netcheck.kube.config import list_contexts
from netcheck.kube.errors import KubeconfigError
from netcheck.model.findings import Finding, Severity
from netcheck.workflows.contexts import discover_all
from netcheck.workflows.feedback import BadInput

EXIT_BAD_INPUT = 2
EXIT_INCOMPLETE = 3


@dataclass(frozen=True)
class ControlPlane:
    """The control plane's context in a kubeconfig; the datacenters' k8sContexts that this
    kubeconfig also holds are read where they land."""

    kubeconfig: str
    context: str
    known: frozenset[str] | None = None  # the kubeconfig's contexts, when already read


@dataclass(frozen=True, kw_only=True)
class LintDone:
    """linted: each MissionControlCluster read; findings: all of theirs, with the control
    plane's; unread: one line per file that could not be read; errors: one line per cluster
    that could not be read (the findings that need it are missing)."""

    linted: tuple[Linted, ...]
    findings: tuple[Finding, ...]
    unread: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """2 a file unread, 3 a cluster unread, 1 an error found, else 0: what was read is
        reported first in every case."""
        if self.unread:
            return EXIT_BAD_INPUT
        if self.errors:
            return EXIT_INCOMPLETE
        return 1 if any(f.severity is Severity.ERROR for f in self.findings) else 0


def read_manifests(files: Sequence[str]) -> tuple[list[Linted], list[str]]:
    """Each file linted offline; a file that cannot be read or parsed is one line (the
    others are still linted)."""
    linted: list[Linted] = []
    unread: list[str] = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read(MAX_MANIFEST_BYTES + 1)
        except OSError as exc:
            unread.append(f"{path}: cannot read it ({exc.strerror}); give a manifest file")
            continue
        try:
            linted += lint(text, path)
        except ManifestError as exc:
            unread.append(str(exc))
    return linted, unread


async def lint_manifests(
    files: Sequence[str], control_plane: ControlPlane | None = None
) -> LintDone:
    """The files linted, and with a control plane, checked against the clusters."""
    linted, unread = read_manifests(files)
    findings = tuple(f for one in linted for f in one.findings)
    errors: dict[str, str] = {}
    if control_plane is not None:
        contexts = control_plane.known
        if contexts is None:
            try:
                contexts = frozenset(e.name for e in list_contexts(control_plane.kubeconfig))
            except KubeconfigError as exc:
                raise BadInput(str(exc).removeprefix("context -: ")) from None
        # where the datacenters land, as far as this kubeconfig reaches
        lands = {dc.k8s_context for one in linted for dc in one.datacenters} & contexts
        cp = control_plane.context
        names = [cp, *sorted(lands - {cp})]
        found = await discover_all(control_plane.kubeconfig, names, (), errors)
        if cp in found:
            registered = registrations_of(found[cp])
            for one in linted:
                findings += registration_findings(one, cp, registered, contexts)
                placed, not_checked = placement_findings(one, cp, found)
                findings += placed
                errors.update((line, line) for line in not_checked)
    return LintDone(
        linted=tuple(linted),
        findings=findings,
        unread=tuple(unread),
        errors=tuple(errors.values()),
    )
