"""Which files belong to a photo (companions.py), and motion photos indexed as stills."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcphotos.indexing.companions import CompanionKind, RawPairs, companions_on_disk, find_companions
from mcphotos.indexing.imaging import decode_for_model
from mcphotos.indexing.indexer import Indexer, IndexOptions
from mcphotos.indexing.liveid import still_content_id, video_content_id
from mcphotos.store.database import Store
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.motion import live_still, live_video, motion_photo
from tests.support.photos import photo


def touch(*paths: Path) -> list[str]:
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return [str(p) for p in paths]


def test_find_companions_pairs_by_stem_in_the_same_folder(tmp_path: Path) -> None:
    d = tmp_path
    files = touch(d / "IMG_1.HEIC", d / "IMG_1.MOV", d / "IMG_1.aae", d / "IMG_1.HEIC.xmp",
                  d / "IMG_2.JPG", d / "img_2.cr2", d / "IMG_2.CR2.xmp", d / "IMG_2.xmp",
                  d / "IMG_3.CR2", d / "IMG_3.CR2.xmp",            # a lone RAW owns its sidecar
                  d / "IMG_4.png", d / "IMG_4.mov",                # a PNG is no Live Photo
                  d / "clip.mov",                                  # a video of its own
                  d / "sub" / "IMG_1.MOV")                         # another folder: not the HEIC's
    found = find_companions(files)
    kinds = {Path(p).name: sorted((Path(c.path).name, c.kind) for c in found.of(p)) for p in found.by_photo}
    assert kinds == {
        "IMG_1.HEIC": [("IMG_1.HEIC.xmp", CompanionKind.XMP), ("IMG_1.MOV", CompanionKind.LIVE),
                       ("IMG_1.aae", CompanionKind.AAE)],
        "IMG_2.JPG": [("IMG_2.CR2.xmp", CompanionKind.XMP), ("IMG_2.xmp", CompanionKind.XMP),
                      ("img_2.cr2", CompanionKind.RAW)],
        "IMG_3.CR2": [("IMG_3.CR2.xmp", CompanionKind.XMP)],
    }
    left_out = {Path(p).name for p in found.not_indexed()}
    assert {"IMG_1.MOV", "img_2.cr2"} <= left_out and not {"clip.mov", "IMG_4.mov", "IMG_3.CR2"} & left_out
    assert "img_2.cr2" not in {Path(p).name for p in found.not_indexed(RawPairs.BOTH)}
    assert "IMG_1.MOV" in {Path(p).name for p in found.not_indexed(RawPairs.BOTH)}  # a Live Photo stays one item


def test_companions_follow_a_renamed_photo(tmp_path: Path) -> None:
    files = touch(tmp_path / "IMG_1.JPG", tmp_path / "IMG_1.JPG.xmp", tmp_path / "IMG_1.xmp", tmp_path / "IMG_1.MOV")
    moved = {Path(c.path).name: c.path_for("/elsewhere/IMG_1~1.JPG") for c in companions_on_disk([files[0]])[files[0]]}
    assert moved == {"IMG_1.JPG.xmp": "/elsewhere/IMG_1~1.JPG.xmp", "IMG_1.xmp": "/elsewhere/IMG_1~1.xmp",
                     "IMG_1.MOV": "/elsewhere/IMG_1~1.MOV"}


def test_a_live_photo_is_one_item(tmp_path: Path) -> None:
    photo(tmp_path / "IMG_1.JPG", seed=1, fmt="JPEG")
    (tmp_path / "IMG_1.MOV").write_bytes(b"\0\0\0\x14ftypqt  ")
    everything = [str(p) for p in tmp_path.iterdir()]  # what a walk that also finds videos would list
    assert find_companions(everything).not_indexed() == {str(tmp_path / "IMG_1.MOV")}
    store = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    r = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1)).index([str(tmp_path)])
    assert r.new == 1 and list(store.files_under([str(tmp_path)])) == [str(tmp_path / "IMG_1.JPG")]
    store.close()


def test_a_live_photo_video_under_another_name_pairs_by_content_identifier(tmp_path: Path) -> None:
    uid, other = "1F2E3D4C-0000-4000-8000-ABCDEF012345", "99999999-0000-4000-8000-000000000000"
    img = Image.new("RGB", (64, 48), "red")
    still = live_still(tmp_path / "2023-07-14 09.30.05.jpg", img, uid)
    video = live_video(tmp_path / "IMG_0042.MOV", uid)
    (tmp_path / "IMG_0042.MOV.xmp").write_text("<x:xmpmeta/>")
    live_still(tmp_path / "lonely.jpg", img, other)  # an identifier no video shares
    live_video(tmp_path / "clip.mov", None)  # a plain video: no identifier
    assert (still_content_id(str(still)), video_content_id(str(video))) == (uid, uid)
    found = find_companions(str(p) for p in tmp_path.iterdir())
    assert {Path(c.path).name: c.kind for c in found.of(str(still))} == {
        "IMG_0042.MOV": CompanionKind.LIVE, "IMG_0042.MOV.xmp": CompanionKind.XMP}
    assert {Path(p).name for p in found.not_indexed()} == {"IMG_0042.MOV",
                                                          "IMG_0042.MOV.xmp"}
    # Wherever the still goes, the video takes its name.
    on_disk = {Path(c.path).name: c for c in companions_on_disk([str(still)])[str(still)]}
    assert on_disk["IMG_0042.MOV"].path_for("/d/IMG_7~1.jpg") == "/d/IMG_7~1.MOV"
    assert on_disk["IMG_0042.MOV.xmp"].path_for("/d/IMG_7~1.jpg") == "/d/IMG_7~1.MOV.xmp"


def test_content_identifier_readers_shrug_at_other_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mov"
    junk.write_bytes(b"\0\0\0\x08moov" + b"\xff" * 64)  # a moov with nothing in it
    (tmp_path / "short.mov").write_bytes(b"\0\0")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    photo(tmp_path / "plain.jpg", seed=1, fmt="JPEG")
    for name in ("junk.mov", "short.mov"):
        assert video_content_id(str(tmp_path / name)) is None
    for name in ("bad.jpg", "plain.jpg"):
        assert still_content_id(str(tmp_path / name)) is None


@pytest.mark.parametrize("vendor", ["google", "samsung"])
def test_a_motion_photo_indexes_as_its_still(tmp_path: Path, vendor: str) -> None:
    still = Image.open(photo(tmp_path / "plain.jpg", seed=4, fmt="JPEG")).convert("RGB")
    path = tmp_path / "pics" / "PXL_20240101_120000.MP.jpg"
    jpeg = motion_photo(path, still, vendor)
    data = path.read_bytes()
    assert len(data) > len(jpeg) + 500 and b"ftyp" in data[len(jpeg):]  # the video really is in there
    # The decode stops at the JPEG's end: the same pixels as the JPEG alone.
    assert np.array_equal(decode_for_model(data, SPEC).pixels, decode_for_model(jpeg, SPEC).pixels)
    store = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    skips: list = []
    r = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1),
                on_skip=lambda p, why: skips.append((p, why))).index([str(tmp_path / "pics")])
    assert (r.new, r.failed, r.companions, skips) == (1, 0, 0, [])
    assert list(store.files_under([str(tmp_path / "pics")])) == [str(path)]
    store.close()
