"""Nearest photos to a query vector, over the ANN cache or exactly over SQLite, with filters.

Filters (directory, extension, capture date, and any id restriction such as tags) are
applied in SQL to the files table: they pick the candidate image ids, and again the files
shown for each image (a photo copied into two folders matches ``--in`` through one of them).
Cut-offs (see cutoff.py) run last, on the ranked image scores.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcphotos.search.cutoff import SAMPLE, Cut, background_stats, cut_count
from mcphotos.search.hits import SearchHit
from mcphotos.store.ann import AnnIndex, exact_search
from mcphotos.store.database import Store, decode_path, prefix_range
from mcphotos.store.sql import chunks
from mcphotos.store.videos import frame_vectors

# Up to this many candidates a filtered query is answered exactly from SQLite: it never
# misses a match and is fast at that size. Beyond it, the ANN index is searched with the
# candidates as a filter checked during the graph walk (hnswlib), which stays fast and, with
# a filter that passes this many photos, keeps recall where an unfiltered query has it.
EXACT_LIMIT = 5_000

# The capture date a filter sees is EXIF DateTimeOriginal (a naive local time, as cameras
# write it, stored as ISO 8601 by the indexer), or else the file's mtime read in local time.


@dataclass(frozen=True)
class SearchFilter:
    """Restrictions that compose with any query. Empty fields restrict nothing."""

    in_dirs: tuple[str, ...] = ()  # absolute directories; a file under any of them passes
    exts: tuple[str, ...] = ()  # lower-case extensions with the dot: (".jpg", ".heic")
    after: str | None = None  # ISO 8601, inclusive
    before: str | None = None  # ISO 8601, exclusive
    # Any other restriction to a set of image ids (the hook tags plug into).
    image_ids: frozenset[int] | None = field(default=None, compare=False)

    @property
    def empty(self) -> bool:
        return not (self.in_dirs or self.exts or self.after or self.before) and self.image_ids is None

    def where(self) -> tuple[str, list]:
        """SQL condition over ``files`` joined with ``images``, and its arguments."""
        clauses = ["files.status = 'ok'"]
        args: list = []
        if self.in_dirs:
            parts = []
            for d in self.in_dirs:
                lo, hi = prefix_range(d)
                parts.append("(files.path >= ? AND files.path < ?)")
                args += [lo, hi]
            clauses.append("(" + " OR ".join(parts) + ")")
        if self.exts:
            # LIKE is case-insensitive for ASCII; paths are BLOBs, which LIKE only reads as TEXT.
            clauses.append("(" + " OR ".join("CAST(files.path AS TEXT) LIKE ? ESCAPE '\\'" for _ in self.exts) + ")")
            args += ["%" + e.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for e in self.exts]
        # The mtime fallback compares nanoseconds, not a formatted string: strftime on every
        # row costs more than the rest of a 100,000-photo query together.
        if self.after:
            # A video passes while it was still recording at ``after`` (ended_at: NULL for photos).
            clauses.append("(images.taken_at >= ? OR images.ended_at >= ? "
                           "OR (images.taken_at IS NULL AND files.mtime_ns >= ?))")
            args += [self.after, self.after, _local_ns(self.after)]
        if self.before:
            clauses.append("(images.taken_at < ? OR (images.taken_at IS NULL AND files.mtime_ns < ?))")
            args += [self.before, _local_ns(self.before)]
        return " AND ".join(clauses), args


def _local_ns(iso: str) -> int:
    """A naive ISO time, read as local time (like EXIF capture times), in epoch nanoseconds."""
    from datetime import datetime

    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000_000)


def candidate_ids(store: Store, filters: SearchFilter) -> list[int]:
    """Image ids with at least one indexed file passing ``filters``."""
    where, args = filters.where()
    rows = store.conn.execute(f"SELECT DISTINCT images.id FROM files JOIN {_images(filters)} "
                              f"ON files.hash = images.hash WHERE {where}", args)
    ids = [r[0] for r in rows]
    if filters.image_ids is not None:
        ids = [i for i in ids if i in filters.image_ids]
    return ids


def _images(filters: SearchFilter) -> str:
    # A date filter reads images.taken_at and ended_at, stored after the ~2 KB vector: the covering
    # index (migration 7) answers it without reading the vectors, which the planner does not see.
    return "images INDEXED BY images_hash_taken_ended" if filters.after or filters.before else "images"


def files_for_ids(store: Store, ids: Sequence[int], filters: SearchFilter) -> dict[int, list[tuple[str, str]]]:
    """image id -> [(path, hash)] of the files passing ``filters`` that show that image."""
    out: dict[int, list[tuple[str, str]]] = {}
    where, wargs = filters.where()
    ids = [i for i in ids if filters.image_ids is None or i in filters.image_ids]
    for part, marks in chunks(ids):
        sql = ("SELECT images.id, files.path, images.hash FROM images JOIN files ON files.hash = images.hash "
               f"WHERE images.id IN ({marks}) AND {where}")
        for image_id, p, h in store.conn.execute(sql, [*part, *wargs]):
            out.setdefault(image_id, []).append((decode_path(p), h))
    return out


def text_vectors(store: Store, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Embeddings of ``texts``, from the store's cache when seen before (no model load then)."""
    cached = store.cached_texts(texts)
    missing = [t for t in dict.fromkeys(texts) if t not in cached]
    if missing:
        fresh = encode(missing)
        new = dict(zip(missing, fresh, strict=True))
        store.cache_texts(new)
        cached.update(new)
    return np.stack([cached[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)


def search(store: Store, query: np.ndarray, k: int = 20,
           min_score: float | None = None, ann: AnnIndex | None = None,
           exists: Callable[[str], bool] = os.path.exists, filters: SearchFilter | None = None,
           cut: Cut | None = None) -> list[SearchHit]:
    """Top-``k`` files (that still exist) for a ``query`` vector, filtered, then cut.

    Several files with the same content (copies) are all returned, each with the image's score.
    A restriction to some image ids (those carrying a tag) is ``filters.image_ids``.
    """
    filters = filters or SearchFilter()
    q = np.asarray(query, dtype=np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    # An automatic cut needs the scores just past the k-th to see where the matches end.
    want = cut.window(k) if cut is not None else k
    hits = _ranked(store, q, want, filters, min_score, ann, exists)
    hits = _best_frames(store, q, hits, want, filters, min_score, exists)
    if cut is not None:
        ranks = {h: i for i, h in enumerate(dict.fromkeys(x.hash for x in hits))}
        background = background_stats(*_background_scores(store, q, filters)) if cut.auto else None
        keep = cut_count([h.score for h in _first_per_image(hits)], cut, k, background)
        hits = [h for h in hits if ranks[h.hash] < keep]
    return hits[:k]


def _background_scores(store: Store, q: np.ndarray, filters: SearchFilter) -> tuple[np.ndarray, int]:
    """Scores of ``q`` against a fixed pseudo-random sample of the (filtered) library, and its size."""
    if filters.empty:
        ids = np.arange(1, store.max_image_id() + 1)  # ids of removed images just find no row
        population = store.image_count()
    else:
        ids = np.asarray(candidate_ids(store, filters), dtype=np.int64)
        population = len(ids)
    if len(ids) > SAMPLE:
        ids = np.sort(np.random.default_rng(0).choice(ids, SAMPLE, replace=False))
    blocks = [vecs @ q for _, vecs in store.iter_vectors(ids=[int(i) for i in ids])]
    return (np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)), population


def _ranked(store: Store, q: np.ndarray, k: int, filters: SearchFilter, min_score: float | None,
            ann: AnnIndex | None, exists: Callable[[str], bool]) -> list[SearchHit]:
    allowed: set[int] | None = None
    if not filters.empty:
        ids = candidate_ids(store, filters)
        if len(ids) > EXACT_LIMIT and ann is not None and ann.ensure(allow_build=False):
            allowed = set(ids)
        else:
            found_ids, scores = exact_search(store, q, len(ids), ids=ids)
            # Look up files for a growing prefix only: vanished files may take some slots.
            window = max(2 * k, 32)
            while True:
                hits = _to_hits(store, found_ids[:window], scores[:window], k, filters, min_score, exists)
                if len(hits) >= k or window >= len(found_ids):
                    return hits
                window *= 4
    if ann is None or not ann.ensure(allow_build=False):
        found_ids, scores = exact_search(store, q, max(4 * k, 64))
        return _to_hits(store, found_ids, scores, k, filters, min_score, exists)
    total = len(allowed) if allowed is not None else ann.index.get_current_count() if ann.index is not None else 0
    fetch = max(2 * k, 32)
    while True:
        found_ids, scores = ann.query(q, fetch, allowed)
        hits = _to_hits(store, found_ids, scores, k, filters, min_score, exists)
        # Orphaned vectors, vanished and filtered-out files take slots: fetch more until we have k.
        if len(hits) >= k or fetch >= total or (min_score is not None and len(scores) and scores[-1] < min_score):
            return hits
        fetch = min(total, fetch * 4)


def _to_hits(store: Store, ids: np.ndarray, scores: np.ndarray, k: int, filters: SearchFilter,
             min_score: float | None, exists: Callable[[str], bool]) -> list[SearchHit]:
    files = files_for_ids(store, [int(i) for i in ids], filters)
    hits: list[SearchHit] = []
    for image_id, score in zip(ids, scores, strict=True):
        if min_score is not None and score < min_score:
            break
        for path, h in sorted(files.get(int(image_id), [])):
            if exists(path):
                hits.append(SearchHit(path, float(score), h))
        if len(hits) >= k:
            break
    return hits[:k]


def _best_frames(store: Store, q: np.ndarray, hits: list[SearchHit], k: int, filters: SearchFilter,
                 min_score: float | None, exists: Callable[[str], bool]) -> list[SearchHit]:
    """Rank each video by its best frame, and say which frame that is.

    A video's images row holds one of its frames, so the search above saw it with a score at
    most its best frame's: every photo it ranked in the top k is still rightly there, and the
    videos are rescored here from all their frames (video_frames), exactly. That costs a pass
    over the frames of the library's videos (3 vectors each by default): a few milliseconds
    for thousands of videos, and nothing at all when there are none.
    """
    video_ids = {h: i for h, i in store.conn.execute(
        "SELECT images.hash, images.id FROM images WHERE images.hash IN (SELECT DISTINCT hash FROM video_frames)")}
    if not video_ids:
        return hits
    hashes, times, vectors = frame_vectors(store, list(video_ids))
    scores = vectors @ q
    best: dict[str, tuple[float, float]] = {}
    for h, t, sc in zip(hashes, times, scores, strict=True):
        if h not in best or sc > best[h][0]:
            best[h] = (float(sc), float(t))
    order = sorted(best, key=lambda h: -best[h][0])
    if min_score is not None:
        order = [h for h in order if best[h][0] >= min_score]
    files = files_for_ids(store, [video_ids[h] for h in order], filters)
    videos: list[SearchHit] = []
    for h in order:
        for path, _ in sorted(files.get(video_ids[h], [])):
            if exists(path):
                videos.append(SearchHit(path, best[h][0], h, best[h][1]))
        if len(videos) >= k:
            break
    photos = [hit for hit in hits if hit.hash not in best]
    return sorted(photos + videos, key=lambda hit: -hit.score)


def _first_per_image(hits: list[SearchHit]) -> list[SearchHit]:
    seen: set[str] = set()
    out = []
    for h in hits:
        if h.hash not in seen:
            seen.add(h.hash)
            out.append(h)
    return out

