"""The index pipeline with a fake encoder: incremental, content-addressed, prunes safely."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from mcphotos.errors import UsageError
from mcphotos.indexing.indexer import Indexer, IndexOptions
from mcphotos.store.database import Store
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    yield s
    s.close()


def run(store: Store, enc: FakeEncoder, *roots: Path, **opts):
    return Indexer(store, enc, SPEC, IndexOptions(workers=2, batch_size=4, **opts)).index([str(r) for r in roots])


def make_library(root: Path, n: int) -> list[Path]:
    return [photo(root / f"sub{i % 3}" / f"p{i:02d}.jpg", seed=i, fmt="JPEG") for i in range(n)]


def test_rename_copy_delete_add_embeds_only_new_content(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    files = make_library(root, 30)
    enc = FakeEncoder()
    r1 = run(store, enc, root)
    assert (r1.new, r1.embedded, r1.failed) == (30, 30, 0)
    # rename 10, copy 5 into a new folder, delete 5, add 5 new ones
    for p in files[:10]:
        p.rename(p.with_name("renamed-" + p.name))
    (root / "copies").mkdir()
    for p in files[10:15]:
        shutil.copy2(p, root / "copies" / p.name)
    for p in files[15:20]:
        p.unlink()
    for i in range(5):
        photo(root / "new" / f"n{i}.png", seed=100 + i)
    enc2 = FakeEncoder()
    r2 = run(store, enc2, root)
    assert enc2.images == 5 and r2.embedded == 5
    assert (r2.new, r2.reused, r2.unchanged, r2.removed, r2.failed) == (5, 15, 15, 15, 0)
    paths = set(store.files_under([str(root)]))
    assert all(not Path(p).name.startswith("p") or "copies" in p or Path(p).exists() for p in paths)
    assert not any(str(p) in paths for p in files[15:20])
    assert all(str(p.with_name("renamed-" + p.name)) in paths for p in files[:10])


def test_unchanged_tree_is_neither_hashed_nor_decoded(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    make_library(root, 12)
    run(store, FakeEncoder(), root)
    enc = FakeEncoder()
    r = run(store, enc, root)
    assert (r.unchanged, r.hashed, r.decoded, enc.calls) == (12, 0, 0, 0)


def test_touched_file_is_rehashed_but_not_reembedded(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    files = make_library(root, 4)
    run(store, FakeEncoder(), root)
    os.utime(files[0], ns=(1, 1))
    enc = FakeEncoder()
    r = run(store, enc, root)
    assert (r.hashed, r.reused, enc.images) == (1, 1, 0)


def test_copies_in_one_run_are_embedded_once(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    p = photo(root / "a.png", seed=1)
    for i in range(3):
        shutil.copy(p, root / f"copy{i}.png")
    enc = FakeEncoder()
    r = run(store, enc, root)
    assert enc.images == 1 and r.new == 4 and store.image_count() == 1


def test_unreadable_file_is_recorded_and_not_retried(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    photo(root / "good.png", seed=1)
    (root / "bad.jpg").write_bytes(b"this is not a jpeg")
    skipped: list[tuple[str, str]] = []
    ix = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1), on_skip=lambda p, r: skipped.append((p, r)))
    r = ix.index([str(root)])
    assert r.failed == 1 and r.new == 1
    assert len(skipped) == 1 and skipped[0][0].endswith("bad.jpg")
    r2 = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1)).index([str(root)])
    assert r2.hashed == 0 and r2.failed == 1
    r3 = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1, retry_failed=True)).index([str(root)])
    assert r3.hashed == 1 and r3.failed == 1


def test_a_root_that_never_existed_is_a_usage_error_and_prunes_nothing(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    make_library(root, 3)
    run(store, FakeEncoder(), root)
    with pytest.raises(UsageError, match="nope"):
        run(store, FakeEncoder(), root, tmp_path / "nope")
    assert len(store.files_under()) == 3


def test_hidden_and_excluded_are_skipped(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    photo(root / ".hidden" / "a.png", seed=1)
    photo(root / "keep.png", seed=2)
    photo(root / "skip.png", seed=3)
    photo(root / "UPPER.JPG", seed=4, fmt="JPEG")
    r = run(store, FakeEncoder(), root, exclude=("skip*",))
    assert sorted(Path(p).name for p in store.files_under()) == ["UPPER.JPG", "keep.png"]
    assert r.new == 2
    run(store, FakeEncoder(), root, hidden=True)
    assert "a.png" in {Path(p).name for p in store.files_under()}
