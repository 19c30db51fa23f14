"""Every probe of a run in columns: what a report holds instead of one object per probe.

A 1,000-pod mesh has four million probes. As frozen dataclasses they take about two
gigabytes and seconds to make and to walk; as columns (endpoint indexes, port, kind and
outcome codes, latency, interned texts) about 60 MB. The table is a Sequence[ProbeResult]:
indexing or iterating it makes each row as a ProbeResult when asked (code that reads a few
probes, or every probe of a small run, need not know), and the outputs that read every probe
of a big run use its columns: `not_open()` finds the probes that did not pass in C (a regular
expression over the outcome codes), `tally()` counts per group pair in C.
"""

from __future__ import annotations

import math
import re
from abc import abstractmethod
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TypeVar, overload

from netcheck.model.outcome import Outcome
from netcheck.model.probe import NO_EVIDENCE, Evidence, ProbeKind, ProbeResult

OUTCOMES: tuple[Outcome, ...] = tuple(Outcome)
OUTCOME_CODE: dict[Outcome, int] = {o: i for i, o in enumerate(OUTCOMES)}
KINDS: tuple[ProbeKind, ...] = tuple(ProbeKind)
KIND_CODE: dict[ProbeKind, int] = {k: i for i, k in enumerate(KINDS)}
T = TypeVar("T")
_NOT_OPEN = re.compile(
    b"[" + b"".join(re.escape(bytes([OUTCOME_CODE[o]])) for o in OUTCOMES if not o.passed) + b"]"
)

_FAILED = re.compile(
    b"[" + b"".join(re.escape(bytes([OUTCOME_CODE[o]])) for o in OUTCOMES if o.failed) + b"]"
)


