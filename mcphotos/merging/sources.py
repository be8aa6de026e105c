"""What ``merge`` reads from: another store (read-only) or an ``export`` directory.

Both give the same things: the model identity and preprocessing the vectors were made with,
and the images in batches (content hash, vector and the facts stored beside it). A store also
gives the tags, captions and video frames of a batch's hashes; an export carries none of those
(its ``tags`` column is labels without scores or label sets, which cannot be stored faithfully).

A source store is opened read-only (``connect(readonly=True)``): merging from it never migrates
it or writes to it, so a store copied off a rented machine stays exactly as it came.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcphotos.errors import StoreError, UsageError
from mcphotos.store.database import DB_NAME, SCHEMA_VERSION, blob_to_vector, connect
from mcphotos.store.sql import chunks


@dataclass(frozen=True)
class SourceImage:
    """One content hash's row, as the source stores it."""

    hash: str
    vector: np.ndarray
    width: int | None = None
    height: int | None = None
    taken_at: str | None = None
    phash: int | None = None
    colors: bytes | None = None
    detail: float | None = None
    duration: float | None = None  # set for videos only
    ended_at: str | None = None


TagRow = tuple[str, str, str, float, float]  # hash, label_set, label, score, tagged_at
CaptionRow = tuple[str, str, str, int, str, float, float | None, float]  # the captions table's columns
FrameRow = tuple[str, float, bytes]  # hash, frame_s, vector blob
DismissedRow = tuple[str, str, float]  # hash_a, hash_b, dismissed_at


class MergeSource:
    """The interface both kinds of source offer (see the module docstring)."""

    kind = ""
    path: Path

    def identity(self) -> dict | None:
        raise NotImplementedError

    def preprocess(self) -> dict | None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def batches(self, size: int) -> Iterator[list[SourceImage]]:
        raise NotImplementedError

    def tags(self, hashes: Sequence[str]) -> list[TagRow]:
        return []

    def captions(self, hashes: Sequence[str]) -> list[CaptionRow]:
        return []

    def frames(self, hashes: Sequence[str]) -> list[FrameRow]:
        return []

    def dismissed(self) -> list[DismissedRow]:
        """Pairs of hashes marked "not duplicates" (store/dismissals.py)."""
        return []

    def close(self) -> None:
        pass


class StoreSource(MergeSource):
    """Another store directory (``store.db``), any schema version up to ours."""

    kind = "store"

    def __init__(self, directory: Path) -> None:
        self.path = directory
        try:
            self.conn = connect(directory / DB_NAME, readonly=True)
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            self._tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            self._columns = {r[1] for r in self.conn.execute("PRAGMA table_info(images)")}
        except sqlite3.DatabaseError as e:
            raise StoreError(f"the store database {directory / DB_NAME} is unreadable: {e}") from None
        if version > SCHEMA_VERSION:
            self.close()
            raise StoreError(f"the store at {directory} has schema version {version}, newer than this mcphotos "
                             f"understands ({SCHEMA_VERSION})", "upgrade mcphotos (pip install -U mcphotos)")
        if "images" not in self._tables or "meta" not in self._tables:
            self.close()
            raise UsageError(f"{directory} is not an mcphotos store (no images table)")

    def _meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def identity(self) -> dict | None:
        raw = self._meta("model")
        return json.loads(raw) if raw else None

    def preprocess(self) -> dict | None:
        raw = self._meta("preprocess")
        return json.loads(raw) if raw else None

    def count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])

    def batches(self, size: int) -> Iterator[list[SourceImage]]:
        # Columns added by later migrations read as NULL from a store made before them.
        wanted = ["hash", "vector", "width", "height", "taken_at", "phash", "colors", "detail", "duration",
                  "ended_at"]
        cols = ", ".join(c if c in self._columns else "NULL" for c in wanted)
        last = 0
        while True:
            rows = self.conn.execute(f"SELECT id, {cols} FROM images WHERE id > ? ORDER BY id LIMIT ?",
                                     (last, size)).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [SourceImage(h, blob_to_vector(v), w, hg, t, ph, co, de, du, en)
                   for _, h, v, w, hg, t, ph, co, de, du, en in rows]

    def _select(self, table: str, columns: str, hashes: Sequence[str]) -> list[tuple]:
        if table not in self._tables:
            return []
        out: list[tuple] = []
        for part, marks in chunks(list(hashes)):
            out += self.conn.execute(f"SELECT {columns} FROM {table} WHERE hash IN ({marks})", part).fetchall()
        return out

    def tags(self, hashes: Sequence[str]) -> list[TagRow]:
        return self._select("tags", "hash, label_set, label, score, tagged_at", hashes)

    def captions(self, hashes: Sequence[str]) -> list[CaptionRow]:
        return self._select("captions", "hash, captioner, method, rank, text, cosine, logprob, created_at", hashes)

    def frames(self, hashes: Sequence[str]) -> list[FrameRow]:
        return self._select("video_frames", "hash, frame_s, vector", hashes)

    def dismissed(self) -> list[DismissedRow]:
        if "dismissed_pairs" not in self._tables:
            return []
        return self.conn.execute("SELECT hash_a, hash_b, dismissed_at FROM dismissed_pairs").fetchall()

    def close(self) -> None:
        self.conn.close()


