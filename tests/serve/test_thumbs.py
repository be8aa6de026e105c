"""Thumbnails and views: WebP per content hash, made in the decode workers, a grey tile for a bad file, bounded."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from mcphotos.serve.thumbs import THUMB, VIEW, ThumbnailCache
from tests.support.scenes import scene
from tests.support.serving import client_for

pytest.importorskip("starlette")


def ids_by_name(client) -> dict[str, str]:
    hits = client.get("/api/search", params={"q": "a photo", "k": 500}).json()["hits"]
    return {h["name"]: h["id"] for h in hits}


def test_thumbnail_and_view_sizes_and_cache(shapes_library, tmp_path: Path) -> None:
    client = client_for(shapes_library, tmp_path)
    ids = ids_by_name(client)
    r = client.get(f"/thumb/{ids['large.jpg']}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/webp"
    img = Image.open(io.BytesIO(r.content))
    assert (img.format, img.size) == ("WEBP", (320, 160))
    cached = tmp_path / "thumbs" / "320" / ids["large.jpg"][:2] / f"{ids['large.jpg']}.webp"
    assert cached.read_bytes() == r.content
    view = Image.open(io.BytesIO(client.get(f"/view/{ids['large.jpg']}").content))
    assert view.size == (1600, 800)
    small = Image.open(io.BytesIO(client.get(f"/thumb/{ids['red circle 0.jpg']}").content))
    assert small.size == (96, 96)  # never enlarged
    # served from the cache the second time: the file is not made again
    before = cached.stat().st_mtime_ns
    time.sleep(0.01)
    assert client.get(f"/thumb/{ids['large.jpg']}").content == r.content
    assert cached.stat().st_mtime_ns >= before


def test_a_bad_file_costs_one_grey_tile(shapes_library, tmp_path: Path) -> None:
    client = client_for(shapes_library, tmp_path)
    ids = ids_by_name(client)
    r = client.get(f"/thumb/{ids['broken.jpg']}")  # truncated on disk after it was indexed
    assert r.status_code == 200 and r.headers.get("x-mcphotos-grey") == "1"
    assert Image.open(io.BytesIO(r.content)).getpixel((5, 5)) == (128, 128, 128)
    assert r.headers["cache-control"] == "no-store"
    good = client.get(f"/thumb/{ids['blue star 1.png']}")  # the pool goes on
    assert good.status_code == 200 and "x-mcphotos-grey" not in good.headers


def test_cache_is_bounded_oldest_first(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    pics.mkdir()
    cache = ThumbnailCache(tmp_path / "thumbs", max_bytes=10**9, workers=1)
    try:
        made = []
        for i in range(4):
            src = pics / f"{i}.png"
            scene(i, size=(640, 480)).save(src)
            out = cache.get(f"{i:040x}", str(src), THUMB)
            assert out is not None
            os.utime(out, (1000 + i, 1000 + i))  # made at distinct times, oldest first
            made.append(out)
        sizes = [p.stat().st_size for p in made]
        cache.max_bytes = sum(sizes[1:]) + 10  # room for all but one: the next file prunes the oldest
        src = pics / "4.png"
        scene(4, size=(640, 480)).save(src)
        assert cache.get(f"{4:040x}", str(src), THUMB) is not None
        left = sorted(p.name for p in (tmp_path / "thumbs").rglob("*.webp"))
        assert f"{0:040x}.webp" not in left and f"{4:040x}.webp" in left
        assert sum(p.stat().st_size for p in (tmp_path / "thumbs").rglob("*.webp")) <= cache.max_bytes
        assert cache.get(f"{5:040x}", str(pics / "missing.png"), VIEW) is None  # no such file: grey
    finally:
        cache.close()


def test_a_video_gets_its_middle_frame_not_a_grey_tile(tmp_path: Path) -> None:
    pytest.importorskip("av")
    from mcphotos.serve.thumbs import Job, render_task
    from tests.support.videos import make_video

    video = make_video(tmp_path / "clip.mp4", [(220, 30, 30), (30, 200, 40), (30, 40, 220)], size=(640, 480))
    out = tmp_path / "clip.webp"
    assert render_task(Job(str(video), str(out), THUMB)) is None
    img = Image.open(out).convert("RGB")
    assert img.size == (320, 240)
    r, g, b = img.getpixel((160, 120))
    assert g > 150 and r < 90 and b < 90  # the green scene, in the middle of the three
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    assert render_task(Job(str(broken), str(tmp_path / "broken.webp"), THUMB)) is not None  # a grey tile
