"""Paths and connections are normalized in one place: `~` roots, and every SQLite connection."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcphotos.library import Library
from mcphotos.store.check import CheckReport, _rebuild_database
from mcphotos.store.database import Store
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo


def test_a_tilde_root_is_the_same_root_as_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    for i in range(3):
        photo(tmp_path / "me" / "pics" / f"{i}.png", seed=i)
    with Library(home=tmp_path / "home", engine_factory=FakeEncoder, preprocess=SPEC) as lib:
        assert lib.index(["~/pics"]).new == 3
        again = lib.index(["~/pics"])
        assert (again.unchanged, again.new, again.hashed) == (3, 0, 0)  # nothing re-hashed
        (tmp_path / "me" / "pics" / "1.png").unlink()
        assert lib.index(["~/pics"]).removed == 1  # the deleted file is pruned
        assert lib.index([str(tmp_path / "me" / "pics")]).unchanged == 2  # and the absolute path agrees


def test_a_rebuilt_database_keeps_the_connection_settings(tmp_path: Path) -> None:
    with Library(home=tmp_path / "home", engine_factory=FakeEncoder, preprocess=SPEC) as lib:
        photo(tmp_path / "pics" / "a.png", seed=1)
        lib.index([str(tmp_path / "pics")])
        store_dir = lib.store_dir
    with Store(store_dir) as store:
        _rebuild_database(store, CheckReport())
        pragmas = {p: store.conn.execute(f"PRAGMA {p}").fetchone()[0]
                   for p in ("foreign_keys", "synchronous", "journal_mode")}
        assert pragmas == {"foreign_keys": 1, "synchronous": 1, "journal_mode": "wal"}
        # foreign_keys is what makes deleting an image cascade to its tags.
        h = store.conn.execute("SELECT hash FROM images").fetchone()[0]
        store.conn.execute("INSERT INTO tags (hash, label_set, label, score, tagged_at) "
                           "VALUES (?, 's', 'l', 0.9, 0)", (h,))
        store.conn.execute("DELETE FROM images WHERE hash = ?", (h,))
        assert store.conn.execute("SELECT COUNT(*) FROM tags").fetchone()[0] == 0
