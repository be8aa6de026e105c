"""The roots table: the directories index walked, with the device each was on.

A root is recorded each time it is walked online (its ``st_dev``, its indexed files, when), and
marked offline when a run finds its drive gone. indexing/roots.py decides what "gone" means;
this module only reads and writes the rows.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mcphotos.store.database import Store, decode_path, encode_path, prefix_range


@dataclass(frozen=True)
class RootRecord:
    path: str
    kind: str  # 'root' (named by the user) or 'mount' (a mount point found inside a root)
    st_dev: int | None
    files: int  # indexed files under it when last seen online
    state: str  # 'online' or 'offline', as the last run found it
    last_seen: float | None  # when last walked online


def recorded_roots(store: Store) -> dict[str, RootRecord]:
    rows = store.conn.execute("SELECT path, kind, st_dev, files, state, last_seen FROM roots").fetchall()
    return {decode_path(r[0]): RootRecord(decode_path(r[0]), *r[1:]) for r in rows}


def put_roots(store: Store, records: Iterable[RootRecord]) -> None:
    """Insert or replace root rows. Call inside a transaction."""
    now = time.time()
    store.conn.executemany(
        "INSERT INTO roots(path, kind, st_dev, files, state, last_seen, checked_at) VALUES(?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(path) DO UPDATE SET kind = excluded.kind, st_dev = excluded.st_dev, files = excluded.files, "
        "state = excluded.state, last_seen = excluded.last_seen, checked_at = excluded.checked_at",
        [(encode_path(r.path), r.kind, r.st_dev, r.files, r.state, r.last_seen, now) for r in records],
    )


def delete_roots(store: Store, paths: Iterable[str]) -> None:
    """Call inside a transaction."""
    store.conn.executemany("DELETE FROM roots WHERE path = ?", [(encode_path(p),) for p in paths])


def count_files(store: Store, path: str, ok_only: bool = False) -> int:
    """File rows at ``path`` or beneath it, whether or not it exists on disk now."""
    lo, hi = prefix_range(path)
    status = " AND status = 'ok'" if ok_only else ""
    row = store.conn.execute(
        f"SELECT COUNT(*) FROM files WHERE ((path >= ? AND path < ?) OR path = ?){status}",
        (lo, hi, encode_path(os.path.abspath(path))),
    ).fetchone()
    return int(row[0])


def paths_under(store: Store, path: str) -> list[str]:
    """Every file row beneath directory ``path`` (for forgetting an offline root)."""
    lo, hi = prefix_range(path)
    return [decode_path(r[0]) for r in
            store.conn.execute("SELECT path FROM files WHERE path >= ? AND path < ?", (lo, hi))]
