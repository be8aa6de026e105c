"""What dedup works on: the indexed photos in scope, their signatures and (lazily) their vectors.

One row per distinct image (content hash) with at least one indexed file in scope; files point
at their image. Signatures missing from stores indexed before they existed are backfilled here
by re-reading one file per image (decode only, never re-embedding).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from mcphotos.dedup import perceptual as pc
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.store.database import Store, decode_path, encode_path, prefix_range

if TYPE_CHECKING:
    from mcphotos.store.ann import AnnIndex

# The spec used to backfill a store that never recorded its own (the default model's).
FALLBACK_SPEC = PreprocessSpec(size=(256, 256), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear")
_CHUNK = 50_000
# Random weights map every photo to about the same direction: then the median cosine of random
# pairs is ~0.99 and the embeddings are ignored; real models put it well below this.
INFORMATIVE_MEDIAN = 0.9

_SELECT = ("SELECT f.path, f.size, f.mtime_ns, i.id, i.hash, i.phash, i.colors, i.detail, i.width, i.height, "
           "i.taken_at, i.duration IS NOT NULL FROM files f JOIN images i ON i.hash = f.hash WHERE f.status = 'ok'")


@dataclass
class Catalog:
    store: Store
    ids: np.ndarray  # image ids (the ANN labels), one per row
    hashes: list[str]
    phash: np.ndarray  # int64, 0 where unknown
    layouts: np.ndarray  # (n, 16, 3) float32, NaN where unknown
    detail: np.ndarray  # float64, NaN where unknown
    has_signature: np.ndarray  # bool: pHash and layout known
    widths: list[int | None]
    heights: list[int | None]
    taken_at: list[str | None]
    taken_ts: np.ndarray  # seconds, NaN without a capture time
    paths: list[str]  # one per file
    sizes: np.ndarray
    mtimes: np.ndarray
    file_image: np.ndarray  # file -> row
    files_of: list[list[int]]  # row -> files
    backfilled: int = 0
    # True for a video's row: videos are grouped among themselves only, never with a photo.
    videos: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    _vectors: np.ndarray | None = field(default=None, repr=False)
    _cache: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def n(self) -> int:
        return len(self.ids)

    # -- embeddings ------------------------------------------------------------------------------

    def vectors_available(self) -> bool:
        return self.n > 0 and self.store.dim() is not None

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            dim = self.store.dim() or 0
            out = np.zeros((self.n, dim), dtype=np.float32)
            row_of = {int(i): r for r, i in enumerate(self.ids)}
            # The whole store: one sequential scan; a subset: look its ids up.
            source = self.store.iter_vectors() if self.n * 2 >= self.store.image_count() \
                else self.store.iter_vectors(ids=self.ids.tolist())
            for block_ids, vecs in source:
                for k, image_id in enumerate(block_ids.tolist()):
                    r = row_of.get(image_id)
                    if r is not None:
                        out[r] = vecs[k]
            self._vectors = out
        return self._vectors

    def _rows_vectors(self, rows: np.ndarray) -> np.ndarray:
        """Vectors of some rows: from the full matrix if loaded, else fetched by id (a few pairs
        should not cost reading every vector in the store)."""
        if self._vectors is not None or len(rows) * 4 >= self.n:
            return self.vectors()[rows]
        missing = [r for r in rows.tolist() if r not in self._cache]
        if missing:
            self.prefetch(missing)
        return np.stack([self._cache[r] for r in rows.tolist()]) if len(rows) else \
            np.zeros((0, self.store.dim() or 0), dtype=np.float32)

    def prefetch(self, rows: list[int]) -> None:
        """Load the vectors of ``rows`` in one pass (before many small ``cosines`` calls)."""
        pos = {int(self.ids[r]): r for r in rows}
        for block_ids, vecs in self.store.iter_vectors(ids=list(pos)):
            for k, image_id in enumerate(block_ids.tolist()):
                self._cache[pos[image_id]] = vecs[k]

    def cosines(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        rows, inverse = np.unique(np.concatenate([i, j]), return_inverse=True)
        v = self._rows_vectors(rows)
        i, j = inverse[: len(i)], inverse[len(i):]
        out = np.empty(len(i), dtype=np.float32)
        for s in range(0, len(i), _CHUNK):
            a, b = v[i[s:s + _CHUNK]], v[j[s:s + _CHUNK]]
            out[s:s + _CHUNK] = np.einsum("ij,ij->i", a, b)
        return out

    def embeddings_informative(self, sample: int = 400, seed: int = 0) -> bool:
        """Do the embeddings tell photos apart? Random weights put every photo in one direction."""
        if not self.vectors_available():
            return False
        if self.n < 3:
            return False  # too few photos to judge the model by: rely on the signatures alone
        rng = np.random.default_rng(seed)
        m = min(self.n, sample)
        rows = rng.choice(self.n, size=m, replace=False)
        a = rng.integers(0, m, size=4 * m)
        b = (a + rng.integers(1, m, size=4 * m)) % m
        v = self._rows_vectors(rows)
        cos = np.einsum("ij,ij->i", v[a], v[b])
        return bool(np.median(cos) < INFORMATIVE_MEDIAN)

    def embedding_pairs(self, k: int, ann: AnnIndex | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pairs where one is among the other's k nearest embeddings, with their cosines."""
        empty = np.zeros(0, np.int64)
        if self.n < 2 or not self.vectors_available():
            return empty, empty, np.zeros(0, np.float32)
        # The store's ANN cache when it covers mostly photos in scope; otherwise an index of just these.
        covers = self.n * 2 >= self.store.image_count() and self.n > 256
        index = ann.index if ann is not None and covers and ann.ensure(allow_build=False) else None
        if index is not None:
            try:  # the queries straight from the index's memory: no second read of every vector
                v = index.get_items(self.ids, return_type="numpy")
            except (RuntimeError, TypeError):
                v = self.vectors()
            index.set_ef(max(24, 2 * (k + 1)))
            labels, dist = index.knn_query(v, k=min(k + 1, index.get_current_count()), num_threads=pc._threads())
            order = np.argsort(self.ids)
            sorted_ids = self.ids[order]
            pos = np.searchsorted(sorted_ids, labels).clip(0, self.n - 1)
            rows = np.where(sorted_ids[pos] == labels, order[pos], -1)
            i, j, d = pc.pairs_from_neighbours(rows, self.n, dist)
        else:
            i, j, d = pc.knn_pairs(self.vectors(), k, space="ip", with_distances=True)
        return i, j, (1.0 - d).astype(np.float32)


