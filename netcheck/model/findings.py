"""Findings: one per cause, with where it happens and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, kw_only=True)
class Finding:
    severity: Severity
    code: str
    summary: str
    src_cluster: str
    dst_cluster: str
    ports: tuple[int, ...]
    affected_pairs: int
    hint: str
    src_scope: str = ""
    dst_scope: str = ""
    outcome: str = ""
    # where the cause acts, as the evidence shows it: a hop address, "the destination", ...
    location: str = ""
    # the fault acts in one direction only: the reverse direction of every pair works
    asymmetric: bool = False


def cluster_finding(
    severity: Severity, code: str, cluster: str, summary: str, hint: str
) -> Finding:
    """A finding about one cluster as a whole (its install, its overlay), not probe pairs."""
    return Finding(
        severity=severity,
        code=code,
        summary=summary,
        src_cluster=cluster,
        dst_cluster=cluster,
        ports=(),
        affected_pairs=0,
        hint=hint,
    )
