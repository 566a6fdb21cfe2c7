"""Progress of long work, reported by domain code that never knows how it is shown.

A command hands a service something with `start(total, phase)` and `advance(steps)` (a
bar from `mdm.ui.progress`, which appears on a terminal only after the work has taken a
second); the service says how much there is and how far it has got, phase by phase.
Reporting in steps of hundreds of rows keeps the cost out of the loops that matter.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol, TypeVar

T = TypeVar("T")
EVERY = 500  # items between two reports


class Progress(Protocol):
    """Where long work reports how far it has got (a progress bar, or nothing)."""

    def start(self, total: int, phase: str = "") -> None: ...

    def advance(self, steps: int = 1) -> None: ...


def counted(items: Iterable[T], progress: Progress | None) -> Iterator[T]:
    """Yield the items, advancing `progress` by one per item (reported in batches)."""
    if progress is None:
        yield from items
        return
    done = 0
    for item in items:
        yield item
        done += 1
        if done == EVERY:
            progress.advance(done)
            done = 0
    if done:
        progress.advance(done)