class Rows(Sequence[T]):
    """A sequence whose items are made from columns when asked: row(i) makes one."""

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def row(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[T]: ...

    def __getitem__(self, i: int | slice) -> T | Sequence[T]:
        if isinstance(i, slice):
            return [self.row(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self.row(i)

    def __iter__(self) -> Iterator[T]:
        return (self.row(i) for i in range(len(self)))


class ProbeTable(Rows[ProbeResult]):
    """Read-only once built (ProbeTableBuilder): the columns are not to be changed."""

    def __init__(
        self,
        *,
        names: tuple[str, ...],
        src: array[int],
        dst: array[int],
        port: array[int],
        kind: bytearray,
        outcome: bytearray,
        latency: array[float],
        detail: array[int],
        local: array[int],
        observed: array[int],
        texts: tuple[str, ...],
        evidence: dict[int, Evidence],
        observing: tuple[int, ...],
    ) -> None:
        self.names = names  # endpoint names; src and dst index them
        self.src, self.dst, self.port = src, dst, port
        self.kind, self.outcome, self.latency = kind, outcome, latency  # latency: NaN is None
        self.detail, self.local, self.observed = detail, local, observed  # indexes of texts
        self.texts = texts  # texts[0] == ""
        self.evidence = evidence  # rows with evidence only
        self.observing = observing  # rows whose serving agent said which address it saw

    def __len__(self) -> int:
        return len(self.outcome)

    def row(self, i: int) -> ProbeResult:
        latency = self.latency[i]
        texts = self.texts
        # made without the dataclass's __init__, which sets ten fields one frozen setattr at
        # a time (several times the cost of the rest): the columns hold checked values
        r = object.__new__(ProbeResult)
        object.__setattr__(
            r,
            "__dict__",
            {
                "src": self.names[self.src[i]],
                "dst": self.names[self.dst[i]],
                "port": self.port[i],
                "kind": KINDS[self.kind[i]],
                "outcome": OUTCOMES[self.outcome[i]],
                "latency_ms": None if latency != latency else latency,  # NaN: None
                "detail": texts[self.detail[i]],
                "evidence": self.evidence.get(i, NO_EVIDENCE),
                "local_address": texts[self.local[i]],
                "observed_source": texts[self.observed[i]],
            },
        )
        return r

    def not_open(self) -> Iterator[ProbeResult]:
        """The probes that did not pass (failed or not measured), in order."""
        return (self.row(m.start()) for m in _NOT_OPEN.finditer(self.outcome))

    def not_open_rows(self) -> Iterator[int]:
        """The row numbers of not_open()."""
        return (m.start() for m in _NOT_OPEN.finditer(self.outcome))

    def failed_rows(self) -> Iterator[int]:
        """The row numbers of the probes that failed (measured, did not pass)."""
        return (m.start() for m in _FAILED.finditer(self.outcome))

    def rows_where(self, *outcomes: Outcome) -> Iterator[int]:
        """The row numbers of the probes that ended in one of these outcomes."""
        codes = b"".join(re.escape(bytes([OUTCOME_CODE[o]])) for o in outcomes)
        return (m.start() for m in re.finditer(b"[" + codes + b"]", self.outcome))

    def all_open(self) -> bool:
        return _NOT_OPEN.search(self.outcome) is None

    def counts(self) -> dict[Outcome, int]:
        return {OUTCOMES[c]: n for c, n in Counter(self.outcome).items()}

    def tally(self, group: Sequence[int]) -> Counter[tuple[int, int, int, int]]:
        """Probes per (source group, destination group, port, outcome code), where group
        maps an endpoint index to its group's number."""
        g = group.__getitem__
        columns = (map(g, self.src), map(g, self.dst), self.port, self.outcome)
        return Counter(zip(*columns, strict=True))

    def with_rows(self, changed: Mapping[int, ProbeResult]) -> ProbeTable:
        """A copy with these rows replaced (a probe asked again, a failure refined by its
        raw SYN): the columns are copied whole, only the changed rows are written."""
        fill = ProbeTableFill(0)
        fill.adopt(self)
        for i, r in changed.items():
            fill.put_fields(
                i, r.src, r.dst, r.port, r.kind, r.outcome, r.latency_ms, detail=r.detail,
                evidence=r.evidence, local_address=r.local_address,
                observed_source=r.observed_source,
            )  # fmt: skip
        return fill.table()

    @staticmethod
    def of(results: Iterable[ProbeResult]) -> ProbeTable:
        if isinstance(results, ProbeTable):
            return results
        builder = ProbeTableBuilder()
        for r in results:
            builder.add(r)
        return builder.table()


class _Columns:
    """A table being made: its columns, and the endpoint names and texts they number (each
    kept once). Subclasses append rows or set them."""

    def __init__(self, rows: int) -> None:
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._texts: list[str] = [""]
        self._text_index: dict[str, int] = {"": 0}
        self._src, self._dst = array("I", [0]) * rows, array("I", [0]) * rows
        self._port = array("H", [0]) * rows
        self._kind = bytearray(rows)
        self._outcome = bytearray([OUTCOME_CODE[Outcome.NOT_MEASURED]]) * rows
        self._latency = array("d", [math.nan]) * rows
        self._detail, self._local = array("I", [0]) * rows, array("I", [0]) * rows
        self._observed = array("I", [0]) * rows
        self._evidence: dict[int, Evidence] = {}
        self._observing: set[int] = set()

    def _table(self) -> ProbeTable:
        return ProbeTable(
            names=tuple(self._names),
            src=self._src,
            dst=self._dst,
            port=self._port,
            kind=self._kind,
            outcome=self._outcome,
            latency=self._latency,
            detail=self._detail,
            local=self._local,
            observed=self._observed,
            texts=tuple(self._texts),
            evidence=self._evidence,
            observing=tuple(sorted(self._observing)),
        )

    def endpoint(self, name: str) -> int:
        i = self._index.get(name)
        if i is None:
            i = self._index[name] = len(self._names)
            self._names.append(name)
        return i

    def _text(self, text: str) -> int:
        i = self._text_index.get(text)
        if i is None:
            i = self._text_index[text] = len(self._texts)
            self._texts.append(text)
        return i


class ProbeTableBuilder(_Columns):
    """Rows appended one by one (the bench's agents, as they answer); table() ends it."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        super().__init__(0)
        for n in names:
            self.endpoint(n)

    def add(self, r: ProbeResult) -> None:
        self.add_row(
            self.endpoint(r.src),
            self.endpoint(r.dst),
            r.port,
            r.kind,
            r.outcome,
            r.latency_ms,
            detail=r.detail,
            evidence=r.evidence,
            local_address=r.local_address,
            observed_source=r.observed_source,
        )

    def add_row(
        self,
        src: int,
        dst: int,
        port: int,
        kind: ProbeKind,
        outcome: Outcome,
        latency_ms: float | None,
        *,
        detail: str = "",
        evidence: Evidence = NO_EVIDENCE,
        local_address: str = "",
        observed_source: str = "",
    ) -> None:
        """src, dst: the endpoints' indexes (endpoint())."""
        row = len(self._outcome)
        self._src.append(src)
        self._dst.append(dst)
        self._port.append(port)
        self._kind.append(KIND_CODE[kind])
        self._outcome.append(OUTCOME_CODE[outcome])
        self._latency.append(math.nan if latency_ms is None else latency_ms)
        self._detail.append(self._text(detail))
        self._local.append(self._text(local_address))
        self._observed.append(self._text(observed_source))
        if evidence is not NO_EVIDENCE and evidence != NO_EVIDENCE:
            self._evidence[row] = evidence
        if observed_source:
            self._observing.add(row)

    def table(self) -> ProbeTable:
        return self._table()


class ProbeTableFill(_Columns):
    """A table of a known number of rows, filled in any order (the collector, as each agent
    answers its part of the plan)."""

    def __init__(self, rows: int) -> None:
        super().__init__(rows)
        self._filled = bytearray(rows)

    def put_fields(
        self,
        row: int,
        src: str,
        dst: str,
        port: int,
        kind: ProbeKind,
        outcome: Outcome,
        latency_ms: float | None,
        *,
        detail: str = "",
        evidence: Evidence = NO_EVIDENCE,
        local_address: str = "",
        observed_source: str = "",
    ) -> None:
        self._src[row] = self.endpoint(src)
        self._dst[row] = self.endpoint(dst)
        self._port[row] = port
        self._kind[row] = KIND_CODE[kind]
        self._outcome[row] = OUTCOME_CODE[outcome]
        self._latency[row] = math.nan if latency_ms is None else latency_ms
        self._detail[row] = self._text(detail)
        self._local[row] = self._text(local_address)
        self._observed[row] = self._text(observed_source)
        if evidence is not NO_EVIDENCE and evidence != NO_EVIDENCE:
            self._evidence[row] = evidence
        else:
            self._evidence.pop(row, None)
        if observed_source:
            self._observing.add(row)
        else:
            self._observing.discard(row)
        self._filled[row] = 1

    def adopt(self, table: ProbeTable) -> None:
        """Start from a copy of a whole table (every row filled)."""
        self._names[:] = table.names
        self._index = {name: i for i, name in enumerate(table.names)}
        self._texts[:] = table.texts
        self._text_index = {text: i for i, text in enumerate(table.texts)}
        self._src, self._dst, self._port = (
            array("I", table.src),
            array("I", table.dst),
            array("H", table.port),
        )
        self._kind, self._outcome = bytearray(table.kind), bytearray(table.outcome)
        self._latency = array("d", table.latency)
        self._detail, self._local = array("I", table.detail), array("I", table.local)
        self._observed = array("I", table.observed)
        self._evidence = dict(table.evidence)
        self._observing = set(table.observing)
        self._filled = bytearray(b"\x01") * len(table)

    def empty(self) -> Iterator[int]:
        """The rows not filled yet."""
        return (m.start() for m in re.finditer(b"\x00", self._filled))

    def table(self) -> ProbeTable:
        """The table; every row must be filled (empty() names those that are not)."""
        if 0 in self._filled:
            raise ValueError(f"row {self._filled.index(0)} was never filled")
        return self._table()
