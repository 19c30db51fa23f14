"""The outcomes of a run as the diagnosis reads them: one byte per (source, destination) and
port, endpoints in the order of their groups.

Endpoints are sorted by (cluster, datacenter, rack, name), so every group at every level
(LEVELS) is one run of consecutive indices: a row of a rectangle is a slice, and "does any
probe in it not fail this way" is one search in C, not a lookup per pair. Counting an
endpoint's probes in and out is a translate and a count over its row and column. A million
probes cost a few megabytes here instead of a dictionary of a million tuples.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import add, mul

from netcheck.model.outcome import Outcome
from netcheck.model.probe import ProbeResult
from netcheck.model.probe_table import OUTCOME_CODE, OUTCOMES, ProbeTable
from netcheck.model.topology import LEVELS, Endpoint

Triple = tuple[str, str, int]  # (src endpoint, dst endpoint, port)

CODE = OUTCOME_CODE  # the table's codes (model/probe_table.py)
ABSENT = 255  # not planned, or not in this view


def table(test: Callable[[Outcome], bool]) -> bytes:
    """A bytes.translate table: 1 where the outcome passes the test, else 0 (ABSENT: 0)."""
    return bytes(1 if i < len(OUTCOMES) and test(OUTCOMES[i]) else 0 for i in range(256))


def codes_pattern(test: Callable[[Outcome], bool]) -> re.Pattern[bytes]:
    """A regular expression matching one cell whose outcome passes the test."""
    chosen = b"".join(re.escape(bytes([i])) for i, o in enumerate(OUTCOMES) if test(o))
    return re.compile(b"[" + chosen + b"]" if chosen else b"(?!)")


_MEASURED = table(lambda o: o is not Outcome.NOT_MEASURED)
_FAILED = table(lambda o: o.failed)
_PRESENT = bytes(0 if i == ABSENT else 1 for i in range(256))
_NOT_OPEN = codes_pattern(lambda o: o is not Outcome.OPEN)
_CONNECTED = codes_pattern(lambda o: o.connected)


@dataclass(frozen=True, kw_only=True)
class Counts:
    """An endpoint's probes in one direction: how many, how many measured (not
    not_measured), how many of those failed."""

    present: int  # probed, measured or not
    measured: int
    failed: int


class Grid(Mapping[Triple, Outcome]):
    """A read-only mapping (source, destination, port) -> outcome over per-port byte grids.

    Where one triple was probed twice (another kind on the same port), the last result
    stands, as in a dictionary built from the results.
    """

    def __init__(self, names: Iterable[str], cells: dict[int, bytearray]) -> None:
        self.names: tuple[str, ...] = tuple(names)
        self.index: dict[str, int] = {n: i for i, n in enumerate(self.names)}
        self.n = len(self.names)
        self.cells = cells

    @classmethod
    def of(cls, endpoints: Iterable[Endpoint], results: Sequence[ProbeResult]) -> Grid:
        ordered = sorted(endpoints, key=lambda e: (e.cluster, e.datacenter, e.rack, e.name))
        grid = cls((e.name for e in ordered), {})
        n = grid.n
        table = ProbeTable.of(results)
        at = [grid.index.get(name, -1) for name in table.names]
        if -1 in at:  # names outside the topology: nothing to diagnose them against
            table = ProbeTable.of([r for r in table if r.src in grid.index and r.dst in grid.index])
            at = [grid.index[name] for name in table.names]
        # every port's grid one after the other in one bytearray, each probe's outcome set at
        # slot * n * n + source * n + destination: iterators and setitem all run in C
        ports = sorted(set(table.port))
        slot = {p: k * n * n for k, p in enumerate(ports)}
        flat = bytearray(b"\xff") * (len(ports) * n * n)
        cells = map(
            add,
            map(
                add,
                map(slot.__getitem__, table.port),
                map(mul, map(at.__getitem__, table.src), repeat(n)),
            ),
            map(at.__getitem__, table.dst),
        )
        any(map(flat.__setitem__, cells, table.outcome))  # None each: runs to the end
        for p, start in slot.items():
            grid.cells[p] = flat[start : start + n * n]
        return grid

    # the mapping

    def __getitem__(self, t: Triple) -> Outcome:
        s, d, port = t
        cells = self.cells.get(port)
        si, di = self.index.get(s), self.index.get(d)
        if cells is None or si is None or di is None:
            raise KeyError(t)
        code = cells[si * self.n + di]
        if code == ABSENT:
            raise KeyError(t)
        return OUTCOMES[code]

    def get(self, t: Triple, default: Outcome | None = None) -> Outcome | None:  # type: ignore[override]
        try:
            return self[t]
        except KeyError:
            return default

    def __contains__(self, t: object) -> bool:
        if not isinstance(t, tuple) or len(t) != 3:
            return False
        return self.get(t) is not None

    def __iter__(self) -> Iterator[Triple]:
        for port, cells in sorted(self.cells.items()):
            for m in re.finditer(b"[^\xff]", cells):
                si, di = divmod(m.start(), self.n)
                yield self.names[si], self.names[di], port

    def __len__(self) -> int:
        return sum(len(c) - c.count(ABSENT) for c in self.cells.values())

    # what the diagnosis asks

    def not_open(self) -> Iterator[tuple[Triple, Outcome]]:
        """Every triple that did not pass: failed or not measured."""
        names, n = self.names, self.n
        for port, cells in sorted(self.cells.items()):
            for m in _NOT_OPEN.finditer(cells):
                si, di = divmod(m.start(), n)
                yield (names[si], names[di], port), OUTCOMES[cells[m.start()]]

    def any_connected(self) -> bool:
        return any(_CONNECTED.search(c) for c in self.cells.values())

    def ports_of(self, s: str, d: str) -> list[Outcome]:
        """The pair's outcomes on every port probed."""
        at = self.index[s] * self.n + self.index[d]
        return [OUTCOMES[c[at]] for _, c in sorted(self.cells.items()) if c[at] != ABSENT]

    def outgoing(self, name: str) -> Counts:
        i, n = self.index[name], self.n
        return self._counts(c[i * n : (i + 1) * n] for c in self.cells.values())

    def incoming(self, name: str) -> Counts:
        i, n = self.index[name], self.n
        return self._counts(c[i::n] for c in self.cells.values())

    @staticmethod
    def _counts(lines: Iterable[bytearray]) -> Counts:
        present = measured = failed = 0
        for line in lines:
            present += len(line) - line.count(ABSENT)
            measured += line.translate(_MEASURED).count(1)
            failed += line.translate(_FAILED).count(1)
        return Counts(present=present, measured=measured, failed=failed)

    def sources_into(self, name: str) -> int:
        """How many endpoints probed this one, on any port."""
        i, n = self.index[name], self.n
        seen = 0
        for c in self.cells.values():
            seen |= int.from_bytes(c[i::n].translate(_PRESENT), "big")
        return seen.to_bytes(n, "big").count(1) if n else 0

    def outcomes(self, name: str, *, into: bool) -> set[Outcome]:
        """The outcomes of every probe out of (into=False) or into the endpoint."""
        i, n = self.index[name], self.n
        seen: set[int] = set()
        for c in self.cells.values():
            seen.update(c[i::n] if into else c[i * n : (i + 1) * n])
        seen.discard(ABSENT)
        return {OUTCOMES[x] for x in seen}

    def without_sources(self, names: Iterable[str]) -> Grid:
        """This view without the probes of these sources (agents that could not be used)."""
        gone = [self.index[x] for x in names if x in self.index]
        if not gone:
            return self
        n, blank = self.n, bytes([ABSENT]) * self.n
        cells = {p: bytearray(c) for p, c in self.cells.items()}
        for c in cells.values():
            for i in gone:
                c[i * n : (i + 1) * n] = blank
        return Grid(self.names, cells)

    def with_outcomes(self, changed: Mapping[Triple, Outcome]) -> Grid:
        """A copy with some triples' outcomes replaced (they must be in the grid)."""
        n = self.n
        cells = {p: bytearray(c) for p, c in self.cells.items()}
        for (s, d, port), o in changed.items():
            cells[port][self.index[s] * n + self.index[d]] = CODE[o]
        return Grid(self.names, cells)

    def groups(self, endpoints: Mapping[str, Endpoint]) -> Groups:
        return Groups.of(self, endpoints)


@dataclass(frozen=True, kw_only=True)
class Groups:
    """Every endpoint's group at every level as a run of indices [lo, hi) in the grid."""

    runs: tuple[tuple[tuple[int, int], ...], ...]  # [level][endpoint index] -> (lo, hi)
    scopes: tuple[tuple[tuple[str, ...], ...], ...]  # [level][endpoint index] -> group key

    @classmethod
    def of(cls, grid: Grid, endpoints: Mapping[str, Endpoint]) -> Groups:
        runs, scopes = [], []
        for level in LEVELS:
            keys = tuple(endpoints[name].scope(level) for name in grid.names)
            lo_of: dict[tuple[str, ...], int] = {}
            hi_of: dict[tuple[str, ...], int] = {}
            for i, k in enumerate(keys):
                lo_of.setdefault(k, i)
                hi_of[k] = i + 1
            runs.append(tuple((lo_of[k], hi_of[k]) for k in keys))
            scopes.append(keys)
        return cls(runs=tuple(runs), scopes=tuple(scopes))
