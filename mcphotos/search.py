"""Nearest photos to a query vector, over the ANN cache or exactly over SQLite."""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass

import numpy as np

from .ann import AnnIndex, exact_search
from .store import Store

# Below this many candidates a filtered query is answered exactly: it is both faster than
# over-fetching from the ANN index and never misses a match.
EXACT_LIMIT = 50_000


@dataclass(frozen=True)
class SearchHit:
    path: str
    score: float
    hash: str


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


def search(store: Store, query: np.ndarray, k: int = 20, in_dir: str | None = None,
           min_score: float | None = None, ann: AnnIndex | None = None,
           exists: Callable[[str], bool] = os.path.exists, only_ids: Collection[int] | None = None) -> list[SearchHit]:
    """Top-``k`` files (that still exist) for a unit ``query`` vector.

    Several files with the same content (copies) are all returned, each with the image's score.
    ``only_ids``: search among these image ids only (e.g. those carrying a tag), exactly.
    """
    q = np.asarray(query, dtype=np.float32)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    hits: list[SearchHit] = []
    if in_dir is not None or only_ids is not None:
        ids = store.live_ids(in_dir)
        if only_ids is not None:
            ids = [i for i in ids if i in only_ids]
        if len(ids) <= EXACT_LIMIT or ann is None or only_ids is not None:
            found_ids, scores = exact_search(store, q, len(ids), ids=ids)
            return _to_hits(store, found_ids, scores, k, in_dir, min_score, exists)
    if ann is None or not ann.ensure(allow_build=False):
        found_ids, scores = exact_search(store, q, max(4 * k, 64))
        hits = _to_hits(store, found_ids, scores, k, in_dir, min_score, exists)
        return hits
    total = ann.index.get_current_count() if ann.index is not None else 0
    fetch = max(2 * k, 32)
    while True:
        found_ids, scores = ann.query(q, fetch)
        hits = _to_hits(store, found_ids, scores, k, in_dir, min_score, exists)
        # Orphaned vectors and vanished files take slots: fetch more until we have k.
        if len(hits) >= k or fetch >= total or (min_score is not None and len(scores) and scores[-1] < min_score):
            return hits
        fetch = min(total, fetch * 4)


def _to_hits(store: Store, ids: np.ndarray, scores: np.ndarray, k: int, in_dir: str | None,
             min_score: float | None, exists: Callable[[str], bool]) -> list[SearchHit]:
    files = store.files_for_ids([int(i) for i in ids], in_dir)
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
