"""The video stage of the index pipeline: a few frames per video, decoded in the workers.

A mixin of :class:`mcphotos.indexing.indexer.Indexer` (which owns the pipeline and the
failure bookkeeping it calls): one images row per video, its representative frame, and
every frame's vector in video_frames (see store/videos.py for why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.indexing.workers import DecodedVideoFile, Failed, WorkerPool, video_task
from mcphotos.store.database import FileRecord, ImageRecord
from mcphotos.store.videos import VideoRecord, put_videos

if TYPE_CHECKING:
    from mcphotos.indexing.indexer import IndexReport


class VideoStage:
    if TYPE_CHECKING:  # provided by Indexer
        from mcphotos.indexing.indexer import IndexOptions, LazyEncoder, ProgressCallback
        from mcphotos.models.encoder import ImageEncoder
        from mcphotos.store.database import Store

        store: Store
        options: IndexOptions
        encoder: LazyEncoder
        on_progress: ProgressCallback | None

        def _skip(self, report: IndexReport, path: str, reason: str) -> None: ...
        def _record_failure(self, f: Failed, waiting: dict[str, list[FileRecord]], report: IndexReport) -> int: ...
        def _check_dim(self, encoder: ImageEncoder) -> None: ...

    def _process_videos(self, decoders: WorkerPool, videos: list[tuple[str, str, int, int]], spec: PreprocessSpec,
                        waiting: dict[str, list[FileRecord]], report: IndexReport, done: int, total: int) -> int:
        """Decode a few frames of each video in the workers and embed them, ``batch_size`` frames a call."""
        args: tuple = (spec, self.options.frames) if not self.options.max_pixels \
            else (spec, self.options.frames, self.options.max_pixels)
        batch: list[DecodedVideoFile] = []
        for res in decoders.imap_unordered(video_task, videos, args=args, in_flight=2 * (self.options.workers or 2),
                                           on_failure=lambda item, reason: Failed(item[0], reason)):
            report.decoded += 1
            if isinstance(res, Failed):
                self._skip(report, res.path, res.reason)
                done += self._record_failure(res, waiting, report)
            else:
                batch.append(res)
                if sum(len(v.video.frames) for v in batch) >= self.options.batch_size:
                    done += self._commit_videos(batch, waiting, report)
                    batch = []
            if self.on_progress:
                self.on_progress(done, total)
        if batch:
            done += self._commit_videos(batch, waiting, report)
        return done

    def _commit_videos(self, batch: list[DecodedVideoFile], waiting: dict[str, list[FileRecord]],
                       report: IndexReport) -> int:
        """One images row per video (its representative frame) plus every frame in video_frames."""
        encoder = self.encoder.get()
        self._check_dim(encoder)
        vectors = encoder.encode_images(np.stack([f.image.pixels for v in batch for f in v.video.frames]))
        images, videos, files = [], [], []
        at = 0
        for v in batch:
            vecs = vectors[at:at + len(v.video.frames)]
            at += len(v.video.frames)
            recs = waiting.pop(v.hash, [])
            if not np.all(np.isfinite(vecs)) or not np.all(np.any(vecs, axis=1)):
                self._skip(report, v.path, "the model produced an invalid embedding")
                continue
            rep = v.video.representative()
            im = v.video.frames[rep].image
            images.append(ImageRecord(v.hash, vecs[rep], v.video.width, v.video.height, v.video.taken_at, im.phash,
                                      im.colors, im.detail))
            videos.append(VideoRecord(v.hash, v.video.duration, v.video.ended_at,
                                      tuple((f.time_s, vec) for f, vec in zip(v.video.frames, vecs, strict=True))))
            files += [FileRecord(r.path, r.size, r.mtime_ns, v.hash, "ok") for r in recs] \
                or [FileRecord(v.path, v.size, v.mtime_ns, v.hash, "ok")]
        with self.store.transaction():
            self.store.put_images(images)
            put_videos(self.store, videos)
            self.store.put_files(files)
        report.embedded += len(images)
        report.new += len(files)
        return len(files)
