"""Videos: a few frames each, bounded decode, best-frame search, dates, dedup apart from photos."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mcphotos.dedup.finder import find_duplicates
from mcphotos.indexing.indexer import Indexer, IndexOptions, IndexReport
from mcphotos.indexing.video import decode_video
from mcphotos.search.nearest import SearchFilter, search
from mcphotos.store.database import Store
from mcphotos.store.videos import frame_vectors, video_hashes
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.videos import make_video

RED, GREEN, BLUE = (230, 20, 20), (20, 200, 40), (20, 30, 230)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    yield s
    s.close()


def run(store: Store, root: Path, skipped: list[tuple[str, str]] | None = None, **opts: object) -> IndexReport:
    on_skip = (lambda p, r: skipped.append((p, r))) if skipped is not None else None
    return Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=2, batch_size=4, **opts),  # type: ignore[arg-type]
                   on_skip=on_skip).index([str(root)])


def colour_vector(rgb: tuple[int, int, int]) -> np.ndarray:
    pixels = np.full((1, 32, 32, 3), rgb, dtype=np.uint8)
    return FakeEncoder().encode_images(pixels)[0]


def local(iso_utc: str) -> str:
    return datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone().replace(tzinfo=None).isoformat()


@pytest.mark.parametrize("ext", [".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"])
def test_each_format_gets_a_vector_per_frame(tmp_path: Path, store: Store, ext: str) -> None:
    make_video(tmp_path / "v" / f"clip{ext}", [RED, GREEN, BLUE], creation_time="2021-06-01T10:00:00Z")
    r = run(store, tmp_path / "v")
    assert (r.new, r.failed) == (1, 0)
    (h,) = video_hashes(store)
    hashes, times, vecs = frame_vectors(store)
    assert hashes == [h] * 3 and list(times) == [0.0, 1.0, 2.0]
    # Each frame's vector is that scene's colour, in order.
    for vec, colour in zip(vecs, [RED, GREEN, BLUE], strict=True):
        assert float(vec @ colour_vector(colour)) > 0.99
    duration, taken = store.conn.execute("SELECT duration, taken_at FROM images WHERE hash = ?", (h,)).fetchone()
    assert duration == pytest.approx(3.0)
    if ext != ".avi":  # AVI has no creation_time field
        assert taken == local("2021-06-01T10:00:00Z")


def test_frame_positions_are_configurable(tmp_path: Path, store: Store) -> None:
    make_video(tmp_path / "v" / "clip.mp4", [RED, GREEN, BLUE, RED])
    run(store, tmp_path / "v", frames=(0.0, 0.6))
    assert list(frame_vectors(store)[1]) == [0.0, 2.0]


class CountingReader(io.RawIOBase):
    """A file that counts the bytes read from it."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = self.f.readinto(b)
        self.read_bytes += n or 0
        return n or 0

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def close(self) -> None:
        self.f.close()
        super().close()


def test_the_decode_reads_a_few_frames_never_the_whole_file(tmp_path: Path) -> None:
    # 100 s of noise (incompressible, so every second weighs the same), a keyframe every second.
    # FFmpeg reads in 32 KiB blocks: the file is large enough (~2 MB) for that not to matter.
    rng = np.random.default_rng(0)
    scenes = [rng.integers(0, 255, (120, 160, 3), dtype=np.uint8) for _ in range(100)]
    for ext in (".mkv", ".mp4"):
        path = make_video(tmp_path / f"long{ext}", scenes, seconds_per_scene=1.0, fps=5, size=(160, 120))
        reader = CountingReader(path)
        video = decode_video(reader, SPEC)  # type: ignore[arg-type]
        assert [f.time_s for f in video.frames] == [10.0, 50.0, 90.0]
        assert reader.read_bytes < 0.15 * path.stat().st_size, (ext, reader.read_bytes, path.stat().st_size)


