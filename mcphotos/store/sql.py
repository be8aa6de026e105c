"""SQL helpers shared by every module that talks to the store.

SQLite caps the number of ``?`` parameters in one statement (999 in older builds), so a
lookup by a long list of ids or hashes runs in chunks: :func:`chunks` yields each chunk with
its ``?,?,…`` placeholder list, ready for an ``IN (…)`` clause.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")

CHUNK = 500  # parameters per IN (...) list, well under SQLite's historical 999 limit


def placeholders(n: int) -> str:
    """``?,?,…`` with ``n`` marks."""
    return ",".join("?" * n)


def chunks(values: Iterable[T], size: int = CHUNK) -> Iterator[tuple[list[T], str]]:
    """(chunk, placeholders) pairs covering ``values`` in order, ``size`` at a time."""
    items: Sequence[T] = values if isinstance(values, list | tuple) else list(values)
    for i in range(0, len(items), size):
        part = list(items[i:i + size])
        yield part, placeholders(len(part))
