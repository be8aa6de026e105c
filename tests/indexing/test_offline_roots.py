"""Offline roots: a missing, emptied or re-mounted root is never pruned; unreadable folders neither."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcphotos.indexing.indexer import Indexer, IndexOptions, IndexReport
from mcphotos.store.database import Store
from mcphotos.store.roots import RootRecord, put_roots, recorded_roots
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo
from tests.support.privileges import run_unprivileged


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    yield s
    s.close()


def run(store: Store, *roots: Path, **opts: object) -> IndexReport:
    return Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1, **opts)).index(  # type: ignore[arg-type]
        [str(r) for r in roots])


def photos(root: Path, n: int, seed: int = 0) -> list[Path]:
    return [photo(root / f"p{i}.png", seed=seed + i) for i in range(n)]


def paths_in(store: Store, root: Path) -> set[str]:
    return {p for p in store.files_under() if p.startswith(str(root) + os.sep)}


def test_an_emptied_root_is_offline_and_the_other_roots_index_normally(tmp_path: Path, store: Store) -> None:
    nas, home = tmp_path / "nas", tmp_path / "home"
    photos(nas, 3)
    kept = photos(home, 2, seed=10)
    run(store, nas, home)
    # The NAS is unmounted: the mount point stays behind as an empty folder.
    for p in nas.iterdir():
        p.unlink()
    kept[0].unlink()
    photo(home / "new.png", seed=20)
    r = run(store, nas, home)
    assert [(o.path, o.files, o.reason) for o in r.offline] == [(str(nas), 3, "empty")]
    assert len(paths_in(store, nas)) == 3
    assert (r.new, r.removed) == (1, 1)  # home was indexed and pruned as usual
    assert recorded_roots(store)[str(nas)].state == "offline"
    r = run(store, nas, home, prune_offline=True)
    assert (r.offline, r.removed) == ([], 3) and paths_in(store, nas) == set()


def test_a_deleted_root_is_offline_until_prune_offline_forgets_it(tmp_path: Path, store: Store) -> None:
    nas = tmp_path / "nas"
    photos(nas / "2024", 2)
    run(store, nas)
    shutil.rmtree(nas)
    r = run(store, nas)
    assert [(o.files, o.reason) for o in r.offline] == [(2, "missing")] and r.removed == 0
    assert len(paths_in(store, nas)) == 2
    r = run(store, nas, prune_offline=True)
    assert r.removed == 2 and paths_in(store, nas) == set() and str(nas) not in recorded_roots(store)


def test_a_root_on_another_device_than_recorded_is_offline(tmp_path: Path, store: Store) -> None:
    nas = tmp_path / "nas"
    files = photos(nas, 3)
    run(store, nas)
    rec = recorded_roots(store)[str(nas)]
    assert rec.st_dev == os.stat(nas).st_dev and rec.files == 3 and rec.kind == "root"
    # Tests cannot mount: record the device the root was on as another one, as after an unmount
    # where something else now sits at the same path.
    with store.transaction():
        put_roots(store, [RootRecord(rec.path, rec.kind, rec.st_dev + 1, rec.files, "online", rec.last_seen)])
    files[0].unlink()
    r = run(store, nas)
    assert [o.reason for o in r.offline] == ["on another device than when indexed"]
    assert r.removed == 0 and len(paths_in(store, nas)) == 3
    # --prune-offline accepts the root as it is now: walked, pruned of what is really gone,
    # and its present device recorded.
    r = run(store, nas, prune_offline=True)
    assert (r.offline, r.removed) == ([], 1)
    assert recorded_roots(store)[str(nas)].st_dev == os.stat(nas).st_dev
    assert run(store, nas).offline == []


def test_a_mount_point_inside_a_root_is_recorded_and_protected(tmp_path: Path, store: Store) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on another file system than the temporary directory")
    drive = Path(tempfile.mkdtemp(dir=shm, prefix="mcphotos-test-"))
    try:
        home = tmp_path / "home"
        photos(home, 1)
        photos(drive, 2, seed=5)
        (home / "nas").symlink_to(drive)  # a folder of the root that lives on another device
        run(store, home)
        rec = recorded_roots(store)[str(home / "nas")]
        assert (rec.kind, rec.st_dev, rec.files) == ("mount", os.stat(drive).st_dev, 2)
        # Unmounted: an empty folder of the root's own file system takes its place.
        (home / "nas").unlink()
        (home / "nas").mkdir()
        r = run(store, home)
        assert [(o.path, o.files) for o in r.offline] == [(str(home / "nas"), 2)]
        assert r.removed == 0 and len(paths_in(store, home)) == 3
    finally:
        shutil.rmtree(drive)


def test_an_unreadable_folder_prunes_nothing_beneath_it_and_is_reported_once(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    photos(root / "locked", 2)
    gone = photos(root / "open", 2, seed=10)
    code = f"""
import json, sys
from mcphotos.indexing.indexer import Indexer, IndexOptions
from mcphotos.store.database import Store
from tests.support.fakes import SPEC, FakeEncoder
store = Store({str(tmp_path / "store")!r}, {{"name": "fake", "source": "test"}})
skipped = []
r = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1), on_skip=lambda p, why: skipped.append([p, why])
            ).index([{str(root)!r}])
print(json.dumps({{"removed": r.removed, "skipped": skipped, "files": sorted(store.files_under())}}))
"""
    run_unprivileged(code)
    os.chmod(root / "locked", 0)
    gone[0].unlink()
    try:
        out = json.loads(run_unprivileged(code).stdout)
    finally:
        os.chmod(root / "locked", 0o755)
    assert out["removed"] == 1  # the deleted file of the readable folder
    assert [p for p, _ in out["skipped"]] == [str(root / "locked")]
    assert "permission denied" in out["skipped"][0][1]
    assert sum(p.startswith(str(root / "locked")) for p in out["files"]) == 2
