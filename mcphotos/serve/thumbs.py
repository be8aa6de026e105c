"""Thumbnails (long side 320) and views (long side 1600) as WebP, cached per content hash.

The cache is ``<user cache dir>/mcphotos/thumbs/<side>/<hash[:2]>/<hash>.webp``: per content,
so every copy of a photo, and every store and model, share one file. Files are made on demand
in the indexer's crash-isolating decode workers (indexing/workers.py), with the same guards:
a file that does not decode, is a decompression bomb, hangs or crashes its decoder costs one
grey tile, remembered for this run. The cache's size is bounded: past ``max_bytes`` the files
used least recently (their mtime, renewed when served) are pruned until 90% of it remains.

``render_task`` runs in the workers; nothing here imports starlette or torch.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcphotos.errors import ImageError
from mcphotos.serve.decoding import WAIT_S, Crashed, DecodePool

THUMB, VIEW = 320, 1600
SIDES = (THUMB, VIEW)
DEFAULT_MAX_BYTES = 2 * 1024**3
QUALITY = {THUMB: 78, VIEW: 85}


def default_folder() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcphotos")) / "thumbs"


@dataclass(frozen=True)
class Job:
    source: str  # the photo's file
    out: str  # the WebP to write
    side: int


def render_task(job: Job) -> str | None:
    """In a decode worker: ``job.source`` as a WebP of long side ``job.side``; None, or why it failed."""
    from PIL import Image

    from mcphotos.indexing.raw import load_file_upright
    from mcphotos.indexing.video import frame_image, is_video
    from mcphotos.indexing.workers import read_checked

    try:
        if is_video(job.source):  # its middle frame, decoded from the file (never read whole)
            img = frame_image(job.source)
            if img is None:
                return "no frame could be decoded"
        else:
            read = read_checked(job.source)
            if not isinstance(read, tuple):
                return read.reason
            img, _, _, _ = load_file_upright(job.source, read[0], draft=(job.side, job.side))
        img.thumbnail((job.side, job.side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.save(buf, "WEBP", quality=QUALITY.get(job.side, 80), method=4)
    except ImageError as e:
        return e.message
    except Exception as e:  # a decoder's own error on a bad file: that file's tile is grey
        return f"{type(e).__name__}: {e}"
    tmp = f"{job.out}.{os.getpid()}.tmp"
    os.makedirs(os.path.dirname(job.out), exist_ok=True)
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, job.out)
    return None


def grey_tile(side: int) -> bytes:
    """The tile a photo that cannot be shown gets: mid grey, 4:3."""
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (side, side * 3 // 4), (128, 128, 128)).save(buf, "WEBP", lossless=True)
    return buf.getvalue()


class ThumbnailCache:
    def __init__(self, folder: Path | None = None, max_bytes: int = DEFAULT_MAX_BYTES, workers: int | None = None,
                 timeout: float = 30.0, pool: DecodePool | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_folder()
        self.max_bytes = max_bytes
        self.pool = pool or DecodePool(workers, timeout)
        self.failed: dict[str, str] = {}  # out path -> why (this run)
        self._grey: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Any]] = {}  # one render per file, however many ask at once
        self._bytes: int | None = None  # total size on disk, counted at the first write

    def path(self, digest: str, side: int) -> Path:
        return self.folder / str(side) / digest[:2] / f"{digest}.webp"

    def get(self, digest: str, source: str | None, side: int) -> Path | None:
        """The cached WebP of ``digest`` (made now from ``source`` if need be), or None: show the grey tile."""
        if side not in SIDES:
            raise ValueError(f"side {side} is not one of {SIDES}")
        out = self.path(digest, side)
        if out.is_file():
            with contextlib.suppress(OSError):
                os.utime(out)  # recently used: pruned last
            return out
        if source is None or str(out) in self.failed:
            return None
        with self._lock:
            fut = self._pending.get(str(out))
            if fut is None:
                fut = self._pending[str(out)] = self.pool.submit(render_task, Job(source, str(out), side))
        try:
            result = fut.result(timeout=WAIT_S)
        except Exception as e:  # the dispatcher broke or timed out: this photo's tile is grey
            result = f"{type(e).__name__}: {e}"
        finally:
            with self._lock:
                self._pending.pop(str(out), None)
        if isinstance(result, Crashed):
            result = result.reason
        if result is not None:
            self.failed[str(out)] = result
            return None
        self._account(out)
        return out

    def grey(self, side: int) -> bytes:
        if side not in self._grey:
            self._grey[side] = grey_tile(side)
        return self._grey[side]

    def close(self) -> None:
        self.pool.close()

    # -- the size bound --------------------------------------------------------------------------

    def _account(self, written: Path) -> None:
        with self._lock:
            if self._bytes is None:
                self._bytes = sum(size for _, size, _ in self._files())
            else:
                with contextlib.suppress(OSError):
                    self._bytes += written.stat().st_size
            if self._bytes > self.max_bytes:
                self._prune()

    def _files(self) -> list[tuple[float, int, Path]]:
        out = []
        for side in SIDES:
            for p in (self.folder / str(side)).glob("*/*.webp"):
                with contextlib.suppress(OSError):
                    st = p.stat()
                    out.append((st.st_mtime, st.st_size, p))
        return out

    def _prune(self) -> None:
        files = sorted(self._files(), key=lambda f: f[0])  # oldest first
        total = sum(size for _, size, _ in files)
        goal = int(self.max_bytes * 0.9)
        for _, size, p in files:
            if total <= goal:
                break
            with contextlib.suppress(OSError):
                p.unlink()
                total -= size
        self._bytes = total

