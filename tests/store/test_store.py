"""SQLite store: migrations, identity, vectors; the ANN cache: recall, staleness, atomic save."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from mcphotos.errors import StoreError, StoreVersionError
from mcphotos.store.ann import AnnIndex, exact_search
from mcphotos.store.database import SCHEMA_VERSION, FileRecord, ImageRecord, Store


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def fill(store: Store, vecs: np.ndarray, start: int = 0) -> None:
    with store.transaction():
        store.put_images(ImageRecord(f"h{start + i}", v) for i, v in enumerate(vecs))
        store.put_files(FileRecord(f"/p/{start + i}.jpg", 1, 1, f"h{start + i}", "ok") for i in range(len(vecs)))
    if store.dim() is None:
        store.update_model_identity(dim=vecs.shape[1])


def test_migrations_run_and_newer_store_is_refused(tmp_path: Path) -> None:
    s = Store(tmp_path, {"name": "m", "source": "t"})
    assert s.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    s.close()
    c = sqlite3.connect(tmp_path / "store.db")
    c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    c.close()
    with pytest.raises(StoreVersionError, match="newer"):
        Store(tmp_path)


def test_store_refuses_another_models_identity(tmp_path: Path) -> None:
    Store(tmp_path, {"name": "a", "source": "x"}).close()
    with pytest.raises(StoreError, match="belongs to model a"):
        Store(tmp_path, {"name": "b", "source": "x"})


def test_paths_that_are_not_utf8_round_trip(tmp_path: Path) -> None:
    import os

    s = Store(tmp_path, {"name": "m", "source": "t"})
    weird = os.fsdecode(b"/x/caf\xe9\nnew line.jpg")
    with s.transaction():
        s.put_files([FileRecord(weird, 1, 2, "h", "ok")])
    assert os.fsencode(next(iter(s.files_under()))) == b"/x/caf\xe9\nnew line.jpg"


def test_ann_recall_at_20_against_exact_search_on_10k(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    s = Store(tmp_path, {"name": "m", "source": "t"})
    fill(s, unit(rng, 10_000, 64))
    ann = AnnIndex(s)
    assert ann.ensure()
    ann.save()
    queries = unit(rng, 50, 64)
    recalls = []
    for q in queries:
        exact_ids, _ = exact_search(s, q, 20)
        ann_ids, _ = ann.query(q, 20)
        recalls.append(len(set(exact_ids) & set(ann_ids)) / 20)
    print(f"ANN recall@20 over 10,000 random 64-d vectors: {np.mean(recalls):.4f}")
    assert np.mean(recalls) >= 0.99


def test_ann_catches_up_and_rebuilds_when_damaged(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    s = Store(tmp_path, {"name": "m", "source": "t"})
    fill(s, unit(rng, 100, 16))
    ann = AnnIndex(s)
    ann.ensure()
    ann.save()
    fill(s, unit(rng, 10, 16), start=100)
    fresh = AnnIndex(s)
    assert fresh.load() and not fresh.is_current()
    assert fresh.catch_up() == 10 and fresh.is_current()
    # a truncated index file is detected, not trusted
    data = ann.path.read_bytes()
    ann.path.write_bytes(data[: len(data) // 2])
    assert AnnIndex(s).problem() is not None
    assert AnnIndex(s).ensure() and AnnIndex(s).problem() is not None  # rebuilt in memory


def test_failed_index_save_keeps_the_previous_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    s = Store(tmp_path, {"name": "m", "source": "t"})
    fill(s, unit(rng, 50, 16))
    ann = AnnIndex(s)
    ann.ensure()
    ann.save()
    before = ann.path.read_bytes()
    fill(s, unit(rng, 50, 16), start=50)
    ann.catch_up()

    def short_write(path: str) -> None:  # the disk fills up halfway
        Path(path).write_bytes(before[:100])

    real = ann.index

    class Short:
        def __getattr__(self, name):
            return getattr(real, name)

        def save_index(self, path: str) -> None:
            short_write(path)

    ann.index = Short()
    with pytest.raises(OSError, match="short write"):
        ann.save()
    assert ann.path.read_bytes() == before
    assert AnnIndex(s).problem() is None  # the old pair is still consistent
    assert not list(tmp_path.glob(".ann*"))
