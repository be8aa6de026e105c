"""The hnswlib index: a disposable cache of the vectors in SQLite.

A manifest beside the index records what it was built from (dimension, space, parameters,
count, the highest image id it holds, the store's epoch and the model). When the index is
missing, unreadable or built from something else, it is rebuilt from SQLite; when it is
merely behind (new images were added), it is caught up. Until then, search falls back to
exact search, so an answer is never wrong, only slower.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mcphotos.store.database import Store

log = logging.getLogger(__name__)

INDEX_NAME = "ann.bin"
MANIFEST_NAME = "ann.json"
SPACE = "ip"  # vectors are L2-normalized, so inner product is cosine
M = 32
EF_CONSTRUCTION = 200
EF_SEARCH = 512  # recall@20 >= 0.99 even on structureless 512-d vectors (see tests)


@dataclass
class Manifest:
    dim: int
    space: str
    m: int
    ef_construction: int
    count: int
    max_id: int
    epoch: int
    model: str
    index_bytes: int


class AnnIndex:
    """Load, catch up, rebuild and query the hnswlib index of one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.path = store.dir / INDEX_NAME
        self.manifest_path = store.dir / MANIFEST_NAME
        self.index = None  # hnswlib.Index
        self.manifest: Manifest | None = None

    # -- loading -----------------------------------------------------------------------------

    def _model_key(self) -> str:
        ident = self.store.model_identity() or {}
        return f"{ident.get('name')}|{ident.get('source')}"

    def read_manifest(self) -> Manifest | None:
        try:
            return Manifest(**json.loads(self.manifest_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def problem(self) -> str | None:
        """Why the on-disk index cannot be used as it is, or None if it can (perhaps behind)."""
        dim = self.store.dim()
        man = self.read_manifest()
        if man is None:
            return "the index manifest is missing or unreadable"
        if not self.path.exists():
            return "the index file is missing"
        if dim is not None and man.dim != dim:
            return f"the index has dimension {man.dim}, the store {dim}"
        if man.space != SPACE or man.m != M:
            return "the index was built with other parameters"
        if man.epoch != self.store.epoch():
            return "vectors were removed since the index was built"
        if man.model != self._model_key():
            return "the index was built for another model"
        if self.path.stat().st_size != man.index_bytes:
            return f"the index file has {self.path.stat().st_size} bytes, the manifest says {man.index_bytes}"
        if man.max_id > self.store.max_image_id():
            return "the index holds vectors the store does not have"
        return None

    def load(self) -> bool:
        """Load the index from disk if it is usable. True on success."""
        import hnswlib

        if self.problem() is not None:
            return False
        man = self.read_manifest()
        assert man is not None
        index = hnswlib.Index(space=SPACE, dim=man.dim)
        try:
            index.load_index(str(self.path), max_elements=max(man.count, 1))
        except (RuntimeError, MemoryError, ValueError) as e:
            log.warning("ANN index unreadable (%s); it will be rebuilt", e)
            return False
        if index.get_current_count() != man.count:
            return False
        index.set_ef(EF_SEARCH)
        index.set_num_threads(1)
        self.index, self.manifest = index, man
        return True

    def is_current(self) -> bool:
        return (self.index is not None and self.manifest is not None
                and self.manifest.max_id == self.store.max_image_id()
                and self.manifest.epoch == self.store.epoch())

    # -- building ----------------------------------------------------------------------------

    def rebuild(self) -> None:
        import hnswlib

        dim = self.store.dim()
        if dim is None:
            self.index = None
            return
        count = self.store.image_count()
        index = hnswlib.Index(space=SPACE, dim=dim)
        index.init_index(max_elements=max(count, 16), ef_construction=EF_CONSTRUCTION, M=M,
                         allow_replace_deleted=False)
        index.set_num_threads(os.cpu_count() or 1)
        self.index = index
        self.manifest = Manifest(dim, SPACE, M, EF_CONSTRUCTION, 0, 0, self.store.epoch(),
                                 self._model_key(), 0)
        self._add_after(0)

    def catch_up(self) -> int:
        """Add images newer than the index; returns how many were added."""
        assert self.index is not None and self.manifest is not None
        return self._add_after(self.manifest.max_id)

    def _add_after(self, after_id: int) -> int:
        assert self.index is not None and self.manifest is not None
        added = 0
        for ids, vecs in self.store.iter_vectors(after_id=after_id):
            need = self.index.get_current_count() + len(ids)
            if need > self.index.get_max_elements():
                self.index.resize_index(max(need, int(self.index.get_max_elements() * 1.5)))
            self.index.add_items(vecs, ids)
            added += len(ids)
            self.manifest.max_id = int(ids[-1])
        self.manifest.count = self.index.get_current_count()
        self.manifest.epoch = self.store.epoch()
        self.index.set_ef(EF_SEARCH)
        return added

    def ensure(self, allow_build: bool = True) -> bool:
        """Make the in-memory index current. Returns False when only exact search is possible."""
        if self.index is None and not self.load():
            if not allow_build:
                return False
            self.rebuild()
            return self.index is not None
        if not self.is_current():
            if self.manifest is not None and self.manifest.epoch != self.store.epoch():
                self.rebuild()
            else:
                self.catch_up()
        return True

    def save(self) -> None:
        """Atomically replace the index on disk: temp file, size check, fsync, rename.

        A failed or short write (disk full) raises and leaves the previous index in place.
        """
        assert self.index is not None and self.manifest is not None
        tmp = self.path.with_name(f".{INDEX_NAME}.{os.getpid()}.tmp")
        try:
            self.index.save_index(str(tmp))
            size = tmp.stat().st_size
            expected = _expected_size(self.index, self.manifest.dim)
            if expected is not None and size < expected:
                raise OSError(f"short write of the ANN index ({size} of {expected} bytes)")
            _fsync(tmp)
            self.manifest.index_bytes = size
            man_tmp = self.manifest_path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")
            man_tmp.write_text(json.dumps(asdict(self.manifest)))
            _fsync(man_tmp)
            # Index first, manifest second: a crash between them leaves a size mismatch that
            # problem() detects, never a manifest vouching for the wrong file.
            os.replace(tmp, self.path)
            os.replace(man_tmp, self.manifest_path)
            _fsync_dir(self.path.parent)
        finally:
            for t in (tmp, self.manifest_path.with_name(f".{MANIFEST_NAME}.{os.getpid()}.tmp")):
                if t.exists():
                    t.unlink()

    # -- querying ----------------------------------------------------------------------------

    def query(self, vector: np.ndarray, k: int, allowed: Collection[int] | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k image ids and cosine scores (only ids in ``allowed``, when given)."""
        assert self.index is not None
        k = min(k, self.index.get_current_count() if allowed is None else len(allowed))
        if k <= 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        self.index.set_ef(search_ef(self.index.get_current_count(), k))
        # hnswlib checks the filter while it walks the graph, so the k found all pass it.
        labels, dists = self.index.knn_query(np.asarray(vector, dtype=np.float32).reshape(1, -1), k=k,
                                             filter=None if allowed is None else allowed.__contains__)
        return labels[0].astype(np.int64), (1.0 - dists[0]).astype(np.float32)


def search_ef(count: int, k: int) -> int:
    """hnswlib's search breadth: recall falls as the index grows, so the breadth grows with it
    (512 up to 25k vectors, then count/50, at most 4096)."""
    return max(EF_SEARCH, k, min(4096, count // 50))


def _expected_size(index: object, dim: int) -> int | None:
    # Lower bound: every element stores its vector and label at level 0.
    try:
        count = index.get_current_count()  # type: ignore[attr-defined]
    except Exception:
        return None
    return count * (dim * 4 + 8)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def exact_search(store: Store, vector: np.ndarray, k: int, ids: list[int] | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force cosine top-k over SQLite's vectors (all, or just ``ids``)."""
    q = np.asarray(vector, dtype=np.float32)
    best_ids = np.zeros(0, dtype=np.int64)
    best_scores = np.zeros(0, dtype=np.float32)
    for block_ids, vecs in store.iter_vectors(ids=ids):
        scores = vecs @ q
        all_ids = np.concatenate([best_ids, block_ids])
        all_scores = np.concatenate([best_scores, scores])
        if len(all_scores) > k:
            top = np.argpartition(-all_scores, k - 1)[:k]
            all_ids, all_scores = all_ids[top], all_scores[top]
        best_ids, best_scores = all_ids, all_scores
    order = np.argsort(-best_scores, kind="stable")
    return best_ids[order], best_scores[order]
