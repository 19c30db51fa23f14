"""What a workflow tells its caller along the way: lines for the user, and progress."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


class BadInput(Exception):
    """An input the user gave is wrong: the message names it and the fix (the CLI exits 2)."""


class ProgressBars(Protocol):
    """Opens a bar of `total` steps; the callable it yields is told how many are done."""

    def __call__(
        self, label: str, total: int | None
    ) -> contextlib.AbstractContextManager[Callable[[int, int | None], None]]: ...


@contextlib.contextmanager
def _no_bar(label: str, total: int | None) -> Iterator[Callable[[int, int | None], None]]:
    yield lambda done, total: None


def _quiet(line: str) -> None:
    return None


@dataclass(frozen=True)
class Feedback:
    """say: one line for the user (a warning or a problem, already worded: "warning: ...");
    bars: progress bars (none by default)."""

    say: Callable[[str], None] = _quiet
    bars: ProgressBars = field(default=_no_bar)
