"""Decode workers: separate processes, so a C decoder that crashes or hangs costs one file.

The tasks here run in spawned worker processes, which import Pillow and numpy but never
torch. A worker that dies (segfault) or overruns the timeout breaks the pool; the pool is
then restarted and every task that was in flight is retried alone, which pins the failure
on the one file that caused it.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from mcphotos.errors import ImageError
from mcphotos.indexing.hashing import hash_bytes, hash_stream
from mcphotos.indexing.imaging import DEFAULT_MAX_PIXELS, DecodedImage, PreprocessSpec
from mcphotos.indexing.raw import decode_file_for_model
from mcphotos.indexing.video import DEFAULT_FRACTIONS, DecodedVideo, decode_video, is_video


@dataclass
class Decoded:
    path: str
    hash: str
    size: int
    mtime_ns: int
    image: DecodedImage


@dataclass
class Failed:
    path: str
    reason: str
    retry: bool = False  # True: not the file's fault (changed while read); don't record a failure


def read_stable(path: str) -> tuple[bytes, os.stat_result]:
    """Read a whole file, refusing non-regular files and files that change while read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)  # O_NONBLOCK: a FIFO must not block open()
    fd = os.open(path, flags)
    try:
        before = os.fstat(fd)
        import stat as _stat

        if not _stat.S_ISREG(before.st_mode):
            raise ImageError("not a regular file")
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        after = os.fstat(fd)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns) or len(data) != after.st_size:
        raise _ChangedWhileReading()
    return data, after


class _ChangedWhileReading(Exception):
    pass


def _read(path: str) -> tuple[bytes, os.stat_result] | Failed:
    """The file's bytes and stat, or why it could not be read (never raises for a bad file)."""
    try:
        return read_stable(path)
    except _ChangedWhileReading:
        return Failed(path, "file changed while being read", retry=True)
    except FileNotFoundError:
        return Failed(path, "file vanished before it was read", retry=True)
    except ImageError as e:
        return Failed(path, e.message)
    except OSError as e:
        return Failed(path, e.strerror or str(e))


def read_checked(path: str) -> tuple[bytes, os.stat_result] | Failed:
    """:func:`read_stable` for a worker task defined elsewhere (OCR's decode): bytes and stat, or Failed."""
    return _read(path)