def load_catalog(store: Store, roots: Sequence[str] | None = None, excluded: Sequence[str] = (),
                 spec: PreprocessSpec | None = None, backfill: bool = True) -> Catalog:
    rows = _rows(store, roots)
    roots_abs = [os.path.abspath(r) for r in roots or ()]
    skip = [os.path.join(os.path.abspath(d), "") for d in excluded
            if not any(os.path.join(r, "").startswith(os.path.join(os.path.abspath(d), "")) for r in roots_abs)]
    row_of: dict[int, int] = {}
    img_rows: list[tuple] = []
    paths: list[str] = []
    sizes: list[int] = []
    mtimes: list[int] = []
    file_image: list[int] = []
    files_of: list[list[int]] = []
    seen: set[bytes] = set()
    for raw, size, mtime, image_id, h, ph, colors, detail, w, hgt, taken, video in rows:
        if raw in seen:
            continue
        seen.add(raw)
        path = decode_path(raw)
        if skip and any(path.startswith(s) for s in skip):
            continue
        r = row_of.get(image_id)
        if r is None:
            r = row_of[image_id] = len(img_rows)
            img_rows.append((image_id, h, ph, colors, detail, w, hgt, taken, bool(video)))
            files_of.append([])
        files_of[r].append(len(paths))
        paths.append(path)
        sizes.append(size)
        mtimes.append(mtime)
        file_image.append(r)
    n = len(img_rows)
    phash = [r[2] for r in img_rows]
    colors = [r[3] for r in img_rows]
    detail = [r[4] for r in img_rows]
    backfilled = 0
    if backfill:
        todo = [k for k in range(n) if phash[k] is None or colors[k] is None or detail[k] is None]
        if todo:
            found = _backfill(store, [(k, img_rows[k][0], paths[files_of[k][0]]) for k in todo], spec)
            for k, (ph, co, de) in found.items():
                phash[k], colors[k], detail[k] = ph, co, de
            backfilled = len(found)
    has_sig = np.array([p is not None and c is not None for p, c in zip(phash, colors, strict=True)], dtype=bool)
    return Catalog(
        store=store,
        ids=np.array([r[0] for r in img_rows], dtype=np.int64),
        hashes=[r[1] for r in img_rows],
        phash=np.array([p if p is not None else 0 for p in phash], dtype=np.int64),
        layouts=pc.layout_array(colors),
        detail=np.array([d if d is not None else np.nan for d in detail], dtype=np.float64),
        has_signature=has_sig,
        widths=[r[5] for r in img_rows], heights=[r[6] for r in img_rows], taken_at=[r[7] for r in img_rows],
        taken_ts=np.array([_timestamp(r[7]) for r in img_rows], dtype=np.float64),
        paths=paths, sizes=np.array(sizes, dtype=np.int64), mtimes=np.array(mtimes, dtype=np.int64),
        file_image=np.array(file_image, dtype=np.int64), files_of=files_of, backfilled=backfilled,
        videos=np.array([r[8] for r in img_rows], dtype=bool),
    )


def _rows(store: Store, roots: Sequence[str] | None) -> list[tuple]:
    if not roots:
        return store.conn.execute(_SELECT).fetchall()
    out: list[tuple] = []
    for root in roots:
        if os.path.isfile(root):
            out += store.conn.execute(_SELECT + " AND f.path = ?", (encode_path(os.path.abspath(root)),)).fetchall()
        else:
            lo, hi = prefix_range(root)
            out += store.conn.execute(_SELECT + " AND f.path >= ? AND f.path < ?", (lo, hi)).fetchall()
    return out


def _timestamp(taken: str | None) -> float:
    if not taken:
        return float("nan")
    try:
        return datetime.fromisoformat(taken).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("nan")


def _backfill(store: Store, todo: list[tuple[int, int, str]], spec: PreprocessSpec | None
              ) -> dict[int, tuple[int | None, bytes | None, float | None]]:
    """Compute missing signatures from the files (decode only) and save them when we may write."""
    from mcphotos.indexing.raw import decode_file_for_model
    from mcphotos.indexing.workers import read_stable

    spec = spec or FALLBACK_SPEC

    def one(item: tuple[int, int, str]) -> tuple[int, int, tuple[int | None, bytes | None, float | None]] | None:
        k, image_id, path = item
        try:
            data, _ = read_stable(path)
            d = decode_file_for_model(path, data, spec)
        except Exception:  # unreadable now: the image just takes no part in near matching
            return None
        return k, image_id, (d.phash, d.colors, d.detail)

    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        results = [r for r in pool.map(one, todo) if r is not None]
    lock = store.writer_lock()
    if results and lock.try_acquire():
        try:
            with store.transaction():
                store.conn.executemany("UPDATE images SET phash = ?, colors = ?, detail = ? WHERE id = ?",
                                       [(*sig, image_id) for _, image_id, sig in results])
        finally:
            lock.release()
    return {k: sig for k, _, sig in results}
