"""The index pipeline's embedding stage run elsewhere (a Ray cluster, see mcphotos/distributed/).

A mixin of :class:`mcphotos.indexing.indexer.Indexer`: walking, hashing, reuse by content hash
and every write to the store stay in the driver; only the hashes the store lacks go out, as
paths (the workers read the files) or bytes. Results stream back in batches and each batch is
committed as it arrives, exactly like a local batch, so a driver killed with -9 loses at most
the batches in flight and the next run embeds only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mcphotos.indexing.imaging import DEFAULT_MAX_PIXELS, PreprocessSpec
from mcphotos.indexing.workers import Decoded, Failed
from mcphotos.store.database import FileRecord

if TYPE_CHECKING:
    from mcphotos.indexing.indexer import IndexOptions, IndexReport, ProgressCallback


@dataclass(frozen=True)
class Embedded:
    """A photo decoded and embedded elsewhere: its facts (``decoded.image.pixels`` left empty) and vector."""

    decoded: Decoded
    vector: np.ndarray


class RemoteEmbedder(Protocol):
    """Decodes and embeds photos away from the driver, yielding results a batch at a time."""

    def embed(self, paths: list[str], spec: PreprocessSpec, max_pixels: int) -> Iterator[list[Embedded | Failed]]: ...


class RemoteStage:
    if TYPE_CHECKING:  # provided by Indexer
        options: IndexOptions
        on_progress: ProgressCallback | None
        _preprocess: PreprocessSpec | Callable[[], PreprocessSpec]

        def _skip(self, report: IndexReport, path: str, reason: str) -> None: ...
        def _record_failure(self, f: Failed, waiting: dict[str, list[FileRecord]], report: IndexReport) -> int: ...
        def _check_vector_dim(self, made: int) -> None: ...
        def _commit_vectors(self, batch: list[Decoded], vectors: np.ndarray, waiting: dict[str, list[FileRecord]],
                            report: IndexReport) -> int: ...

    def _process_remote(self, remote: RemoteEmbedder, paths: list[str], waiting: dict[str, list[FileRecord]],
                        report: IndexReport, done: int, total: int) -> int:
        spec = self._preprocess() if callable(self._preprocess) else self._preprocess
        for group in remote.embed(paths, spec, self.options.max_pixels or DEFAULT_MAX_PIXELS):
            ok: list[Embedded] = []
            for res in group:
                report.decoded += 1
                if isinstance(res, Failed):
                    self._skip(report, res.path, res.reason)
                    done += self._record_failure(res, waiting, report)
                else:
                    ok.append(res)
            if ok:
                self._check_vector_dim(len(ok[0].vector))
                done += self._commit_vectors([e.decoded for e in ok], np.stack([e.vector for e in ok]), waiting,
                                             report)
            if self.on_progress:
                self.on_progress(done, total)
        return done
