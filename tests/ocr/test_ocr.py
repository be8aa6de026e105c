"""OCR with the real RapidOCR models on text rendered here: recognition, storage per content hash,
resume, bad files, `text`, and `find --contains` (FTS5 folding, phrases, prefixes, filters).

The photos are indexed with the fake image encoder (tests/support/fakes.py): CLIP's meaning plays
no part here, and every OCR answer comes from the real engine, built once per test process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from mcphotos import Library
from mcphotos.errors import UsageError
from mcphotos.ocr.engine import OcrEngine, load_engine, reading_order
from mcphotos.ocr.textstore import counts, fts_query, stored_texts
from mcphotos.search.query import FindSpec
from tests.search.test_search_filters import FakeEngine
from tests.support.fakes import SPEC
from tests.support.textphotos import blank_photo, scene_with_text, text_photo


def stamp(path: Path, when: str) -> Path:
    ts = datetime.fromisoformat(when).timestamp()
    os.utime(path, (ts, ts))
    return path


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return load_engine()  # the process-wide engine: the library and the CLI below reuse it


@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory, engine: OcrEngine):
    tmp = tmp_path_factory.mktemp("ocr")
    pics = tmp / "pics"
    stamp(text_photo(pics / "2021" / "cafe.png", ["Café Müller", "Total 12.50"]), "2021-03-01T12:00:00")
    shutil.copy2(pics / "2021" / "cafe.png", pics / "2021" / "cafe-copy.png")
    stamp(text_photo(pics / "2023" / "invoice.jpg", ["Invoice 4711", "VAT 19%"], fmt="JPEG"),
          "2023-05-01T12:00:00")
    stamp(text_photo(pics / "phone" / "router.png", ["WiFi password", "hunter2"], bg="black", fg="white"),
          "2023-07-01T12:00:00")
    stamp(blank_photo(pics / "phone" / "sky.png"), "2023-07-02T12:00:00")
    encoder = FakeEngine()
    library = Library(home=tmp / "home", engine_factory=lambda: encoder, preprocess=SPEC)
    library.index([str(pics)])
    first = library.ocr()
    yield library, pics, first
    library.close()


def text_of(library: Library, path: Path) -> str:
    store = library.store()
    rec = store.get_file(str(path))
    assert rec is not None and rec.hash
    return stored_texts(store, [rec.hash])[rec.hash].result.text


def found(library: Library, **spec: object) -> list[str]:
    return sorted(os.path.basename(h.path) for h in library.run_find(FindSpec(**spec)))  # type: ignore[arg-type]


# -- recognition and storage -----------------------------------------------------------------------


def test_real_models_read_rendered_text(lib) -> None:
    library, pics, _ = lib
    assert text_of(library, pics / "2021" / "cafe.png") == "Café Müller\nTotal 12.50"
    assert text_of(library, pics / "2023" / "invoice.jpg") == "Invoice 4711\nVAT 19%"
    assert text_of(library, pics / "phone" / "router.png") == "WiFi password\nhunter2"  # light on dark


def test_results_carry_boxes_confidences_and_engine(lib, engine: OcrEngine) -> None:
    library, pics, _ = lib
    rec = library.store().get_file(str(pics / "2023" / "invoice.jpg"))
    assert rec is not None and rec.hash
    result = stored_texts(library.store(), [rec.hash])[rec.hash].result
    assert (result.engine, result.version, result.models) == ("rapidocr", engine.version, engine.models)
    assert result.models == "PP-OCRv6_det_small.onnx + PP-OCRv6_rec_small.onnx"
    first, second = result.lines
    assert first.confidence > 0.9 and second.confidence > 0.9
    # The first line's box lies above the second's, inside the 360-pixel-wide photo.
    assert max(y for _, y in first.box) <= min(y for _, y in second.box) + 2
    assert all(0 <= x <= 360 for line in result.lines for x, _ in line.box)


def test_each_content_is_read_once_and_no_text_is_recorded(lib) -> None:
    library, pics, first = lib
    # 5 files, 4 contents (the copy shares its original's hash): one without text.
    assert (first.files, first.read, first.with_text, first.without_text, first.failed) == (5, 4, 3, 1, 0)
    sky = library.store().get_file(str(pics / "phone" / "sky.png"))
    assert sky is not None and sky.hash
    stored = stored_texts(library.store(), [sky.hash])[sky.hash]
    assert stored.result.lines == () and stored.error is None
    again = library.ocr()
    assert (again.read, again.already) == (0, 4)  # the text-less photo is not asked again either
    assert counts(library.store()).photos == 4


def test_small_text_in_a_large_photo_is_read_and_a_blank_one_is_not(tmp_path: Path, engine: OcrEngine) -> None:
    # 12 MP phone photos: the decode workers' probe sees them at 640 pixels, where this print is
    # 6 pixels tall; it finds the text, and the photo is read again at 2000 pixels.
    pics = tmp_path / "pics"
    pics.mkdir()
    (pics / "receipt.jpg").write_bytes(scene_with_text((4032, 3024), 40, ["Total 12.50", "Kalomiru thank you"]))
    (pics / "wall.jpg").write_bytes(scene_with_text((4032, 3024), 0, []))
    encoder = FakeEngine()
    with Library(home=tmp_path / "home", engine_factory=lambda: encoder, preprocess=SPEC) as library:
        library.index([str(pics)])
        report = library.ocr()
        assert (report.with_text, report.without_text, report.failed) == (1, 1, 0)
        assert text_of(library, pics / "receipt.jpg") == "Total 12.50\nKalomiru thank you"
        rec = library.store().get_file(str(pics / "receipt.jpg"))
        assert rec is not None and rec.hash
        xs = [x for ln in stored_texts(library.store(), [rec.hash])[rec.hash].result.lines for x, _ in ln.box]
        assert min(xs) > 0.6 * 4032 - 10 and max(xs) < 4032  # boxes in the original photo's pixels
        assert found(library, contains=("kalomiru",)) == ["receipt.jpg"]


def test_reading_order_puts_side_by_side_boxes_on_one_row(tmp_path: Path, engine: OcrEngine) -> None:
    from PIL import Image, ImageDraw

    from tests.support.textphotos import font

    img = Image.new("RGB", (420, 90), "white")
    d = ImageDraw.Draw(img)
    d.text((12, 12), "Subtotal", font=font(24), fill="black")
    d.text((300, 14), "9.90", font=font(24), fill="black")  # a little lower, still the same row
    d.text((12, 52), "Total", font=font(24), fill="black")
    result = engine.recognize(np.asarray(img))
    assert result.text == "Subtotal 9.90\nTotal"
    assert reading_order(list(reversed(result.lines))) == list(result.lines)


# -- find --contains -------------------------------------------------------------------------------


def test_contains_folds_case_and_diacritics(lib) -> None:
    library, _, _ = lib
    assert found(library, contains=("cafe",)) == ["cafe-copy.png", "cafe.png"]
    assert found(library, contains=("CAFÉ",)) == ["cafe-copy.png", "cafe.png"]
    assert found(library, contains=("muller",)) == ["cafe-copy.png", "cafe.png"]
    assert found(library, contains=("hunter2",)) == ["router.png"]


def test_contains_phrases_prefixes_and_all_must_match(lib) -> None:
    library, _, _ = lib
    assert found(library, contains=('"invoice 4711"',)) == ["invoice.jpg"]
    assert found(library, contains=('"4711 invoice"',)) == []  # a phrase keeps its order
    assert found(library, contains=("invo*",)) == ["invoice.jpg"]
    assert found(library, contains=("invo",)) == []  # a bare word is a whole word
    assert found(library, contains=("total", "cafe")) == ["cafe-copy.png", "cafe.png"]
    assert found(library, contains=("total", "vat")) == []
    assert found(library, contains=("total vat",)) == []  # words of one value: all of them too
    assert found(library, contains=("wifi",)) == ["router.png"]


def test_contains_composes_with_filters_queries_and_cutoffs(lib) -> None:
    library, pics, _ = lib
    assert found(library, contains=("hunter2",), in_dirs=(str(pics / "2021"),)) == []
    assert found(library, contains=("cafe",), in_dirs=(str(pics / "2021"),)) == ["cafe-copy.png", "cafe.png"]
    assert found(library, contains=("invoice",), exts=(".jpg",)) == ["invoice.jpg"]
    assert found(library, contains=("invoice",), exts=(".png",)) == []
    assert found(library, contains=("wifi",), after="2023-06-01T00:00:00") == ["router.png"]
    assert found(library, contains=("wifi",), before="2023-06-01T00:00:00") == []
    # With a query (words, or an example photo) the ranking is CLIP's, restricted to the text matches.
    assert found(library, text="a receipt", contains=("total",)) == ["cafe-copy.png", "cafe.png"]
    assert found(library, images=(str(pics / "phone" / "sky.png"),), contains=("4711",)) == ["invoice.jpg"]
    assert found(library, text="a receipt", contains=("total",), auto_cut=True, relative=0.5) != []
    assert found(library, contains=("nothing-like-this",), text="a receipt") == []
    hits = library.run_find(FindSpec(text="a receipt", contains=("cafe",), k=1))
    assert len(hits) == 1 and hits[0].snippet == "[Café] Müller Total 12.50"


def test_contains_alone_ranks_best_text_match_first(lib) -> None:
    library, _, _ = lib
    hits = library.run_find(FindSpec(contains=("4711",)))
    assert [os.path.basename(h.path) for h in hits] == ["invoice.jpg"]
    assert hits[0].snippet == "Invoice [4711] VAT 19%" and hits[0].score > 0
    # "total" is in the café receipt only once, "cafe" too: --relative and --min-score cut on BM25.
    both = library.run_find(FindSpec(contains=("total",), k=1))
    assert len(both) == 1
    assert library.run_find(FindSpec(contains=("total",), min_score=1e9)) == []


def test_fts_query_is_never_raw_syntax() -> None:
    assert fts_query(["AND", "4711-A"]) == '"AND" AND "4711-A"'
    assert fts_query(['"total 12"*', 'say "hi"']) == '"total 12"* AND "say" AND "hi"'
    with pytest.raises(UsageError, match="no words"):
        fts_query(["- *"])
    with pytest.raises(UsageError, match="unterminated"):
        fts_query(['"open'])


def test_cli_find_contains_json_snippet_and_stays_light(lib, cli) -> None:
    library, pics, _ = lib
    home = str(library.home)
    r = cli("find", "--contains", "cafe", "--json", "--store", home)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [Path(x["path"]).name for x in rows] == ["cafe-copy.png", "cafe.png"]
    assert rows[0]["snippet"] == "[Café] Müller Total 12.50"
    # Neither CLIP nor the OCR engine is loaded to search text already read.
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom mcphotos.cli import app\n"
            f"r = CliRunner().invoke(app, ['find', '--contains', 'hunter2', '--paths', '--store', {home!r}])\n"
            "assert r.exit_code == 0, r.output\nprint(r.stdout.strip())\n"
            "print([m for m in ('torch', 'open_clip', 'rapidocr', 'onnxruntime', 'cv2') if m in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [str(pics / "phone" / "router.png"), "[]"]


def test_album_saves_contains(lib, cli) -> None:
    library, _, _ = lib
    home = str(library.home)
    cli("album", "save", "receipts", "--contains", "total", "--contains", '"invoice 4711"', "--store", home)
    r = cli("album", "list", "--json", "--store", home)
    album = json.loads(r.stdout.splitlines()[0])
    assert album["spec"]["contains"] == ["total", '"invoice 4711"']
    assert "--contains total --contains '\"invoice 4711\"'" in album["query"]
    cli("album", "delete", "receipts", "--store", home)


# -- text ------------------------------------------------------------------------------------------


def test_text_command_prints_stored_and_on_the_fly(lib, cli, tmp_path: Path) -> None:
    library, pics, _ = lib
    home = str(library.home)
    r = cli("text", str(pics / "2023" / "invoice.jpg"), "--store", home)
    assert r.stdout == "Invoice 4711\nVAT 19%\n"
    # A photo the store has never seen: recognized now, and the store is left as it was.
    outside = text_photo(tmp_path / "note.png", ["IBAN DE89 3704"])
    before = counts(library.store())
    r = cli("text", str(outside), str(pics / "phone" / "sky.png"), "--json", "--store", home)
    note, sky = (json.loads(line) for line in r.stdout.splitlines())
    assert (note["source"], note["text"]) == ("recognized", "IBAN DE89 3704")
    assert note["lines"][0]["confidence"] > 0.9 and len(note["lines"][0]["box"]) == 4
    assert (sky["source"], sky["lines"]) == ("store", [])
    assert counts(library.store()) == before
    r = cli("text", str(outside), str(pics / "2021" / "cafe.png"), "--store", home)
    assert r.stdout == f"{outside}: IBAN DE89 3704\n{pics / '2021' / 'cafe.png'}: Café Müller\n" \
                       f"{pics / '2021' / 'cafe.png'}: Total 12.50\n"


# -- textures read as glyphs ---------------------------------------------------------------------------


def test_a_tilted_line_is_as_thick_as_it_is_tall() -> None:
    import math

    from mcphotos.ocr.engine import line_thickness

    angle = math.radians(10)
    w, h = 1000.0, 40.0
    corners = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)]
    cos, sin = math.cos(angle), math.sin(angle)
    tilted = [(x * cos - y * sin, x * sin + y * cos) for x, y in corners]
    assert abs(line_thickness(tilted) - h) < 1e-6  # while its vertical extent is over 200


def test_short_unsure_glyphs_a_fifth_of_the_photo_thick_are_a_texture() -> None:
    from mcphotos.ocr.engine import OcrLine, is_texture

    def square(side: float) -> tuple[tuple[float, float], ...]:
        return ((0.0, 0.0), (side, 0.0), (side, side), (0.0, side))

    assert is_texture(OcrLine("茶", 0.69, square(870)), short_side=1600)  # what a ladybird's spots gave
    assert not is_texture(OcrLine("茶", 0.95, square(870)), short_side=1600)  # read with confidence: a sign
    assert not is_texture(OcrLine("茶", 0.69, square(200)), short_side=1600)  # small print stays, sure or not
    assert not is_texture(OcrLine("Grand Hotel", 0.69, square(870)), short_side=1600)  # words, not a glyph or two


def test_a_big_title_is_read_and_kept(tmp_path: Path, engine: OcrEngine) -> None:
    # A slide's title a third of the photo tall: far past the texture rule's thickness, kept for its confidence.
    path = text_photo(tmp_path / "title.png", ["Q3"], size=120, width=420)
    from PIL import Image

    result = engine.recognize(np.asarray(Image.open(path).convert("RGB")))
    assert [line.text for line in result.lines] == ["Q3"]
