"""The SQLite store: the source of truth for files, vectors and caches of one model.

Layout of a store directory (one per model, under the mcphotos home)::

    store.db        SQLite (WAL): files, images (one vector per content hash), caches
    ann.bin/.json   hnswlib index and its manifest: a disposable cache (see ann.py)
    writer.lock     held by the one process allowed to write (index, repair, ...)

Paths are stored as bytes (``os.fsencode``), so names that are not valid UTF-8 survive.
Readers never take the writer lock: WAL gives them a consistent snapshot of committed data.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcphotos.errors import StoreError, StoreVersionError
from mcphotos.store.lock import WriterLock
from mcphotos.store.migrations import MIGRATIONS
from mcphotos.store.sql import chunks

DB_NAME = "store.db"
LOCK_NAME = "writer.lock"

SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(frozen=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    hash: str | None
    status: str
    error: str | None = None


@dataclass(frozen=True)
class ImageRecord:
    hash: str
    vector: np.ndarray
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    phash: int | None = None
    colors: bytes | None = None
    detail: float | None = None


@dataclass(frozen=True)
class StoreStats:
    files: int
    ok_files: int
    failed_files: int
    images: int
    orphan_images: int
    cached_texts: int
    db_bytes: int
    last_indexed: float | None


def encode_path(path: str) -> bytes:
    return os.fsencode(path)


def decode_path(raw: bytes | str) -> str:
    return os.fsdecode(raw) if isinstance(raw, bytes) else raw


def vector_to_blob(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(v, dtype=np.float32).tobytes()


def blob_to_vector(b: bytes) -> np.ndarray:
    return np.frombuffer(b, dtype=np.float32)


def prefix_range(directory: str) -> tuple[bytes, bytes]:
    """Byte range [lo, hi) of every path under ``directory`` (an index-friendly prefix query)."""
    prefix = encode_path(os.path.join(os.path.abspath(directory), ""))
    return prefix, prefix[:-1] + bytes([prefix[-1] + 1])


def connect(db_path: Path | str, readonly: bool = False) -> sqlite3.Connection:
    """The one way to open a store's database: every connection gets the same settings.

    ``foreign_keys=ON`` is what makes the tags table's ``ON DELETE CASCADE`` work, WAL lets
    readers run beside the writer, and ``isolation_level=None`` because every write issues
    ``BEGIN IMMEDIATE`` itself. ``readonly`` opens another store to read from (``merge``
    SOURCE) without migrating it or writing a byte to it.
    """
    if readonly:
        uri = Path(db_path).absolute().as_uri() + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only=ON")
        return conn
    conn = sqlite3.connect(db_path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


class Store:
    """One model's store. Cheap to open; safe to use from several processes."""

    def __init__(self, directory: Path | str, identity: dict | None = None, create: bool = True) -> None:
        self.dir = Path(directory)
        self.db_path = self.dir / DB_NAME
        if not create and not self.db_path.exists():
            raise StoreError(f"no store at {self.dir}", "run `mcphotos index DIR` first")
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.conn = connect(self.db_path)
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise StoreError(f"the store database {self.db_path} is unreadable: {e}",
                             "run `mcphotos check --repair`, or move the store away and re-index") from None
        if identity is not None:
            self._check_identity(identity)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self.conn.close()

    def generation(self) -> tuple[int, int]:
        """Changes whenever the database does: a commit by another connection (PRAGMA data_version)
        or a change through this one. Equal generations read the same data, so a result computed
        from the store can be kept until it moves."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0]), self.conn.total_changes

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE``: take the write lock up front, so a write never fails midway."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        else:
            self.conn.execute("COMMIT")

    def writer_lock(self) -> WriterLock:
        return WriterLock(self.dir / LOCK_NAME)

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"the store at {self.dir} has schema version {version}, newer than this mcphotos "
                f"understands ({SCHEMA_VERSION})",
                "upgrade mcphotos (pip install -U mcphotos)",
            )
        for number in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction() as c:
                # Re-check inside the lock: another process may have migrated meanwhile.
                if c.execute("PRAGMA user_version").fetchone()[0] >= number:
                    continue
                for statement in MIGRATIONS[number - 1]:
                    c.execute(statement)
                c.execute(f"PRAGMA user_version = {number}")

    def _check_identity(self, identity: dict) -> None:
        stored = self.get_meta("model")
        if stored is None:
            with self.transaction():
                if self.get_meta("model") is None:
                    self.set_meta("model", json.dumps(identity, sort_keys=True))
            return
        old = json.loads(stored)
        if old.get("name") != identity.get("name") or old.get("source") != identity.get("source"):
            raise StoreError(
                f"the store at {self.dir} belongs to model {old.get('name')} ({old.get('source')}), "
                f"not {identity.get('name')} ({identity.get('source')})",
                "each model has its own store; pass the matching --model/--weights",
            )

    # -- meta --------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        """Call inside a transaction."""
        self.conn.execute("INSERT INTO meta(key, value) VALUES(?, ?) "
                          "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))

    def model_identity(self) -> dict | None:
        raw = self.get_meta("model")
        return json.loads(raw) if raw else None

    def update_model_identity(self, **fields: object) -> None:
        ident = self.model_identity() or {}
        ident.update(fields)
        with self.transaction():
            self.set_meta("model", json.dumps(ident, sort_keys=True))

    def dim(self) -> int | None:
        ident = self.model_identity() or {}
        d = ident.get("dim")
        return int(d) if d else None

    def epoch(self) -> int:
        """Bumped whenever vectors are deleted, so an ANN cache knows to rebuild, not catch up."""
        return int(self.get_meta("epoch") or 0)

    def bump_epoch(self) -> None:
        """Call inside a transaction."""
        self.set_meta("epoch", str(self.epoch() + 1))

    # -- files -------------------------------------------------------------------------------

    def files_under(self, roots: Sequence[str] | None = None) -> dict[str, FileRecord]:
        """Every file record, or those under any of ``roots``, keyed by path."""
        sql = "SELECT path, size, mtime_ns, hash, status, error FROM files"
        rows: list[tuple] = []
        if roots is None:
            rows = self.conn.execute(sql).fetchall()
        else:
            for root in roots:
                if os.path.isdir(root):
                    lo, hi = prefix_range(root)
                    rows += self.conn.execute(sql + " WHERE path >= ? AND path < ?", (lo, hi)).fetchall()
                else:
                    rows += self.conn.execute(sql + " WHERE path = ?",
                                              (encode_path(os.path.abspath(root)),)).fetchall()
        out = {}
        for p, size, mtime, h, status, err in rows:
            path = decode_path(p)
            out[path] = FileRecord(path, size, mtime, h, status, err)
        return out

    def get_file(self, path: str) -> FileRecord | None:
        row = self.conn.execute("SELECT path, size, mtime_ns, hash, status, error FROM files WHERE path = ?",
                                (encode_path(path),)).fetchone()
        return FileRecord(decode_path(row[0]), *row[1:]) if row else None

    def put_files(self, records: Iterable[FileRecord]) -> None:
        """Insert or replace file rows. Call inside a transaction."""
        now = time.time()
        self.conn.executemany(
            "INSERT INTO files(path, size, mtime_ns, hash, status, error, indexed_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(path) DO UPDATE SET size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, hash = excluded.hash, status = excluded.status, "
            "error = excluded.error, indexed_at = excluded.indexed_at",
            [(encode_path(r.path), r.size, r.mtime_ns, r.hash, r.status, r.error, now) for r in records],
        )

    def delete_files(self, paths: Iterable[str]) -> int:
        """Forget file rows (their vectors stay cached by hash). Call inside a transaction."""
        cur = self.conn.executemany("DELETE FROM files WHERE path = ?", [(encode_path(p),) for p in paths])
        return cur.rowcount

    # -- images ------------------------------------------------------------------------------

    def has_hashes(self, hashes: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for part, marks in chunks(list(hashes)):
            q = f"SELECT hash FROM images WHERE hash IN ({marks})"
            found.update(r[0] for r in self.conn.execute(q, part))
        return found

    def put_images(self, images: Iterable[ImageRecord]) -> None:
        """Insert vectors (ignoring a hash already present). Call inside a transaction."""
        now = time.time()
        self.conn.executemany(
            "INSERT INTO images(hash, vector, width, height, taken_at, phash, colors, detail, created_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(hash) DO NOTHING",
            [(im.hash, vector_to_blob(im.vector), im.width, im.height, im.taken_at, im.phash, im.colors,
              im.detail, now) for im in images],
        )

    def image_count(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def max_image_id(self) -> int:
        return self.conn.execute("SELECT COALESCE(MAX(id), 0) FROM images").fetchone()[0]

    def iter_vectors(self, after_id: int = 0, ids: Sequence[int] | None = None,
                     chunk: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) blocks, for index builds and exact search."""
        if ids is not None:
            for part, marks in chunks(list(ids)):
                q = f"SELECT id, vector FROM images WHERE id IN ({marks})"
                rows = self.conn.execute(q, part).fetchall()
                if rows:
                    yield _stack(rows)
            return
        last = after_id
        while True:
            rows = self.conn.execute("SELECT id, vector FROM images WHERE id > ? ORDER BY id LIMIT ?",
                                     (last, chunk)).fetchall()
            if not rows:
                return
            yield _stack(rows)
            last = rows[-1][0]

    def vector_for_hash(self, h: str) -> np.ndarray | None:
        row = self.conn.execute("SELECT vector FROM images WHERE hash = ?", (h,)).fetchone()
        return blob_to_vector(row[0]).copy() if row else None

    def files_for_ids(self, ids: Sequence[int], in_dir: str | None = None) -> dict[int, list[tuple[str, str]]]:
        """image id -> [(path, hash)] of the ok files showing that image."""
        out: dict[int, list[tuple[str, str]]] = {}
        for part, marks in chunks(list(ids)):
            sql = ("SELECT images.id, files.path, images.hash FROM images JOIN files ON files.hash = images.hash "
                   f"WHERE files.status = 'ok' AND images.id IN ({marks})")
            args: list = list(part)
            if in_dir:
                lo, hi = prefix_range(in_dir)
                sql += " AND files.path >= ? AND files.path < ?"
                args += [lo, hi]
            for image_id, p, h in self.conn.execute(sql, args):
                out.setdefault(image_id, []).append((decode_path(p), h))
        return out

    def paths_for_hashes(self, hashes: Iterable[str]) -> dict[str, list[str]]:
        """hash -> the paths of the ok files with that content, sorted."""
        out: dict[str, list[str]] = {}
        for part, marks in chunks(list(hashes)):
            for h, p in self.conn.execute(f"SELECT hash, path FROM files WHERE status = 'ok' AND hash IN ({marks})",
                                          part):
                out.setdefault(h, []).append(decode_path(p))
        for v in out.values():
            v.sort()
        return out

    # -- text cache --------------------------------------------------------------------------

    def cached_texts(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for part, marks in chunks(list(dict.fromkeys(texts))):
            q = f"SELECT text, vector FROM text_cache WHERE text IN ({marks})"
            for t, v in self.conn.execute(q, part):
                out[t] = blob_to_vector(v).copy()
        return out

    def cache_texts(self, items: dict[str, np.ndarray]) -> None:
        if not items:
            return
        now = time.time()
        try:
            with self.transaction():
                self.conn.executemany(
                    "INSERT OR REPLACE INTO text_cache(text, vector, created_at) VALUES(?, ?, ?)",
                    [(t, vector_to_blob(v), now) for t, v in items.items()],
                )
        except sqlite3.OperationalError:
            pass  # store busy or read-only: the cache is an optimization, never a failure

    # -- stats -------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        c = self.conn
        files, ok, failed = c.execute(
            "SELECT COUNT(*), COALESCE(SUM(status = 'ok'), 0), COALESCE(SUM(status = 'failed'), 0) FROM files"
        ).fetchone()
        images = c.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        orphans = c.execute("SELECT COUNT(*) FROM images WHERE hash NOT IN "
                            "(SELECT hash FROM files WHERE hash IS NOT NULL)").fetchone()[0]
        texts = c.execute("SELECT COUNT(*) FROM text_cache").fetchone()[0]
        last = self.get_meta("last_indexed")
        size = sum(p.stat().st_size for p in self.dir.iterdir() if p.is_file())
        return StoreStats(files, ok, failed, images, orphans, texts, size, float(last) if last else None)


def _stack(rows: list[tuple[int, bytes]]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vecs = np.stack([blob_to_vector(r[1]) for r in rows])
    return ids, vecs