def decode_task(path: str, spec: PreprocessSpec, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded | Failed:
    """Read, hash and decode one file. Runs in a worker; never raises for a bad file."""
    read = _read(path)
    if isinstance(read, Failed):
        return read
    data, st = read
    return decode_bytes(path, data, st.st_size, st.st_mtime_ns, spec, max_pixels)


def decode_bytes(path: str, data: bytes, size: int, mtime_ns: int, spec: PreprocessSpec,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded | Failed:
    """Hash and decode bytes read from ``path`` (here, or by the machine that sent them), with the
    same failure reasons as :func:`decode_task`."""
    try:
        image = decode_file_for_model(path, data, spec, max_pixels)  # RAW files by extension
    except ImageError as e:
        return Failed(path, e.message)
    except MemoryError:
        return Failed(path, "out of memory while decoding")
    except Exception as e:  # a decoder bug must cost one file, not the run
        return Failed(path, f"decoder error: {type(e).__name__}: {e}")
    return Decoded(path, hash_bytes(data), size, mtime_ns, image)


def hash_task(path: str) -> tuple[str, str, int, int] | Failed:
    """(path, hash, size, mtime_ns) of the bytes read, or Failed."""
    if is_video(path):
        return _hash_streaming(path)
    read = _read(path)
    if isinstance(read, Failed):
        return read
    data, st = read
    if not data:
        return Failed(path, "empty file")
    return path, hash_bytes(data), st.st_size, st.st_mtime_ns


def _hash_streaming(path: str) -> tuple[str, str, int, int] | Failed:
    """Hash a video in 1 MiB chunks: a film of many GB is never held in memory whole."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            before = os.fstat(fd)
            import stat as _stat

            if not _stat.S_ISREG(before.st_mode):
                return Failed(path, "not a regular file")
            if before.st_size == 0:
                return Failed(path, "empty file")
            digest = hash_stream(f)
            after = os.fstat(fd)
    except FileNotFoundError:
        return Failed(path, "file vanished before it was read", retry=True)
    except OSError as e:
        return Failed(path, e.strerror or str(e))
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        return Failed(path, "file changed while being read", retry=True)
    return path, digest, after.st_size, after.st_mtime_ns


@dataclass
class DecodedVideoFile:
    path: str
    hash: str
    size: int
    mtime_ns: int
    video: DecodedVideo


def video_task(item: tuple[str, str, int, int], spec: PreprocessSpec,
               fractions: tuple[float, ...] = DEFAULT_FRACTIONS,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedVideoFile | Failed:
    """Decode a few frames of one video (``item``: path, hash, size, mtime_ns from hashing).

    The content hash comes from the hashing stage: re-reading the whole file here is what
    the bounded decode avoids. A file whose size or mtime moved since is retried next run.
    """
    path, digest, size, mtime_ns = item
    try:
        video = decode_video(path, spec, fractions, max_pixels)
        st = os.stat(path)
    except ImageError as e:
        return Failed(path, e.message)
    except FileNotFoundError:
        return Failed(path, "file vanished before it was read", retry=True)
    except MemoryError:
        return Failed(path, "out of memory while decoding")
    except Exception as e:  # a decoder bug must cost one file, not the run
        return Failed(path, f"decoder error: {type(e).__name__}: {e}")
    if (st.st_size, st.st_mtime_ns) != (size, mtime_ns):
        return Failed(path, "file changed while being read", retry=True)
    return DecodedVideoFile(path, digest, size, mtime_ns, video)


def _init_worker() -> None:
    # Ctrl-C goes to the whole process group; the parent decides what to do about it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Decoders warn about every odd file (corrupt EXIF, ...); the parent reports what matters.
    warnings.filterwarnings("ignore")
    try:
        os.nice(2)  # keep the model's thread ahead when both want the CPU
    except OSError:
        pass


class WorkerPool:
    """A process pool that survives crashing and hanging tasks."""

    def __init__(self, workers: int, timeout: float = 60.0) -> None:
        self.workers = max(1, workers)
        self.timeout = timeout
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            # spawn: the parent holds torch's threads, and forking those is unsafe.
            ctx = multiprocessing.get_context("spawn")
            self._executor = ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker)
        return self._executor

    def _kill(self) -> None:
        ex = self._executor
        self._executor = None
        if ex is None:
            return
        # After killing workers, exiting must not wait to flush tasks nobody will read:
        # multiprocessing documents cancel_join_thread() for exactly this.
        call_queue = getattr(ex, "_call_queue", None)
        if call_queue is not None:
            with contextlib.suppress(Exception):
                call_queue.cancel_join_thread()
        procs = list(getattr(ex, "_processes", {}).values())
        for p in procs:
            try:
                p.kill()
            except Exception:
                pass
        ex.shutdown(wait=False, cancel_futures=True)
        # Let the pool's manager thread finish closing its pipes now: otherwise the
        # interpreter's exit hook may write to a pipe it is closing and print a traceback.
        manager = getattr(ex, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=5)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def terminate(self) -> None:
        self._kill()

    def imap_unordered(self, fn: Callable[..., Any], items: Iterable[Any], args: tuple = (),
                       in_flight: int | None = None, on_failure: Callable[[Any, str], Any] | None = None
                       ) -> Iterator[Any]:
        """Yield ``fn(item, *args)`` results as they complete.

        A task that crashes its worker or runs past the timeout yields
        ``on_failure(item, reason)`` instead (default: a :class:`Failed`).
        """
        limit = in_flight or self.workers * 4
        fail = on_failure or (lambda item, reason: Failed(str(item), reason))
        source = iter(items)
        pending: dict[Future, tuple[Any, float]] = {}
        suspects: deque[Any] = deque()
        exhausted = False
        alone = False  # the one pending task is a suspect from a broken pool, running alone
        while True:
            if suspects and not pending:
                item = suspects.popleft()
                pending[self._pool().submit(fn, item, *args)] = (item, time.monotonic())
                alone = True
            elif not suspects and not alone:
                while not exhausted and len(pending) < limit:
                    try:
                        item = next(source)
                    except StopIteration:
                        exhausted = True
                        break
                    pending[self._pool().submit(fn, item, *args)] = (item, time.monotonic())
            if not pending:
                if exhausted:
                    return
                continue
            done, _ = wait(list(pending), timeout=0.5, return_when=FIRST_COMPLETED)
            broken = False
            for fut in done:
                item, _started = pending.pop(fut)
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    broken = True
                    if alone:
                        yield fail(item, "the decoder crashed on this file")
                    else:
                        suspects.append(item)
                    continue
                except Exception as e:  # pickling trouble and the like
                    result = fail(item, f"worker error: {type(e).__name__}: {e}")
                yield result
            if not done:
                now = time.monotonic()
                if any(now - t0 > self.timeout for _, t0 in pending.values()):
                    if alone:
                        for item, _ in pending.values():
                            yield fail(item, f"decoding took longer than {self.timeout:.0f} s")
                        pending.clear()
                    broken = True
            if broken:
                # Everything else in flight is retried alone in a fresh pool.
                suspects.extend(item for item, _ in pending.values())
                pending.clear()
                self._kill()
            if not pending:
                alone = False