def test_corrupt_and_empty_videos_get_one_line_each(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "v"
    make_video(root / "good.mp4", [RED, GREEN])
    (root / "empty.mov").write_bytes(b"")
    (root / "garbage.mkv").write_bytes(np.random.default_rng(1).bytes(5000))
    good = (root / "good.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 3])
    skipped: list[tuple[str, str]] = []
    r = run(store, root, skipped)
    assert r.new == 1
    assert sorted(Path(p).name for p, _ in skipped) == ["empty.mov", "garbage.mkv", "truncated.mp4"]


def test_without_pyav_each_video_gets_one_line_naming_the_extra(tmp_path: Path, store: Store,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    make_video(tmp_path / "v" / "a.mp4", [RED])
    make_video(tmp_path / "v" / "b.webm", [GREEN])
    Image.new("RGB", (40, 30), BLUE).save(tmp_path / "v" / "photo.png")
    monkeypatch.setitem(sys.modules, "av", None)  # as if PyAV were not installed
    skipped: list[tuple[str, str]] = []
    r = run(store, tmp_path / "v", skipped)
    assert r.new == 1 and len(skipped) == 2 and all("mcphotos[video]" in why for _, why in skipped)
    monkeypatch.delitem(sys.modules, "av")
    assert run(store, tmp_path / "v").new == 2  # retried once PyAV is there


def test_a_live_photo_motion_file_is_not_a_video(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "v"
    Image.new("RGB", (40, 30), RED).save(root.mkdir() or root / "IMG_1.JPG")
    make_video(root / "IMG_1.MOV", [RED, GREEN])
    make_video(root / "IMG_2.MOV", [BLUE])
    run(store, root)
    assert sorted(Path(p).name for p in store.files_under()) == ["IMG_1.JPG", "IMG_2.MOV"]


def test_find_ranks_a_video_by_its_best_frame(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "v"
    # The middle frame (the video's one stored image vector) is green; blue is at 2 s.
    make_video(root / "clip.mp4", [RED, GREEN, BLUE])
    Image.new("RGB", (64, 48), (40, 40, 200)).save(root / "bluish.png")
    Image.new("RGB", (64, 48), RED).save(root / "red.png")
    run(store, root)
    hits = search(store, colour_vector(BLUE), k=3)
    assert Path(hits[0].path).name == "clip.mp4"
    assert hits[0].frame_s == 2.0 and hits[0].score > 0.99
    assert all(h.frame_s is None for h in hits if h.path.endswith(".png"))
    # Red: the video's 0 s frame ties with the red photo, far above the rest.
    red = search(store, colour_vector(RED), k=2)
    assert {Path(h.path).name for h in red} == {"clip.mp4", "red.png"}
    assert next(h.frame_s for h in red if h.path.endswith(".mp4")) == 0.0


def test_date_filters_use_the_creation_time_and_duration(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "v"
    start = local("2021-06-01T10:00:00Z")
    make_video(root / "clip.mp4", [RED, GREEN, BLUE], creation_time="2021-06-01T10:00:00Z")
    run(store, root)
    q = colour_vector(RED)
    day = start[:10]

    def found(after: str | None = None, before: str | None = None) -> bool:
        return bool(search(store, q, k=5, filters=SearchFilter(after=after, before=before)))

    assert found(after=day) and not found(after="2021-06-02") and not found(before=day)
    # Still recording one second after it started: a window opening then includes it.
    one_s_later = start[:-2] + "01"
    assert found(after=one_s_later) and not found(after=start[:-2] + "05")


def test_dedup_never_groups_a_video_with_a_photo(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "v"
    make_video(root / "clip.mp4", [GREEN, GREEN, GREEN])
    (root / "copy").mkdir()
    (root / "copy" / "clip.mp4").write_bytes((root / "clip.mp4").read_bytes())
    make_video(root / "reencoded.mkv", [GREEN, GREEN, GREEN])
    Image.new("RGB", (64, 48), GREEN).save(root / "green.png")
    Image.new("RGB", (64, 48), GREEN).save(root / "green.jpg", quality=95)
    run(store, root)
    groups = find_duplicates(store, tier="near").groups
    members = sorted(sorted(Path(m.path).name for m in g.members) for g in groups)
    assert members == [["clip.mp4", "clip.mp4", "reencoded.mkv"], ["green.jpg", "green.png"]]
