"""`merge`: vectors (with tags, captions, signatures) by content hash from another store or an export."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from mcphotos.captions.captioning import Candidate, save_captions
from mcphotos.library import Library
from mcphotos.merging.merger import MergeRefused
from mcphotos.store.database import Store, vector_to_blob
from mcphotos.tagging.tagstore import replace_tags
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo

SPEC64 = type(SPEC)(size=(64, 64), mean=SPEC.mean, std=SPEC.std, interpolation=SPEC.interpolation)


def lib(home: Path, **kw: object) -> Library:
    kw.setdefault("preprocess", SPEC)
    return Library(home=home, engine_factory=FakeEncoder, **kw)  # type: ignore[arg-type]


def photos(folder: Path, seeds: range) -> Path:
    for s in seeds:
        photo(folder / f"p{s}.png", seed=s)
    return folder


def table_dump(store_dir: Path) -> str:
    """Everything merge may write, without the row ids and times (a digest to compare)."""
    with Store(store_dir, create=False) as st:
        rows = [st.conn.execute("SELECT hash, vector, width, height, taken_at, phash, colors, detail, duration "
                                "FROM images ORDER BY hash").fetchall(),
                st.conn.execute("SELECT hash, label_set, label, score FROM tags ORDER BY 1, 2, 3").fetchall(),
                st.conn.execute("SELECT hash, captioner, method, rank, text FROM captions ORDER BY 1, 2, 3, 4"
                                ).fetchall(),
                st.conn.execute("SELECT key, value FROM meta WHERE key IN ('model', 'preprocess') ORDER BY key"
                                ).fetchall()]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


@pytest.fixture
def source(tmp_path: Path) -> dict:
    """A store ("the GPU box") holding 6 photos, 2 of them tagged and 1 captioned."""
    pics = photos(tmp_path / "box", range(6))
    with lib(tmp_path / "box-home") as a:
        a.index([str(pics)])
        st = a.store()
        hashes = [r[0] for r in st.conn.execute("SELECT hash FROM images ORDER BY hash")]
        replace_tags(st, "animals", hashes[:2], [[("animals/dog", 0.9)], [("animals/cat", 0.7), ("x", 0.2)]])
        save_captions(st, hashes[0], "tiny-coca", "beam:3", [Candidate(1, "a dog", 0.31, 0.78, -1.2),
                                                              Candidate(2, "a cat", 0.2, 0.5, None)])
        store_dir = a.store_dir
    return {"dir": store_dir, "pics": pics, "hashes": hashes}


def test_merge_round_trip_then_index_embeds_nothing_and_a_second_merge_changes_nothing(
        source: dict, tmp_path: Path) -> None:
    home_pics = photos(tmp_path / "home-pics", range(4, 9))  # 4 and 5 are on both machines
    with lib(tmp_path / "home") as b:
        b.index([str(home_pics)])
        before = {h: b.store().vector_for_hash(h) for h in source["hashes"]}
        src_digest = hashlib.sha256((source["dir"] / "store.db").read_bytes()).hexdigest()
        r = b.merge(source["dir"])
        assert (r.new, r.present, r.conflicting, r.invalid) == (4, 2, 0, 0)
        assert (r.tags, r.captions, r.kind) == (3, 2, "store")
        # The source is read, never written (no migration, no WAL checkpoint).
        assert hashlib.sha256((source["dir"] / "store.db").read_bytes()).hexdigest() == src_digest
        with Store(source["dir"], create=False) as a:
            for h in source["hashes"]:
                mine = b.store().vector_for_hash(h)
                assert mine is not None and np.array_equal(mine, a.vector_for_hash(h))
                if before[h] is not None:
                    assert np.array_equal(mine, before[h])
        st = b.store()
        tags = st.conn.execute("SELECT hash, label, score FROM tags ORDER BY hash, label").fetchall()
        assert sorted(tags) == sorted([(source["hashes"][0], "animals/dog", 0.9),
                                       (source["hashes"][1], "animals/cat", 0.7), (source["hashes"][1], "x", 0.2)])
        assert [t for (t,) in st.conn.execute("SELECT text FROM captions ORDER BY rank")] == ["a dog", "a cat"]
        # Signatures travel with the vectors: dedup needs no re-read of the merged photos.
        assert st.conn.execute("SELECT COUNT(*) FROM images WHERE phash IS NULL OR colors IS NULL").fetchone()[0] == 0
        digest = table_dump(b.store_dir)
        again = b.merge(source["dir"])
        assert (again.new, again.present, again.tags, again.captions, again.signatures) == (0, 6, 0, 0, 0)
        assert table_dump(b.store_dir) == digest
        # Indexing the photos at home now reuses every merged vector: nothing is embedded.
        photos(tmp_path / "home-pics", range(0, 4))
        idx = b.index([str(home_pics)])
        assert (idx.embedded, idx.reused, idx.unchanged) == (0, 4, 5)
        # The search index covers the merged vectors.
        assert b.status().ann == "current"


def test_merge_fills_missing_signatures_and_keeps_the_target_on_a_conflict(source: dict, tmp_path: Path) -> None:
    pics = photos(tmp_path / "home-pics", range(0, 3))
    with lib(tmp_path / "home") as b:
        b.index([str(pics)])
        st = b.store()
        h0, h1 = sorted(r[0] for r in st.conn.execute("SELECT hash FROM images"))[:2]
        with st.transaction():
            st.conn.execute("UPDATE images SET phash = NULL, colors = NULL, detail = NULL WHERE hash = ?", (h0,))
        # The source's vector of h1 is another photo's: same bytes, different vector.
        with Store(source["dir"], create=False) as a, a.transaction():
            other = a.vector_for_hash(source["hashes"][5])
            assert other is not None
            a.conn.execute("UPDATE images SET vector = ? WHERE hash = ?", (vector_to_blob(other), h1))
        with Store(source["dir"], create=False) as a:
            replace_tags(a, "scenes", [h1], [[("scenes/beach", 0.8)]])
        mine = st.vector_for_hash(h1)
        r = b.merge(source["dir"])
        assert (r.new, r.present, r.conflicting, r.signatures) == (3, 2, 1, 1)
        assert np.array_equal(st.vector_for_hash(h1), mine)  # the target's vector is kept
        assert st.conn.execute("SELECT phash IS NOT NULL AND colors IS NOT NULL FROM images WHERE hash = ?",
                               (h0,)).fetchone()[0] == 1
        # Nothing of the source's about a conflicting hash comes along (h1's tags were made from its vector).
        assert st.conn.execute("SELECT COUNT(*) FROM tags WHERE hash = ? AND label_set = 'scenes'",
                               (h1,)).fetchone()[0] == 0


def test_merge_refuses_another_model_or_preprocessing_naming_both(source: dict, tmp_path: Path) -> None:
    with lib(tmp_path / "other-model", model="fake") as c, pytest.raises(MergeRefused) as e:
        c.merge(source["dir"])
    assert "MobileCLIP2-S0" in str(e.value) and "fake" in str(e.value)
    with lib(tmp_path / "other-pre", preprocess=SPEC64) as d:
        d.index([str(photos(tmp_path / "d", range(20, 21)))])
        digest = table_dump(d.store_dir)
        with pytest.raises(MergeRefused) as e:
            d.merge(source["dir"])
        assert "32x32" in str(e.value) and "64x64" in str(e.value)
        assert table_dump(d.store_dir) == digest  # nothing written


def test_merge_an_export_directory(source: dict, tmp_path: Path) -> None:
    with lib(tmp_path / "box-home") as a:
        photo(source["pics"] / "copy-of-p0.png", seed=0)  # two files, one hash: one row merged
        a.index([str(source["pics"])])
        assert a.export(tmp_path / "exp").rows == 7
    with lib(tmp_path / "home") as b:
        r = b.merge(tmp_path / "exp")
        assert (r.kind, r.new, r.present, r.tags) == ("export", 6, 0, 0)
        with Store(source["dir"], create=False) as a2:
            for h in source["hashes"]:
                assert np.array_equal(b.store().vector_for_hash(h), a2.vector_for_hash(h))
        assert b.merge(tmp_path / "exp").new == 0
    info = json.loads((tmp_path / "exp" / "info.json").read_text())
    info["preprocess"] = SPEC64.to_dict()
    (tmp_path / "exp" / "info.json").write_text(json.dumps(info))
    with lib(tmp_path / "home") as b, pytest.raises(MergeRefused):
        b.merge(tmp_path / "exp")


def test_cli_merge_reports_counts_and_refuses_with_one_line(source: dict, tmp_path: Path,
                                                            cli: Callable[..., object]) -> None:
    r = cli("merge", str(source["dir"]), "--json", "--store", tmp_path / "cli-home")
    data = json.loads(r.stdout.splitlines()[-1])  # type: ignore[attr-defined]
    assert (data["new"], data["present"], data["conflicting"]) == (6, 0, 0)
    assert "merged 6 images" in r.stderr and "6 new, 0 already present" in r.stderr  # type: ignore[attr-defined]
    # A home directory works too: its store of this model is found under models/.
    r = cli("merge", str(source["dir"].parent.parent), "--store", tmp_path / "cli-home")
    assert "0 new, 6 already present" in r.stderr  # type: ignore[attr-defined]
    r = cli("merge", str(source["dir"]), "--store", tmp_path / "cli-fake", "--model", "fake", code=1)
    lines = r.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "MobileCLIP2-S0" in lines[0] and "fake" in lines[0]
    cli("merge", str(tmp_path / "nowhere"), "--store", tmp_path / "cli-home", code=2)
