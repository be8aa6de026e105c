"""The similar tier needs embeddings with meaning: tested on the tiny trained CLIP.

The tiny CLIP's 64-d image embeddings spread over the whole sphere (unrelated classes have
negative cosines), so these tests pass an explicit --threshold suited to it; the default is
meant for MobileCLIP2's embedding geometry.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from mcphotos.cli import app
from mcphotos.library import Library
from tests.support.cli import runner
from tests.support.photos import shape_photo

TINY_THRESHOLD = "0.5"


def index(tiny_args: list[str], pics: Path) -> None:
    r = runner.invoke(app, ["index", str(pics), "-q", *tiny_args])
    assert r.exit_code == 0, r.output


def groups(tiny_args: list[str], *args: str) -> list[set[str]]:
    r = runner.invoke(app, ["dedup", "--json", *args, *tiny_args])
    assert r.exit_code == 0, r.output
    return [{Path(m["path"]).name for m in json.loads(ln)["members"]} for ln in r.stdout.splitlines()]


def test_two_red_circles_are_similar_and_a_blue_star_is_not(tmp_path: Path, tiny_args: list[str]) -> None:
    pics = tmp_path / "pics"
    shape_photo(pics / "red-circle-1.png", "red", "circle", seed=1)
    shape_photo(pics / "red-circle-2.png", "red", "circle", seed=2)
    shape_photo(pics / "blue-star.png", "blue", "star", seed=3)
    shape_photo(pics / "green-square.png", "green", "square", seed=4)
    index(tiny_args, pics)
    similar = groups(tiny_args, "--tier", "similar", "--threshold", TINY_THRESHOLD)
    assert similar == [{"red-circle-1.png", "red-circle-2.png"}]
    # two different shots are not the same picture: the near tier keeps them apart
    assert groups(tiny_args, "--tier", "near") == []


def test_near_uses_meaningful_embeddings_and_still_finds_a_reencode(tmp_path: Path, tiny_args: list[str]) -> None:
    pics = tmp_path / "pics"
    shape_photo(pics / "red-circle.png", "red", "circle", seed=1, size=192)
    Image.open(pics / "red-circle.png").convert("RGB").save(pics / "red-circle-q60.jpg", quality=60)
    shape_photo(pics / "blue-star.png", "blue", "star", seed=3, size=192)
    shape_photo(pics / "green-circle.png", "green", "circle", seed=5, size=192)
    index(tiny_args, pics)
    cfg, weights = tiny_args[1], tiny_args[3]
    with Library(model=cfg, weights=weights) as lib:
        report = lib.dedup(tier="near")
    assert report.embeddings_used is True
    assert [{Path(m.path).name for m in g.members} for g in report.groups] == [{"red-circle.png", "red-circle-q60.jpg"}]
    assert report.groups[0].duplicates[0].cosine > 0.9


def _with_capture_time(path: Path, when: str) -> None:
    img = Image.open(path)
    exif = Image.Exif()
    exif[0x0132] = when  # DateTime, "YYYY:MM:DD HH:MM:SS"
    img.convert("RGB").save(path.with_suffix(".jpg"), quality=95, exif=exif.tobytes())
    path.unlink()


def test_capture_times_seconds_apart_make_a_burst(tmp_path: Path, tiny_args: list[str]) -> None:
    pics = tmp_path / "pics"
    a = shape_photo(pics / "burst" / "a.png", "red", "circle", seed=1)
    b = shape_photo(pics / "burst" / "b.png", "red", "circle", seed=2)
    c = shape_photo(pics / "apart" / "c.png", "red", "circle", seed=1)
    d = shape_photo(pics / "apart" / "d.png", "red", "circle", seed=2)
    _with_capture_time(a, "2024:05:01 10:00:00")
    _with_capture_time(b, "2024:05:01 10:00:03")  # 3 s later: a burst
    _with_capture_time(c, "2024:05:01 10:00:00")
    _with_capture_time(d, "2024:05:01 11:00:00")  # an hour later: not a burst
    index(tiny_args, pics)
    cfg, weights = tiny_args[1], tiny_args[3]
    burst, apart = [str(pics / "burst")], [str(pics / "apart")]  # same two pictures, other capture times
    with Library(model=cfg, weights=weights) as lib:
        cos = lib.dedup(tier="similar", threshold=-1.0, roots=burst).groups[0].duplicates[0].cosine
        from mcphotos.dedup.finder import BURST_BONUS

        # a threshold the pair misses on its own, but meets with the burst bonus
        threshold = min(1.0, cos + BURST_BONUS / 2)
        assert lib.dedup(tier="similar", threshold=threshold, roots=apart).groups == []
        together = lib.dedup(tier="similar", threshold=threshold, roots=burst).groups
    assert [{Path(m.path).name for m in g.members} for g in together] == [{"a.jpg", "b.jpg"}]
