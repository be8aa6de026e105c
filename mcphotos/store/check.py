"""Store self-check and repair.

``check_store`` verifies, without changing anything:
- SQLite's own integrity check;
- every vector: right size for the store's dimension, finite, non-zero;
- file rows that point at an image that is missing (they would silently never be found);
- the ANN cache against SQLite (manifest, size, dimension, count, epoch).

``repair`` rebuilds what can be rebuilt: broken vectors are deleted and the files showing them
are marked for re-indexing (their next ``index`` re-hashes and re-embeds them), and the ANN
index is rebuilt from SQLite. It never touches a user's photo.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import numpy as np

from mcphotos.store.ann import AnnIndex
from mcphotos.store.database import Store, connect
from mcphotos.store.sql import chunks


@dataclass
class CheckReport:
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)
    images: int = 0
    files: int = 0
    broken_vectors: list[str] = field(default_factory=list)  # content hashes
    dangling_files: int = 0

    def problem(self, text: str) -> None:
        self.ok = False
        self.problems.append(text)


def check_store(store: Store) -> CheckReport:
    report = CheckReport()
    try:
        rows = store.conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as e:
        report.problem(f"SQLite cannot read the database: {e}")
        return report
    messages = [r[0] for r in rows if r[0] != "ok"]
    for m in messages[:10]:
        report.problem(f"SQLite integrity: {m}")
    dim = store.dim()
    report.images = store.image_count()
    report.files = store.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    for h, blob in store.conn.execute("SELECT hash, vector FROM images"):
        v = np.frombuffer(blob, dtype=np.float32) if len(blob) % 4 == 0 else None
        if v is None or (dim is not None and v.shape[0] != dim) or not np.all(np.isfinite(v)) or not np.any(v):
            report.broken_vectors.append(h)
    if report.broken_vectors:
        report.problem(f"{len(report.broken_vectors)} stored vectors are broken (wrong size, NaN/inf or zero)")
    report.dangling_files = store.conn.execute(
        "SELECT COUNT(*) FROM files WHERE status = 'ok' AND hash NOT IN (SELECT hash FROM images)"
    ).fetchone()[0]
    if report.dangling_files:
        report.problem(f"{report.dangling_files} indexed files point at no stored vector")
    if dim is not None and report.images:
        problem = AnnIndex(store).problem()
        if problem is not None:
            report.problem(f"search index: {problem}")
        else:
            ann = AnnIndex(store)
            if not ann.load():
                report.problem("search index: the index file cannot be loaded")
    return report


def repair(store: Store) -> CheckReport:
    """Fix what :func:`check_store` finds. The caller holds the writer lock."""
    report = check_store(store)
    if any(p.startswith("SQLite") for p in report.problems):
        _rebuild_database(store, report)
    broken = report.broken_vectors
    if broken or report.dangling_files:
        with store.transaction():
            for part, marks in chunks(broken):
                store.conn.execute(f"DELETE FROM images WHERE hash IN ({marks})", part)
            # size -1 never matches a real file, so the next index re-hashes and re-embeds it
            # (even without --retry-failed); until then it is not offered as a search result.
            store.conn.execute("UPDATE files SET size = -1, status = 'failed', "
                               "error = 'vector dropped by check --repair; re-embedded by the next index' "
                               "WHERE status = 'ok' AND hash NOT IN (SELECT hash FROM images)")
            store.bump_epoch()
        report.repaired.append(f"removed {len(broken)} broken vectors; their files will be re-embedded "
                               f"by the next `mcphotos index`")
    if store.dim() is not None:
        ann = AnnIndex(store)
        if ann.problem() is not None or not ann.load() or broken:
            ann.rebuild()
            if ann.index is not None:
                ann.save()
                report.repaired.append(f"rebuilt the search index from {store.image_count()} vectors")
    after = check_store(store)
    report.ok, report.problems = after.ok, after.problems
    return report


def _rebuild_database(store: Store, report: CheckReport) -> None:
    """Copy every readable row into a fresh database with VACUUM INTO, then swap it in."""
    import os

    tmp = store.db_path.with_name("store.rebuilt.db")
    if tmp.exists():
        tmp.unlink()
    try:
        store.conn.execute(f"VACUUM INTO '{tmp}'")
    except sqlite3.DatabaseError as e:
        report.problems.append(f"could not rebuild the database: {e}")
        return
    store.conn.close()
    for suffix in ("-wal", "-shm"):
        side = store.db_path.with_name(store.db_path.name + suffix)
        if side.exists():
            side.unlink()
    os.replace(tmp, store.db_path)
    store.conn = connect(store.db_path)
    report.repaired.append("rebuilt the database file from its readable contents")
