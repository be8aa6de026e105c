"""walk → hash → (known hash? reuse) → decode → embed → store, as one resumable pipeline.

Everything is committed in small batches, so killing the process loses at most the batch in
flight, and the next run resumes: unchanged files (same size and mtime) are not even
hashed, and a content hash already in the store is never embedded again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from mcphotos.background import Background
from mcphotos.errors import Interrupted, McPhotosError
from mcphotos.indexing.companions import RawPairs, find_companions
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.indexing.raw import NEEDS_EXTRA, is_raw, raw_support
from mcphotos.indexing.remotestage import RemoteEmbedder, RemoteStage
from mcphotos.indexing.roots import OfflineRoot, RootTracker
from mcphotos.indexing.video import DEFAULT_FRACTIONS, VIDEO_EXTRA_HINT, is_video, video_support
from mcphotos.indexing.videostage import VideoStage
from mcphotos.indexing.walk import WalkEntry, WalkResult, stat_paths, walk
from mcphotos.indexing.workers import Decoded, Failed, WorkerPool, decode_task, hash_task
from mcphotos.models.encoder import ImageEncoder  # what the indexer needs: the engine, or a test fake
from mcphotos.store.database import FileRecord, ImageRecord, Store
from mcphotos.store.sql import chunks


@dataclass
class IndexReport:
    new: int = 0  # files whose image was embedded in this run
    reused: int = 0  # changed or new files whose content hash was already stored
    unchanged: int = 0  # same size and mtime: not even hashed
    failed: int = 0  # files that could not be read or decoded
    removed: int = 0  # files gone from disk, pruned from the store
    hashed: int = 0
    decoded: int = 0
    embedded: int = 0  # distinct images embedded (copies within a run count once)
    elapsed: float = 0.0
    interrupted: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)
    # Roots whose drive is gone (missing, empty, another device): nothing under them was pruned.
    offline: list[OfflineRoot] = field(default_factory=list)
    companions: int = 0  # walked files that belong to a photo (a paired RAW, a Live Photo video): not indexed
    # Files skipped because an optional extra is missing, per extra ("raw" without rawpy, "video" without PyAV).
    # They are not recorded as failed: once the extra is installed, the next run indexes them.
    needs_extra: dict[str, int] = field(default_factory=dict)

    @property
    def seen(self) -> int:
        return self.new + self.reused + self.unchanged + self.failed


@dataclass
class IndexOptions:
    hidden: bool = False
    exclude: Sequence[str] = ()
    prune: bool = True
    prune_offline: bool = False  # forget the files of offline roots (see indexing/roots.py)
    retry_failed: bool = False
    batch_size: int = 16  # small batches keep decoding and inference overlapped (bench/README.md)
    workers: int | None = None  # decode processes; default: one per core
    timeout: float = 60.0  # per file, in a worker
    max_pixels: int | None = None
    frames: tuple[float, ...] = DEFAULT_FRACTIONS  # where videos are sampled, as fractions of the duration
    raw_pairs: RawPairs = RawPairs.JPEG  # a RAW beside its same-stem JPEG/HEIC: a companion, or indexed too


ProgressCallback = Callable[[int, int], None]
SkipCallback = Callable[[str, str], None]


class LazyEncoder(Background[ImageEncoder]):
    """Loads the model in a background thread, so decoding starts while it loads."""

    def __init__(self, load: Callable[[], ImageEncoder]) -> None:
        super().__init__(load, name="model-loader")


def _as_loader(encoder: Callable[[], ImageEncoder] | ImageEncoder) -> Callable[[], ImageEncoder]:
    """``encoder`` if it is a loader (a callable), else a loader returning it."""
    if callable(encoder):
        return encoder
    ready = encoder
    return lambda: ready


class Indexer(VideoStage, RemoteStage):
    """Index photos into ``store`` with an encoder that is only loaded when needed."""

    def __init__(self, store: Store, encoder: Callable[[], ImageEncoder] | ImageEncoder,
                 preprocess: PreprocessSpec | Callable[[], PreprocessSpec], options: IndexOptions | None = None,
                 on_progress: ProgressCallback | None = None, on_skip: SkipCallback | None = None,
                 remote: RemoteEmbedder | None = None) -> None:
        self.store = store
        self.remote = remote  # embeds photos elsewhere (a Ray cluster); walking, hashing and writing stay here
        self.encoder = LazyEncoder(_as_loader(encoder))
        # A callable defers the (open_clip-importing) lookup until something must be decoded.
        self._preprocess = preprocess
        self.options = options or IndexOptions()
        self.on_progress = on_progress
        self.on_skip = on_skip
        self.images_to_embed = 0  # known before the encoder loads, so its loader can size the job

    # -- public ------------------------------------------------------------------------------

    def index(self, roots: Sequence[str] = (), paths: Iterable[str] | None = None) -> IndexReport:
        """Index directories ``roots`` (walked and pruned) and/or explicit file ``paths``."""
        started = time.monotonic()
        report = IndexReport()
        lock = self.store.writer_lock()
        lock.acquire()
        try:
            self._run(roots, paths, report)
        except KeyboardInterrupt:
            report.interrupted = True
            report.elapsed = time.monotonic() - started
            raise Interrupted(
                f"interrupted: kept {report.new} new and {report.reused} reused files committed so far",
                "run the same command again to resume",
            ) from None
        finally:
            lock.release()
        report.elapsed = time.monotonic() - started
        return report

    # -- pipeline ----------------------------------------------------------------------------

    def _skip(self, report: IndexReport, path: str, reason: str) -> None:
        report.skipped.append((path, reason))
        if self.on_skip:
            self.on_skip(path, reason)

    def _run(self, roots: Sequence[str], paths: Iterable[str] | None, report: IndexReport) -> None:
        found = WalkResult()
        tracker = RootTracker(self.store, self.options.prune_offline)
        roots = tracker.plan(list(roots))  # a typo raises here, before anything is done
        if roots:
            found = walk(roots, hidden=self.options.hidden, exclude=self.options.exclude,
                         on_skip=lambda p, r: self._skip(report, p, r))
        tracker.protect(found)
        report.offline = tracker.offline
        known = self.store.files_under(list(roots)) if roots else {}
        if paths is not None:
            extra = stat_paths(paths, on_skip=lambda p, r: self._skip(report, p, r))
            found.entries += extra.entries
            known.update(self.store.files_under([e.path for e in extra.entries]))
        self._leave_out_companions(found, known, report)
        todo: list[WalkEntry] = []
        for entry in found.entries:
            rec = known.get(entry.path)
            unchanged = rec is not None and rec.size == entry.size and rec.mtime_ns == entry.mtime_ns
            if unchanged and rec is not None and rec.status == "ok":
                report.unchanged += 1
            elif unchanged and not self.options.retry_failed:
                report.failed += 1  # a known bad file is not retried every run
            else:
                todo.append(entry)
        todo = self._leave_out_unsupported(todo, report)
        total = len(found.entries)
        done = total - len(todo)
        if self.on_progress:
            self.on_progress(done, total)
        if todo:
            self._process(todo, report, done, total)
        if self.options.prune and roots:
            self._prune(found, known, report)
        if self.options.prune:
            report.removed += tracker.forget()
        tracker.record(found)
        with self.store.transaction():
            self.store.set_meta("last_indexed", repr(time.time()))

    def _leave_out_companions(self, found: WalkResult, known: dict[str, FileRecord], report: IndexReport) -> None:
        """Drop the files that belong to a photo (see companions.py); forget them if indexed before."""
        companions = find_companions(e.path for e in found.entries).not_indexed(self.options.raw_pairs)
        if not companions:
            return
        found.entries = [e for e in found.entries if e.path not in companions]
        report.companions += len(companions)
        # e.g. the RAW of a pair indexed under --raw-pairs both: now it is the JPEG's companion.
        stale = [p for p in companions if p in known]
        for part, _ in chunks(stale):
            with self.store.transaction():
                self.store.delete_files(part)
        for p in stale:
            known.pop(p, None)

    def _leave_out_unsupported(self, todo: list[WalkEntry], report: IndexReport) -> list[WalkEntry]:
        """Skip RAW files without rawpy and videos without PyAV, one line each, not even hashed.

        They are not recorded as failed, so the first run after installing the extra indexes them.
        """
        for extra, is_kind, supported, reason in (("raw", is_raw, raw_support, NEEDS_EXTRA),
                                                   ("video", is_video, video_support, VIDEO_EXTRA_HINT)):
            held = [e for e in todo if is_kind(e.path)]
            if not held or supported():
                continue
            for e in held:
                self._skip(report, e.path, reason)
            report.needs_extra[extra] = report.needs_extra.get(extra, 0) + len(held)
            todo = [e for e in todo if not is_kind(e.path)]
        return todo

    def _process(self, todo: list[WalkEntry], report: IndexReport, done: int, total: int) -> None:
        store = self.store
        # Stage 1: hash the changed files (threads: hashlib and file reads release the GIL).
        hashed: list[tuple[str, str, int, int]] = []
        failures: list[FileRecord] = []
        workers = self.options.workers or os.cpu_count() or 1
        with ThreadPoolExecutor(max(2, workers)) as pool:
            for res in pool.map(hash_task, [e.path for e in todo]):
                report.hashed += 1
                if isinstance(res, Failed):
                    self._skip(report, res.path, res.reason)
                    if not res.retry:
                        failures.append(self._failed_record(res))
                else:
                    hashed.append(res)
        if failures:
            report.failed += len(failures)
            with store.transaction():
                store.put_files(failures)
            done += len(failures)
        known = store.has_hashes({h for _, h, _, _ in hashed})
        reuse = [FileRecord(p, size, mtime, h, "ok") for p, h, size, mtime in hashed if h in known]
        for part, _ in chunks(reuse):
            with store.transaction():
                store.put_files(part)
        report.reused += len(reuse)
        done += len(reuse)
        if self.on_progress:
            self.on_progress(done, total)
        # Stage 2: decode the unknown ones in worker processes and embed them in batches.
        # Copies within this run wait for the one decode of their content.
        to_decode: dict[str, str] = {}
        waiting: dict[str, list[FileRecord]] = {}
        for p, h, size, mtime in hashed:
            if h in known:
                continue
            waiting.setdefault(h, []).append(FileRecord(p, size, mtime, h, "ok"))
            to_decode.setdefault(h, p)
        videos = [(p, h, r.size, r.mtime_ns) for h, p in to_decode.items() if is_video(p)
                  for r in waiting[h] if r.path == p]
        to_decode = {h: p for h, p in to_decode.items() if not is_video(p)}
        if not to_decode and not videos:
            return
        self.images_to_embed = len(to_decode)
        if self.remote is not None and to_decode:
            done = self._process_remote(self.remote, list(to_decode.values()), waiting, report, done, total)
            to_decode = {}
            if not videos:
                return
        self.encoder.start()
        decoders = WorkerPool(workers, timeout=self.options.timeout)
        batch: list[Decoded] = []
        spec = self._preprocess() if callable(self._preprocess) else self._preprocess
        args: tuple = (spec,) if not self.options.max_pixels else (spec, self.options.max_pixels)
        try:
            for res in decoders.imap_unordered(decode_task, list(to_decode.values()), args=args,
                                           in_flight=max(2 * self.options.batch_size, 4 * workers)):
                report.decoded += 1
                if isinstance(res, Failed):
                    self._skip(report, res.path, res.reason)
                    done += self._record_failure(res, waiting, report)
                else:
                    batch.append(res)
                    if len(batch) >= self.options.batch_size:
                        done += self._commit_batch(batch, waiting, report)
                        batch = []
                if self.on_progress:
                    self.on_progress(done, total)
            if batch:
                done += self._commit_batch(batch, waiting, report)
                if self.on_progress:
                    self.on_progress(done, total)
            if videos:
                done = self._process_videos(decoders, videos, spec, waiting, report, done, total)
        except BaseException:
            decoders.terminate()
            raise
        else:
            decoders.close()

    def _failed_record(self, f: Failed) -> FileRecord:
        try:
            st = os.stat(f.path)
            size, mtime = st.st_size, st.st_mtime_ns
        except OSError:
            size, mtime = -1, -1
        return FileRecord(f.path, size, mtime, None, "failed", f.reason)

    def _record_failure(self, f: Failed, waiting: dict[str, list[FileRecord]], report: IndexReport) -> int:
        """A decode failed: the file (and any copy of the same content) is recorded as failed."""
        h = next((h for h, recs in waiting.items() if any(r.path == f.path for r in recs)), None)
        records = waiting.pop(h, []) if h else []
        if f.retry:
            return len(records)
        rows = [FileRecord(r.path, r.size, r.mtime_ns, r.hash, "failed", f.reason) for r in records] \
            or [self._failed_record(f)]
        with self.store.transaction():
            self.store.put_files(rows)
        report.failed += len(rows)
        return len(rows)

    def _commit_batch(self, batch: list[Decoded], waiting: dict[str, list[FileRecord]],
                      report: IndexReport) -> int:
        encoder = self.encoder.get()
        self._check_dim(encoder)
        return self._commit_vectors(batch, encoder.encode_images(np.stack([d.image.pixels for d in batch])),
                                    waiting, report)

    def _commit_vectors(self, batch: list[Decoded], vectors: np.ndarray, waiting: dict[str, list[FileRecord]],
                        report: IndexReport) -> int:
        """Store ``batch``'s vectors (embedded here or on a cluster) and their files, in one transaction."""
        images, files = [], []
        for d, v in zip(batch, vectors, strict=True):
            if not np.all(np.isfinite(v)) or not np.any(v):
                self._skip(report, d.path, "the model produced an invalid embedding")
                continue
            images.append(ImageRecord(d.hash, v, d.image.width, d.image.height, d.image.taken_at, d.image.phash,
                                      d.image.colors, d.image.detail))
            recs = waiting.pop(self._waiting_key(d, waiting), [])
            # The decode re-read the file: trust what it read (it may have changed since stage 1).
            for r in recs:
                if r.path == d.path:
                    files.append(FileRecord(d.path, d.size, d.mtime_ns, d.hash, "ok"))
                else:
                    files.append(FileRecord(r.path, r.size, r.mtime_ns, d.hash if r.hash == d.hash else r.hash, "ok"))
            if not recs:
                files.append(FileRecord(d.path, d.size, d.mtime_ns, d.hash, "ok"))
        with self.store.transaction():
            self.store.put_images(images)
            self.store.put_files(files)
        report.embedded += len(images)
        report.new += len(files)
        return len(files)

    @staticmethod
    def _waiting_key(d: Decoded, waiting: dict[str, list[FileRecord]]) -> str:
        if d.hash in waiting:
            return d.hash
        # The file changed between hashing and decoding: find its entry by path.
        for h, recs in waiting.items():
            if any(r.path == d.path for r in recs):
                return h
        return d.hash

    def _check_dim(self, encoder: ImageEncoder) -> None:
        self._check_vector_dim(int(encoder.dim))

    def _check_vector_dim(self, made: int) -> None:
        dim = self.store.dim()
        if dim is None:
            self.store.update_model_identity(dim=made)
        elif dim != made:
            raise McPhotosError(f"the store holds {dim}-dimensional vectors but the model makes {made}")

    def _prune(self, found: WalkResult, known: dict[str, FileRecord], report: IndexReport) -> None:
        """Forget files that vanished, but only under roots walked, never beneath a folder that
        could not be read or an offline mount point (``WalkResult.prunable``)."""
        if not found.complete_dirs:
            return
        present = {e.path for e in found.entries}
        gone = [p for p in known if p not in present and found.prunable(p) and not os.path.lexists(p)]
        for part, _ in chunks(gone):
            with self.store.transaction():
                self.store.delete_files(part)
        report.removed += len(gone)
