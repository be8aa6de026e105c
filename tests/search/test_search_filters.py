"""Filters, query by example, albums, sheets, embed and export through the library, with a fake encoder.

The fake encoder embeds a photo as its colour layout, so a photo's nearest neighbour is itself
(score 1): enough to check plumbing exactly. Meaning is tested with the tiny CLIP elsewhere.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcphotos import Library
from mcphotos.cli.sheets import SheetItem, render_sheet
from mcphotos.errors import UsageError
from mcphotos.export import export_store, write_npy
from mcphotos.indexing.indexer import IndexOptions
from mcphotos.search.albums import MANIFEST, AlbumFolderError, list_albums, save_album, sync_links
from mcphotos.search.query import FindSpec, parse_date, parse_exts
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo


class FakeEngine(FakeEncoder):
    preprocess = SPEC

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        rng = [np.random.default_rng(abs(hash(t)) % 2**32) for t in texts]
        v = np.stack([r.normal(size=self.dim) for r in rng]).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def stamp(path: Path, when: str) -> Path:
    ts = datetime.fromisoformat(when).timestamp()
    os.utime(path, (ts, ts))
    return path


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("lib")
    pics = tmp_path / "pics"
    stamp(photo(pics / "2021" / "a.jpg", seed=1, fmt="JPEG"), "2021-03-01T12:00:00")
    stamp(photo(pics / "2021" / "b.png", seed=2), "2021-09-01T12:00:00")
    stamp(photo(pics / "2023" / "c.JPEG", seed=3, fmt="JPEG"), "2023-05-01T12:00:00")
    stamp(photo(pics / "2023" / "d.webp", seed=4, fmt="WEBP"), "2023-07-01T12:00:00")
    # EXIF says 2019, the file's mtime says 2023: the capture date wins.
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:12:24 18:30:00"
    img = Image.open(photo(tmp_path / "tmp.jpg", seed=5, fmt="JPEG"))
    (pics / "2023").mkdir(parents=True, exist_ok=True)
    img.save(pics / "2023" / "e.jpg", exif=exif)
    stamp(pics / "2023" / "e.jpg", "2023-08-01T12:00:00")
    engine = FakeEngine()
    library = Library(home=tmp_path / "home", engine_factory=lambda: engine, preprocess=SPEC)
    library.index([str(pics)], options=IndexOptions(workers=1))
    library.pics = pics  # type: ignore[attr-defined]
    library.fake = engine  # type: ignore[attr-defined]
    yield library
    library.close()


def names(hits) -> list[str]:
    return [Path(h.path).name for h in hits]


def test_query_by_example_from_the_store_loads_no_model(lib) -> None:
    before = lib.fake.images
    hits = lib.run_find(FindSpec(images=(str(lib.pics / "2021" / "b.png"),), k=3))
    assert names(hits)[0] == "b.png" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert lib.fake.images == before  # the stored vector was reused by path


def test_query_by_example_outside_the_store_embeds_on_the_fly(lib, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "copy.png"
    outside.parent.mkdir()
    outside.write_bytes((lib.pics / "2023" / "d.webp").read_bytes())  # same bytes: found by hash
    before = lib.fake.images
    hits = lib.run_find(FindSpec(images=(str(outside),), k=1))
    assert names(hits) == ["d.webp"] and lib.fake.images == before
    new = photo(tmp_path / "elsewhere" / "new.png", seed=3)  # the pixels of c.JPEG, other bytes
    hits = lib.run_find(FindSpec(images=(str(new),), k=1))
    assert names(hits) == ["c.JPEG"] and lib.fake.images == before + 1
    with pytest.raises(UsageError, match="no such photo"):
        lib.run_find(FindSpec(images=(str(tmp_path / "nope.jpg"),)))


def test_combined_image_terms(lib) -> None:
    a, b = (str(lib.pics / "2021" / n) for n in ("a.jpg", "b.png"))
    hits = lib.run_find(FindSpec(text=f"@{a} - 0.5*@{b}", k=5))
    assert names(hits)[0] == "a.jpg" and names(hits)[-1] == "b.png"


@pytest.mark.parametrize(("spec", "expected"), [
    (FindSpec(in_dirs=("2021",)), {"a.jpg", "b.png"}),
    (FindSpec(exts=parse_exts(["jpg"])), {"a.jpg", "c.JPEG", "e.jpg"}),
    (FindSpec(exts=parse_exts(["png", "webp"])), {"b.png", "d.webp"}),
    (FindSpec(after=parse_date("2023")), {"c.JPEG", "d.webp"}),  # e.jpg: EXIF 2019 beats its 2023 mtime
    (FindSpec(before=parse_date("2020")), {"e.jpg"}),
    (FindSpec(after=parse_date("2021-06"), before=parse_date("2023-06-01")), {"b.png", "c.JPEG"}),
    (FindSpec(in_dirs=("2023",), exts=(".jpg", ".jpeg"), after=parse_date("2020")), {"c.JPEG"}),
])
def test_filters_compose(lib, spec: FindSpec, expected: set[str]) -> None:
    spec = FindSpec(text="anything", k=10, in_dirs=tuple(str(lib.pics / d) for d in spec.in_dirs), exts=spec.exts,
                    after=spec.after, before=spec.before)
    assert set(names(lib.run_find(spec))) == expected
    # The same filters with a query by example: the filter decides, not the query.
    spec2 = FindSpec(images=(str(lib.pics / "2021" / "a.jpg"),), k=10, in_dirs=spec.in_dirs, exts=spec.exts,
                     after=spec.after, before=spec.before)
    assert set(names(lib.run_find(spec2))) == expected


def test_tag_filter_composes_with_the_real_tag_tables(lib) -> None:
    from mcphotos.tagging.tagger import replace_tags

    store = lib.store()
    by_name = {Path(p).name: h for p, h in ((f.path, f.hash) for f in store.files_under().values())}
    tagged = {by_name["b.png"]: 0.9, by_name["d.webp"]: 0.7}  # "seaside" on two photos
    replace_tags(store, "scenes", list(tagged), [[("seaside", score)] for score in tagged.values()])
    assert set(names(lib.run_find(FindSpec(text="x", k=10, tags=("seaside",))))) == {"b.png", "d.webp"}
    hits = lib.run_find(FindSpec(images=(str(lib.pics / "2021" / "a.jpg"),), tags=("seaside",),
                                 in_dirs=(str(lib.pics / "2023"),)))
    assert names(hits) == ["d.webp"]  # composes with --in
    only_tags = lib.run_find(FindSpec(tags=("seaside",)))  # no query: the tagged photos, best tag score first
    assert [(Path(h.path).name, h.score) for h in only_tags] == [("b.png", 0.9), ("d.webp", 0.7)]
    assert lib.run_find(FindSpec(text="x", tags=("cat",))) == []
    assert lib.tags_for_hashes([by_name["b.png"], by_name["a.jpg"]]) == {by_name["b.png"]: ["seaside"]}


def test_album_sync_adds_removes_and_never_touches_foreign_files(lib, tmp_path: Path) -> None:
    store = lib.store()
    save_album(store, "old", FindSpec(text="x", in_dirs=(str(lib.pics / "2021"),)))
    with pytest.raises(UsageError, match="exists"):
        save_album(store, "old", FindSpec(text="y"))
    assert [a.name for a in list_albums(store)] == ["old"]
    out = tmp_path / "album"
    out.mkdir()
    (out / "a.jpg").write_text("the user's own file")  # same name as a match: must survive
    hits = lib.run_find(list_albums(store)[0].spec)
    r1 = sync_links("old", [(h.path, h.hash) for h in hits], out)
    assert (r1.added, r1.removed) == (2, 0)
    assert (out / "a.jpg").read_text() == "the user's own file"
    links = sorted(p.name for p in out.iterdir() if p.is_symlink())
    assert links == ["a-" + hits[[names(hits).index("a.jpg")][0]].hash[:8] + ".jpg", "b.png"]
    # The query changes: b.png leaves, c.JPEG arrives; a link the user replaced is left alone.
    b_link = out / "b.png"
    a_link = out / links[0]
    a_link.unlink()
    a_link.write_text("replaced by the user")
    hits2 = [h for h in lib.run_find(FindSpec(text="x", k=10)) if Path(h.path).name in ("a.jpg", "c.JPEG")]
    r2 = sync_links("old", [(h.path, h.hash) for h in hits2], out)
    assert not os.path.lexists(b_link) and r2.removed == 1 and r2.foreign == [a_link.name]
    assert a_link.read_text() == "replaced by the user"
    assert os.readlink(out / "c.JPEG") == str(lib.pics / "2023" / "c.JPEG")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["album"] == "old" and a_link.name not in manifest["links"]
    r3 = sync_links("old", [(h.path, h.hash) for h in hits2], out)  # idempotent
    assert (r3.added, r3.removed, r3.kept) == (0, 0, 2)
    with pytest.raises(AlbumFolderError, match="holds the album"):
        sync_links("other", [], out)


def test_export_layout(lib, tmp_path: Path) -> None:
    report = export_store(lib.store(), tmp_path / "export")
    vecs = np.load(tmp_path / "export" / "img_emb" / "img_emb_0.npy")
    rows = [json.loads(x) for x in (tmp_path / "export" / "metadata" / "metadata_0.jsonl").read_text().splitlines()]
    assert report.rows == len(rows) == len(vecs) == 5 and vecs.shape[1] == FakeEncoder.dim
    store = lib.store()
    for row, v in zip(rows, vecs, strict=True):
        assert np.allclose(store.vector_for_hash(row["hash"]), v)
        assert os.path.exists(row["image_path"]) and row["tags"] == []
    e = next(r for r in rows if r["image_path"].endswith("e.jpg"))
    assert e["taken_at"] == "2019-12-24T18:30:00" and e["mtime"].startswith("2023-08-01")
    info = json.loads((tmp_path / "export" / "info.json").read_text())
    assert info["count"] == 5 and info["dim"] == FakeEncoder.dim


def test_write_npy_with_paths_file(tmp_path: Path) -> None:
    v = np.eye(3, dtype=np.float32)
    side = write_npy(tmp_path / "v.npy", v, ["/a", "/b c", "/\udcff"])
    assert np.array_equal(np.load(tmp_path / "v.npy"), v)
    assert side.read_bytes() == b"/a\n/b c\n/\xff\n"
    with pytest.raises(UsageError, match="newline"):
        write_npy(tmp_path / "w.npy", v, ["a", "b\nc", "d"])


def test_sheet_draws_every_item_with_placeholders(tmp_path: Path) -> None:
    red = tmp_path / "red.png"
    Image.new("RGB", (300, 200), (220, 20, 20)).save(red)
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    items = [SheetItem(str(red), "#1  0.900\nred.png", highlight=True), SheetItem(str(bad), "#2\nbad.jpg"),
             SheetItem(str(red), "#3\nred.png")]
    report = render_sheet(items, tmp_path / "sheet.png", columns=2, thumb=100)
    assert report.items == 3 and report.unreadable == 1
    sheet = np.asarray(Image.open(tmp_path / "sheet.png").convert("RGB")).astype(int)
    assert report.size == (sheet.shape[1], sheet.shape[0]) and sheet.shape[1] == 2 * (100 + 2 * 4)
    red_px = (sheet[..., 0] > 180) & (sheet[..., 1] < 60)
    assert red_px[: sheet.shape[0] // 2, : sheet.shape[1] // 2].sum() > 100 * 60  # thumbnail 1, top left
    assert red_px[sheet.shape[0] // 2:, : sheet.shape[1] // 2].sum() > 100 * 60  # thumbnail 3, bottom left
    grey = (np.abs(sheet - 200).sum(axis=-1) < 6)
    assert grey[: sheet.shape[0] // 2, sheet.shape[1] // 2:].sum() > 90 * 90  # the placeholder, top right
    with pytest.raises(UsageError):
        render_sheet(items, tmp_path / "sheet.gif")


def test_commands_answered_from_the_store_do_not_import_torch(lib, tmp_path: Path) -> None:
    """find by example or by a cached text, albums and export never load the model (nor torch)."""
    import subprocess
    import sys

    lib.text_vectors(["a cached query"])  # the fake engine fills the text cache, as a first find would
    photo_ = str(lib.pics / "2021" / "a.jpg")
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mcphotos.cli import app\n"
        "r = CliRunner()\n"
        f"for args in (['find', '--image', {photo_!r}, '--json'], ['find', 'a cached query', '--ext', 'png'],\n"
        f"             ['find', 'a cached query - @{photo_}', '--auto-cut', '--after', '2021'],\n"
        f"             ['album', 'save', 'x', 'a cached query'],\n"
        f"             ['album', 'sync', 'x', '--to', {str(tmp_path / 'al')!r}],\n"
        f"             ['album', 'list'], ['export', {str(tmp_path / 'ex')!r}], ['embed', {photo_!r}]):\n"
        "    res = r.invoke(app, args)\n"
        "    assert res.exit_code == 0, (args, res.output)\n"
        "bad = [m for m in ('torch', 'open_clip', 'timm') if m in sys.modules]\n"
        "print('HEAVY' if bad else 'LIGHT', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "MCPHOTOS_HOME": str(lib.home)})
    assert out.returncode == 0 and out.stdout.startswith("LIGHT"), out.stdout + out.stderr
    assert len(os.listdir(tmp_path / "al")) > 1


def test_broad_filters_through_the_ann_index_match_exact_search(lib, monkeypatch: pytest.MonkeyPatch) -> None:
    import mcphotos.search.nearest as search_mod

    specs = [FindSpec(images=(str(lib.pics / "2021" / "a.jpg"),), k=k, exts=parse_exts(exts), after=after)
             for k in (1, 2, 10) for exts, after in ((["jpg"], None), ([], parse_date("2021-06")),
                                                     (["png", "webp", "jpg"], parse_date("2020")))]
    exact = [lib.run_find(s) for s in specs]
    assert lib.ann().load()  # the index exists, so the filtered ANN path is really taken below
    monkeypatch.setattr(search_mod, "EXACT_LIMIT", 0)
    via_ann = [lib.run_find(s) for s in specs]
    assert all(exact) and [[h.path for h in r] for r in via_ann] == [[h.path for h in r] for r in exact]
    assert np.allclose([h.score for r in via_ann for h in r], [h.score for r in exact for h in r], atol=1e-4)


def test_tag_filter_with_the_real_tagging_tables(lib) -> None:
    """Tags stored by the tagging feature restrict any query form, together with the other filters."""
    import time

    store = lib.store()
    by_name = {Path(f.path).name: f.hash for f in store.files_under().values()}
    with store.transaction() as c:
        c.executemany("INSERT OR REPLACE INTO tags(hash, label_set, label, score, tagged_at) VALUES(?, ?, ?, ?, ?)",
                      [(by_name["b.png"], "test", "places/beach", 0.8, time.time()),
                       (by_name["c.JPEG"], "test", "places/beach", 0.6, time.time()),
                       (by_name["a.jpg"], "test", "animals/dog", 0.9, time.time())])
    try:
        example = str(lib.pics / "2021" / "a.jpg")
        assert set(names(lib.run_find(FindSpec(images=(example,), k=10, tags=("beach",))))) == {"b.png", "c.JPEG"}
        assert names(lib.run_find(FindSpec(images=(example,), tags=("places",), after=parse_date("2022")))) == [
            "c.JPEG"]
        assert names(lib.run_find(FindSpec(tags=("beach",)))) == ["b.png", "c.JPEG"]  # by tag score
        assert lib.tags_for_hashes([by_name["a.jpg"]]) == {by_name["a.jpg"]: ["animals/dog"]}
    finally:
        with store.transaction() as c:
            c.execute("DELETE FROM tags")
