"""The result of one run: what every report format is written from."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from netcheck.model.findings import Finding, Severity
from netcheck.model.gossip import GossipAnalysis
from netcheck.model.matrix import Cell, aggregate, coarser
from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.probe_table import OUTCOME_CODE, ProbeTable
from netcheck.model.topology import Topology


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCOMPLETE = "incomplete"

    @property
    def exit_code(self) -> int:
        return {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCOMPLETE: 3}[self]


@dataclass(frozen=True, kw_only=True)
class PortIsolation:
    """One database pod's internode port as its namespace's NetworkPolicies read
    (diagnosis/isolation.py): who they let in, which database pods they refuse, which pods
    that are not database pods they admit."""

    context: str
    pod: str  # namespace/name
    port: int
    admitted: tuple[str, ...]  # "everyone", or the policies' peers in their words
    refused_database_pods: tuple[str, ...]  # context/namespace/name
    outsiders_admitted: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ProberFallback:
    """A database pod whose mesh probes did not leave from netcheck's container in it
    (collector/probers.py), and why: they left from its cassandra container's shell (shell),
    or else from its node's agent."""

    endpoint: str
    reason: str
    shell: bool = False


@dataclass(frozen=True, kw_only=True)
class OutsiderProbe:
    """A negative probe (collector/outsiders.py): a pod that is not a database pod tried an
    internode port of a database pod. reached: the packets got to the pod (it connected, or
    the pod itself refused a port nothing listens on); None: not measured."""

    context: str  # the outsider's
    outsider: str  # namespace/name
    dst: str  # the database endpoint
    dst_context: str
    port: int
    outcome: Outcome
    detail: str
    reached: bool | None = None


@dataclass(frozen=True, kw_only=True)
class TlsRow:
    """One database node's internode port as its TLS showed it (diagnosis/tls.py)."""

    node: str
    port: int
    handshake: bool
    protocol: str
    issuer: str
    subject: str
    sans: tuple[str, ...]
    not_after: str  # ISO 8601, "" when no certificate was seen
    days_left: int | None
    chain_verified: bool | None  # None: no CA given (--ca-file), or no certificate seen
    client_auth_required: bool | None
    plaintext_accepted: bool | None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class RunReport:
    topology: Topology
    probes: Sequence[ProbeResult]  # a ProbeTable from the collector; any sequence will do
    findings: tuple[Finding, ...]
    started_at: str
    duration_s: float
    # What could not be checked at all (a context that did not answer, an agent never scheduled):
    # one line each. Any of them makes a run without failures incomplete, never a pass.
    problems: tuple[str, ...] = ()
    # raw second pass (SYN, traceroute, path MTU, latency): the why and where of the matrix
    evidence: tuple[ProbeResult, ...] = ()
    # Cassandra's own view (nodetool, logs) when the run collected it
    cassandra: GossipAnalysis | None = None
    # the static NetworkPolicy audit of the internode ports (`run --context`)
    isolation: tuple[PortIsolation, ...] = ()
    # the negative probes of the internode ports from pods that are not database pods
    outsider_probes: tuple[OutsiderProbe, ...] = ()
    # internode TLS per database node and port (`run --context`)
    tls: tuple[TlsRow, ...] = ()
    # (source cluster, destination cluster) whose overlay translates pod addresses by design
    # (Submariner Globalnet on both): a `nat` outcome between them is not a fault
    nat_by_design: tuple[tuple[str, str], ...] = ()

    @cached_property
    def verdict(self) -> Verdict:
        closed = self.cassandra.expected_closed if self.cassandra else ()
        return verdict_of(
            self.table, self.findings, self.problems, closed, self.topology, self.nat_by_design
        )

    @cached_property
    def table(self) -> ProbeTable:
        """The probes in columns (the outputs of a big run read these)."""
        return ProbeTable.of(self.probes)

    @cached_property
    def _rack_cells(self) -> list[Cell]:
        return aggregate(self.topology, self.table, "rack")

    def cells(self, level: str) -> list[Cell]:
        """The matrix per (source group, destination group, port) at level (all, cluster,
        datacenter or rack): one pass over the probes for every output of the run."""
        return coarser(self._rack_cells, level)

    @cached_property
    def abnormal(self) -> array[int]:
        """The rows of the table that failed and are not normal here (by_design): what the
        outputs count and list as failed. Read from the columns; a row is made only where
        being normal depends on more than its outcome (a port closed by design)."""
        table = self.table
        closed = self.cassandra.expected_closed if self.cassandra else ()
        normal = self.by_design()
        number = {name: i for i, name in enumerate(table.names)}
        closed_at = {(number[name], port) for name, port in closed if name in number}
        cluster = {ep.name: ep.cluster for ep in self.topology.endpoints}
        of = [cluster.get(name) for name in table.names]
        nat = set(self.nat_by_design)
        nat_code = OUTCOME_CODE[Outcome.NAT]
        out: array[int] = array("I")
        for i in table.failed_rows():
            if table.outcome[i] == nat_code:
                src, dst = of[table.src[i]], of[table.dst[i]]
                if src is not None and dst is not None and (src, dst) in nat:
                    continue
            elif (table.dst[i], table.port[i]) in closed_at and normal(table.row(i)):
                continue
            out.append(i)
        return out

    def by_design(self) -> Callable[[ProbeResult], bool]:
        """Whether a failed probe is normal here (what every output counts as not failed)."""
        closed = self.cassandra.expected_closed if self.cassandra else ()
        return by_design(closed, self.topology, self.nat_by_design)


def by_design(
    expected_closed: tuple[tuple[str, int], ...],
    topology: Topology | None,
    nat_by_design: tuple[tuple[str, str], ...] = (),
) -> Callable[[ProbeResult], bool]:
    """expected_closed: (endpoint, port) where refused is normal (7001 on Cassandra 4.0+
    without the legacy SSL port); with the topology, a timeout there that the destination's
    own RST contradicts is the same refusal (ProbeResult.closed_at), as the diagnosis that
    left it out took it. nat_by_design: cluster pairs whose overlay translates addresses."""
    closed = set(expected_closed)
    eps = {e.name: e for e in topology.endpoints} if topology else {}
    nat = set(nat_by_design)

    def normal(p: ProbeResult) -> bool:
        if p.outcome is Outcome.NAT:
            src, dst = eps.get(p.src), eps.get(p.dst)
            return src is not None and dst is not None and (src.cluster, dst.cluster) in nat
        if (p.dst, p.port) not in closed:
            return False
        dst = eps.get(p.dst)
        return p.outcome is Outcome.REFUSED or p.closed_at(dst.address if dst else "")

    return normal


def verdict_of(
    probes: Sequence[ProbeResult],
    findings: tuple[Finding, ...],
    problems: tuple[str, ...] = (),
    expected_closed: tuple[tuple[str, int], ...] = (),
    topology: Topology | None = None,
    nat_by_design: tuple[tuple[str, str], ...] = (),
) -> Verdict:
    """Fail on a failed probe that is not normal (by_design) or an error finding; else
    incomplete on a problem or an unmeasured probe; else pass."""
    normal = by_design(expected_closed, topology, nat_by_design)
    table = ProbeTable.of(probes)
    # only what did not pass is read, and the first failure that is not normal decides
    if any(p.outcome.failed and not normal(p) for p in table.not_open()) or any(
        f.severity is Severity.ERROR for f in findings
    ):
        return Verdict.FAIL
    if problems or not table or table.counts().get(Outcome.NOT_MEASURED):
        return Verdict.INCOMPLETE
    return Verdict.PASS
