"""RAW files: real DNG bytes, decoded by LibRaw through rawpy (no mocks).

The DNGs are built in the test (tests/support/rawfiles.py): an RGGB mosaic plus an embedded
JPEG preview that can show a different picture, so each test knows which path was taken.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcphotos.errors import ImageError
from mcphotos.indexing.imaging import decode_for_model, model_input
from mcphotos.indexing.indexer import Indexer, IndexOptions
from mcphotos.indexing.raw import NEEDS_EXTRA, PREVIEW_FACTOR, decode_raw_for_model, load_raw_upright
from mcphotos.store.database import Store
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo
from tests.support.rawfiles import make_dng, preview_jpeg, scene
from tests.support.tools import require_module


@pytest.fixture(autouse=True)
def _rawpy() -> None:
    require_module("rawpy", "raw")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    yield s
    s.close()


def run(store: Store, *roots: Path, skips: list | None = None, **opts):
    on_skip = (lambda p, r: skips.append((p, r))) if skips is not None else None
    return Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=2, batch_size=4, **opts),
                   on_skip=on_skip).index([str(r) for r in roots])


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_a_big_enough_preview_is_decoded_instead_of_the_sensor_data(tmp_path: Path) -> None:
    # The preview (160 px) is at least twice the model input (32 px): it is what gets embedded.
    assert PREVIEW_FACTOR * SPEC.size[0] <= 160
    path = make_dng(tmp_path / "a.dng", preview=(160, 120), preview_seed=7)
    d = decode_raw_for_model(path.read_bytes(), SPEC)
    expected = decode_for_model(preview_jpeg(path), SPEC)
    assert np.array_equal(d.pixels, expected.pixels)
    # The facts stored beside the vector are the RAW's: full sensor size, capture time from its metadata.
    assert (d.width, d.height) == (320, 240)
    assert d.taken_at == "2023-07-14T09:30:05"
    assert d.phash is not None and d.colors is not None


def test_a_small_or_missing_preview_means_a_half_size_demosaic(tmp_path: Path) -> None:
    sensor = model_input(scene(320, 240, seed=0), (320, 240), 1, None, SPEC).pixels
    decoy = model_input(scene(320, 240, seed=7), (320, 240), 1, None, SPEC).pixels
    for name, preview in (("small.dng", (48, 36)), ("none.dng", None)):
        path = make_dng(tmp_path / name, preview=preview, preview_seed=7)
        d = decode_raw_for_model(path.read_bytes(), SPEC)
        # LibRaw's colour pipeline differs a little from the picture we mosaicked, but the scene is it.
        assert _diff(d.pixels, sensor) < 30 < _diff(d.pixels, decoy), name
        assert (d.width, d.height, d.taken_at) == (320, 240, "2023-07-14T09:30:05")
    # Forcing the demosaic on a file with a big preview gives the sensor's picture too.
    big = make_dng(tmp_path / "big.dng", preview_seed=7)
    assert _diff(decode_raw_for_model(big.read_bytes(), SPEC, demosaic=True).pixels, sensor) < 30


def test_the_raws_orientation_turns_preview_and_demosaic_alike(tmp_path: Path) -> None:
    path = make_dng(tmp_path / "r.dng", orientation=6)  # TIFF orientation 6: turn 90° clockwise to view
    data = path.read_bytes()
    upright = scene(320, 240, seed=0).transpose(Image.Transpose.ROTATE_270)
    want = model_input(upright, upright.size, 1, None, SPEC).pixels
    for demosaic in (False, True):
        d = decode_raw_for_model(data, SPEC, demosaic=demosaic)
        assert (d.width, d.height) == (240, 320)
        assert _diff(d.pixels, want) < 30, demosaic
    img, w, h, taken = load_raw_upright(data)  # for contact sheets: the preview, turned upright
    assert (w, h) == (120, 160) and taken == "2023-07-14T09:30:05"
    assert _diff(np.asarray(img), np.asarray(upright.resize((120, 160), Image.Resampling.BILINEAR))) < 10


def test_corrupt_and_oversized_raws_raise_one_clear_error(tmp_path: Path) -> None:
    good = make_dng(tmp_path / "g.dng").read_bytes()
    for data in (b"", b"not a raw file at all" * 50, good[:200]):
        with pytest.raises(ImageError):
            decode_raw_for_model(data, SPEC)
    with pytest.raises(ImageError, match="too large"):
        decode_raw_for_model(good, SPEC, max_pixels=320 * 240 - 1)


def test_index_embeds_raws_once_and_skips_a_corrupt_one_with_one_line(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    make_dng(root / "IMG_1.DNG", seed=1, taken="2021:02:03 04:05:06")  # upper-case extension
    make_dng(root / "IMG_2.dng", seed=2)
    truncated = make_dng(root / "IMG_3.dng", seed=3).read_bytes()[:300]
    (root / "IMG_3.dng").write_bytes(truncated)
    (root / "IMG_4.cr2").write_bytes(b"II*\0" + b"\0" * 400)  # another RAW extension, garbage inside
    skips: list = []
    r = run(store, root, skips=skips)
    assert (r.new, r.failed) == (2, 2)
    assert sorted(Path(p).name for p, _ in skips) == ["IMG_3.dng", "IMG_4.cr2"]
    taken = dict(store.conn.execute("SELECT f.path, i.taken_at FROM files f JOIN images i ON i.hash = f.hash"))
    assert taken[str(root / "IMG_1.DNG").encode()] == "2021-02-03T04:05:06"
    skips.clear()
    r2 = run(store, root, skips=skips)
    assert (r2.unchanged, r2.failed, skips) == (2, 2, [])  # known bad files are not retried every run


def test_a_raw_beside_its_jpeg_is_the_jpegs_companion_unless_both(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "pics"
    make_dng(root / "IMG_1.CR2.dng", seed=9)  # a different stem: not a pair
    make_dng(root / "IMG_1.dng", seed=1)
    photo(root / "IMG_1.JPG", seed=1, fmt="JPEG")
    make_dng(root / "IMG_2.nef.DNG", seed=2)
    photo(root / "other" / "IMG_1.jpg", seed=5, fmt="JPEG")  # same stem, other folder: no pair
    make_dng(root / "other" / "IMG_9.dng", seed=3)

    def indexed() -> set[str]:
        return {Path(p).relative_to(root).as_posix() for p in store.files_under([str(root)])}

    r = run(store, root)
    assert r.companions == 1 and r.new == 5
    assert "IMG_1.dng" not in indexed() and "IMG_1.JPG" in indexed()
    r = run(store, root, raw_pairs="both")
    assert (r.companions, r.new, r.unchanged) == (0, 1, 5)
    assert "IMG_1.dng" in indexed()
    r = run(store, root)  # back to the default: the RAW is forgotten as a photo, kept as a companion
    assert (r.companions, r.unchanged) == (1, 5)
    assert "IMG_1.dng" not in indexed()


def test_without_rawpy_each_raw_gets_one_line_and_is_not_recorded_as_failed(
        tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pics"
    make_dng(root / "a.dng", seed=1)
    make_dng(root / "b.DNG", seed=2)
    photo(root / "c.jpg", seed=3, fmt="JPEG")
    skips: list = []
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "rawpy", None)  # `import rawpy` now raises ImportError
        r = run(store, root, skips=skips)
        assert sorted((Path(p).name, why) for p, why in skips) == [("a.dng", NEEDS_EXTRA), ("b.DNG", NEEDS_EXTRA)]
        assert (r.new, r.failed, r.needs_extra) == (1, 0, {"raw": 2})
        with pytest.raises(ImageError, match=r"needs mcphotos\[raw\]"):
            decode_raw_for_model((root / "a.dng").read_bytes(), SPEC)
    r = run(store, root)  # the extra is back: the RAWs are indexed now, with no --retry-failed
    assert (r.new, r.unchanged, r.needs_extra) == (2, 1, {})


def test_cli_prints_the_missing_extra_line_per_raw_and_one_hint(
        tmp_path: Path, cli, tiny_args: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "pics"
    for i in range(3):
        make_dng(root / f"r{i}.dng", seed=i)
    monkeypatch.setitem(sys.modules, "rawpy", None)
    r = cli("index", root, *tiny_args)
    lines = r.stderr.splitlines()
    assert sorted(ln for ln in lines if ln.startswith("skipping")) == \
        [f"skipping {root / f'r{i}.dng'}: RAW support needs mcphotos[raw]" for i in range(3)]
    hints = [ln for ln in lines if "hint" in ln]
    assert len(hints) == 1 and "3 RAW files" in hints[0] and "mcphotos[raw]" in hints[0]


def test_contact_sheets_and_query_images_read_raws_too(tmp_path: Path) -> None:
    from mcphotos.cli.sheets import thumbnail
    from mcphotos.vectors import Vectors

    path = make_dng(tmp_path / "IMG_5.CR2.dng", orientation=6)
    thumb = thumbnail(str(path), 64)
    assert thumb is not None and thumb.size == (48, 64)  # upright: portrait
    vec = Vectors(None, FakeEncoder, lambda: SPEC).photos([str(path)])[str(path)]
    expected = FakeEncoder().encode_images(decode_raw_for_model(path.read_bytes(), SPEC).pixels[None])[0]
    assert np.allclose(vec.vector, expected)
