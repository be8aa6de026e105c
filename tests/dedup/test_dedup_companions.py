"""Companion files travel with their photo through dedup --move-to, --hardlink and undo."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.dedup.test_dedup import index, make_lib
from tests.dedup.test_dedup_actions import dedup, undo
from tests.support.photos import photo
from tests.support.rawfiles import make_dng

COMPANIONS = ("IMG_1.JPG.xmp", "IMG_1.xmp", "IMG_1.MOV", "IMG_1.AAE", "IMG_1.dng")


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    """pics/a/IMG_1.JPG (the keeper) and its exact copy pics/b/old/IMG_1.JPG, each with a full set of companions."""
    pics = tmp_path / "pics"
    keeper = photo(pics / "a" / "IMG_1.JPG", seed=1, fmt="JPEG")
    make_dng(pics / "a" / "IMG_1.dng", seed=1)
    (pics / "a" / "IMG_1.MOV").write_bytes(b"\0\0\0\x14ftypqt  live photo video")
    (pics / "a" / "IMG_1.JPG.xmp").write_text("<x:xmpmeta keeper/>")
    old = pics / "b" / "old"
    old.mkdir(parents=True)
    for name in ("IMG_1.JPG", "IMG_1.dng", "IMG_1.MOV"):  # the copy's RAW and video are copies too
        shutil.copy2(pics / "a" / name, old / name)
    (old / "IMG_1.JPG.xmp").write_text("<x:xmpmeta darktable/>")
    (old / "IMG_1.xmp").write_text("<x:xmpmeta adobe/>")
    (old / "IMG_1.AAE").write_text("<plist>edits</plist>")
    photo(pics / "a" / "other.jpg", seed=2, fmt="JPEG")
    home = tmp_path / "home"
    index(home, pics)
    assert keeper.exists()
    return pics, home


def test_move_to_carries_every_companion_and_undo_brings_all_back(library, tmp_path: Path) -> None:
    pics, home = library
    before = snapshot(pics)
    dest = tmp_path / "dups"
    r = dedup(home, str(pics), "--tier", "exact", "--keep", "shortest-path", "--move-to", str(dest), "--yes")
    assert "and their 5 companion files" in r.stderr and "moved 1 files and 5 companions" in r.stderr
    moved = snapshot(dest)
    assert {k for k in moved if not k.startswith("mcphotos-journal")} == \
        {"b/old/IMG_1.JPG", *(f"b/old/{n}" for n in COMPANIONS)}
    assert sorted(p.name for p in (pics / "b" / "old").iterdir()) == []  # nothing orphaned behind
    assert {k for k in snapshot(pics) if k.startswith("a/")} == {k for k in before if k.startswith("a/")}
    journal = next(dest.glob("mcphotos-journal-move-*.jsonl"))
    lines = [json.loads(ln) for ln in journal.read_text().splitlines()][1:]
    assert [ln.get("companion_of") for ln in lines] == [None] + [str(pics / "b" / "old" / "IMG_1.JPG")] * 5
    assert {ln["kind"] for ln in lines[1:]} == {"xmp", "live", "aae", "raw"}
    r = undo(journal)
    assert "restored 1 files and 5 companions" in r.stderr
    assert snapshot(pics) == before
    with make_lib(home) as lib:
        assert str(pics / "b" / "old" / "IMG_1.JPG") in lib.store().files_under()


def test_a_taken_name_renames_the_photo_and_its_companions_alike(library, tmp_path: Path) -> None:
    pics, home = library
    dest = tmp_path / "dups"
    (dest / "b" / "old").mkdir(parents=True)
    (dest / "b" / "old" / "IMG_1.MOV").write_bytes(b"someone else's video")  # only a companion's name is taken
    dedup(home, str(pics), "--tier", "exact", "--keep", "shortest-path", "--move-to", str(dest), "--yes")
    names = sorted(p.name for p in (dest / "b" / "old").iterdir())
    assert names == sorted(["IMG_1.MOV", "IMG_1~1.JPG", "IMG_1~1.JPG.xmp", "IMG_1~1.xmp", "IMG_1~1.MOV",
                            "IMG_1~1.AAE", "IMG_1~1.dng"])
    assert (dest / "b" / "old" / "IMG_1.MOV").read_bytes() == b"someone else's video"


def test_a_companion_name_taken_after_the_plan_refuses_the_whole_move(library, tmp_path: Path) -> None:
    pics, home = library
    before = snapshot(pics)
    dest = tmp_path / "dups"
    with make_lib(home) as lib:
        report = lib.dedup("exact", roots=[str(pics)], keep="shortest-path")
        moves = lib.plan_moves(report.groups, str(dest), [str(pics)])
        (dest / "b" / "old").mkdir(parents=True)
        intruder = dest / "b" / "old" / "IMG_1.AAE"
        intruder.write_text("appeared meanwhile")
        result = lib.move_duplicates(moves, str(dest))
    assert result.done == 0 and result.companions == 0
    assert [(Path(p).name, "exists" in why) for p, why in result.skipped] == [("IMG_1.JPG", True)]
    assert snapshot(pics) == before and intruder.read_text() == "appeared meanwhile"


def test_a_companion_shared_with_the_keeper_stays_with_the_keeper(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    photo(pics / "IMG_3.JPG", seed=3, fmt="JPEG")
    shutil.copy2(pics / "IMG_3.JPG", pics / "IMG_3.jpeg")  # same stem, same bytes: IMG_3.xmp belongs to both
    (pics / "IMG_3.xmp").write_text("<x:xmpmeta shared/>")
    (pics / "IMG_3.jpeg.xmp").write_text("<x:xmpmeta the copy's own/>")
    home = tmp_path / "home"
    index(home, pics)
    dest = tmp_path / "dups"
    dedup(home, str(pics), "--tier", "exact", "--keep", "shortest-path", "--move-to", str(dest), "--yes")
    assert (pics / "IMG_3.xmp").exists() and (pics / "IMG_3.JPG").exists()
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith("mcphotos-journal")) == \
        ["IMG_3.jpeg", "IMG_3.jpeg.xmp"]


def test_hardlink_links_identical_media_companions_and_leaves_sidecars(library) -> None:
    pics, home = library
    before = snapshot(pics)
    a, old = pics / "a", pics / "b" / "old"
    r = dedup(home, str(pics), "--tier", "exact", "--keep", "shortest-path", "--hardlink", "--yes")
    assert "hard-linked 1 files and 2 companions" in r.stderr
    for name in ("IMG_1.JPG", "IMG_1.dng", "IMG_1.MOV"):
        assert os.path.samefile(a / name, old / name), name
    for name in ("IMG_1.JPG.xmp", "IMG_1.xmp", "IMG_1.AAE"):
        assert (old / name).stat().st_nlink == 1, name  # a sidecar shared by two photos would edit both
    assert snapshot(pics) == before
    journal = next((home / "models").rglob("mcphotos-journal-hardlink-*.jsonl"))
    r = undo(journal)
    assert "restored 1 files and 2 companions" in r.stderr
    for name in ("IMG_1.JPG", "IMG_1.dng", "IMG_1.MOV"):
        assert not os.path.samefile(a / name, old / name), name
    assert snapshot(pics) == before