class ExportSource(MergeSource):
    """A directory ``mcphotos export`` wrote: info.json, the .npy of vectors, the .jsonl of rows.

    Rows are files, so a photo with two copies appears twice; it is merged once.
    """

    kind = "export"

    def __init__(self, directory: Path) -> None:
        self.path = directory
        try:
            self.info = json.loads((directory / "info.json").read_text())
            self.vectors = np.load(directory / self.info.get("embeddings", "img_emb/img_emb_0.npy"), mmap_mode="r")
        except (OSError, ValueError) as e:
            raise UsageError(f"{directory} is not a readable mcphotos export: {e}") from None
        self.metadata = directory / self.info.get("metadata", "metadata/metadata_0.jsonl")
        if not self.metadata.is_file():
            raise UsageError(f"{directory} is not a readable mcphotos export: {self.metadata} is missing")

    def identity(self) -> dict | None:
        model = self.info.get("model")
        return dict(model, dim=self.info.get("dim", model.get("dim"))) if isinstance(model, dict) else None

    def preprocess(self) -> dict | None:
        pre = self.info.get("preprocess")
        return pre if isinstance(pre, dict) else None

    def count(self) -> int:
        return int(self.vectors.shape[0])

    def batches(self, size: int) -> Iterator[list[SourceImage]]:
        seen: set[str] = set()
        batch: list[SourceImage] = []
        with open(self.metadata, encoding="utf-8") as f:
            for i, line in enumerate(f):
                if i >= len(self.vectors):
                    raise UsageError(f"{self.metadata} has more rows than {self.path} has vectors")
                row = json.loads(line)
                h = row["hash"]
                if h in seen:
                    continue
                seen.add(h)
                batch.append(SourceImage(h, np.asarray(self.vectors[i], dtype=np.float32), row.get("width"),
                                         row.get("height"), row.get("taken_at")))
                if len(batch) >= size:
                    yield batch
                    batch = []
        if batch:
            yield batch


def open_source(given: str | Path, slug: str) -> MergeSource:
    """The source ``given`` names: a store directory, an export, or a home holding ``models/<slug>``."""
    path = Path(given).expanduser().absolute()
    if not path.is_dir():
        raise UsageError(f"no such directory: {given}", "give a store directory or an `mcphotos export` directory")
    if (path / DB_NAME).is_file():
        return StoreSource(path)
    if (path / "info.json").is_file():
        return ExportSource(path)
    home_store = path / "models" / slug
    if (home_store / DB_NAME).is_file():
        return StoreSource(home_store)
    raise UsageError(f"{given} holds neither a store ({DB_NAME}) nor an export (info.json)",
                     f"give a store directory (e.g. HOME/models/{slug}) or a directory `mcphotos export` wrote")
