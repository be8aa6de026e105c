"""Pairs of content hashes a person said are "not duplicates" (migration 9, ``dismissed_pairs``).

A dismissal is between two different pictures, so it is kept per pair of content hashes in
canonical order (the smaller hash first): every copy of either picture is covered, wherever
it lives, and a re-index or a move changes nothing. ``dedup`` (dedup/finder.py) never joins
the two into one group; copies of the same content stay exact duplicates of each other.

Writers here run inside the caller's transaction, under the writer lock (Library takes both).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mcphotos.store.database import Store

Pair = tuple[str, str]


@dataclass(frozen=True)
class DismissedPair:
    hash_a: str  # the smaller hash
    hash_b: str
    dismissed_at: float  # seconds since the epoch


@dataclass
class DismissReport:
    """What a dismissal changed: ``pairs`` were newly dismissed (what an undo takes back)."""

    pairs: list[Pair]
    already: int = 0  # pairs that were dismissed before


def canonical(a: str, b: str) -> Pair:
    """The pair in the order the table keeps it. ValueError for a hash paired with itself."""
    if a == b:
        raise ValueError(f"a dismissal is between two different contents, not {a} and itself")
    return (a, b) if a < b else (b, a)


def pairs_of(hashes: Iterable[str]) -> list[Pair]:
    """Every pair of the distinct hashes (a group's members): copies of one content make none."""
    distinct = sorted(set(hashes))
    return list(itertools.combinations(distinct, 2))


def add_pairs(store: Store, pairs: Iterable[Pair], now: float | None = None) -> DismissReport:
    """Remember ``pairs`` (any order). Call inside a transaction."""
    wanted = list(dict.fromkeys(canonical(a, b) for a, b in pairs))
    at = time.time() if now is None else now
    report = DismissReport([])
    for a, b in wanted:
        cur = store.conn.execute("INSERT INTO dismissed_pairs(hash_a, hash_b, dismissed_at) VALUES(?, ?, ?) "
                                 "ON CONFLICT(hash_a, hash_b) DO NOTHING", (a, b, at))
        if cur.rowcount:
            report.pairs.append((a, b))
        else:
            report.already += 1
    return report


def insert_rows(store: Store, rows: Iterable[tuple[str, str, float]]) -> int:
    """Insert stored rows as they are (``merge``), keeping any already here. Call inside a transaction."""
    count = 0
    for a, b, at in rows:
        if a == b:
            continue
        a, b = canonical(a, b)
        cur = store.conn.execute("INSERT INTO dismissed_pairs(hash_a, hash_b, dismissed_at) VALUES(?, ?, ?) "
                                 "ON CONFLICT(hash_a, hash_b) DO NOTHING", (a, b, at))
        count += cur.rowcount
    return count


def remove_pairs(store: Store, pairs: Iterable[Pair]) -> int:
    """Forget ``pairs`` (any order); the number that were dismissed. Call inside a transaction."""
    removed = 0
    for a, b in dict.fromkeys(canonical(a, b) for a, b in pairs):
        removed += store.conn.execute("DELETE FROM dismissed_pairs WHERE hash_a = ? AND hash_b = ?",
                                      (a, b)).rowcount
    return removed


def list_pairs(store: Store) -> list[DismissedPair]:
    """Every dismissed pair, oldest first."""
    rows = store.conn.execute("SELECT hash_a, hash_b, dismissed_at FROM dismissed_pairs "
                              "ORDER BY dismissed_at, hash_a, hash_b").fetchall()
    return [DismissedPair(a, b, float(at)) for a, b, at in rows]


def pairs_among(store: Store, hashes: Sequence[str]) -> list[Pair]:
    """The dismissed pairs whose two hashes are both in ``hashes``.

    The table holds what a person decided by hand (hundreds of rows, not millions), so it is
    read whole and filtered here rather than joined against a large IN list.
    """
    if not hashes:
        return []
    present = set(hashes)
    return [(a, b) for a, b in store.conn.execute("SELECT hash_a, hash_b FROM dismissed_pairs")
            if a in present and b in present]
