"""Library commands that write the store: index, the ANN cache, check and repair."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from mcphotos.library.base import LibraryBase, absolute

if TYPE_CHECKING:
    # Imported where used: the indexer pulls in multiprocessing and the decode workers, which a
    # query (every `find`, in a process that should start fast) never needs.
    from mcphotos.distributed.cluster import Resources
    from mcphotos.distributed.pipeline import RayEmbedder, RayOptions
    from mcphotos.indexing.indexer import IndexOptions, IndexReport, ProgressCallback, SkipCallback
    from mcphotos.models.export import PrepareReport
    from mcphotos.store.check import CheckReport


class IndexMixin(LibraryBase):
    def index(self, roots: Sequence[str] = (), paths: Iterable[str] | None = None,
              options: IndexOptions | None = None, on_progress: ProgressCallback | None = None,
              on_skip: SkipCallback | None = None, on_status: Callable[[str], None] | None = None,
              ray: RayOptions | None = None) -> IndexReport:
        """Index ``roots`` and ``paths``. ``on_status`` hears of the one slow extra step: preparing the
        ONNX runtime after the first index on torch. ``ray``: embed the new photos on a Ray cluster
        (mcphotos/distributed/); walking, hashing and writing the store stay here."""
        from mcphotos.indexing.indexer import Indexer

        remote = self.ray_embedder(ray) if ray is not None else None  # before the store: Ray missing creates none
        store = self.store()
        # The engine is chosen once the indexer knows how many photos it must embed (the lambda
        # runs then, in the indexer's loader thread).
        indexer = Indexer(store, lambda: self.index_engine(indexer.images_to_embed), self.preprocess, options,
                          on_progress, on_skip, remote)
        # Stored paths are absolute: a root such as "~/pics" must name them the same way, or every
        # run re-hashes the files under it and never prunes the deleted ones.
        report = indexer.index(absolute(roots), paths)
        self.refresh_ann()
        if self._engine_factory is None and self._engines is not None:
            self._engines.after_index(on_status)
        if store.get_meta("preprocess") is None and self._preprocess is not None:
            with store.transaction():
                store.set_meta("preprocess", json.dumps(self._preprocess.to_dict()))
        return report

    def ray_embedder(self, options: RayOptions) -> RayEmbedder:
        """The Ray pipeline, with the encoder each actor builds: this library's engine factory, torch on
        GPU nodes, else the prepared ONNX runtime (torch-free; shipped with --ray-ship-bytes), else torch."""
        from mcphotos.distributed.cluster import require_ray
        from mcphotos.distributed.pipeline import RayEmbedder
        from mcphotos.distributed.recipes import FactoryRecipe, OnnxRecipe, Recipe, TorchRecipe

        require_ray()  # one clear line before any walking when the extra is missing

        def choose(res: Resources) -> Recipe:
            if self._engine_factory is not None:
                return FactoryRecipe(self._engine_factory)
            if res.gpus > 0:
                return TorchRecipe(self.spec, None, self.precision, gpu=True)
            engines = self.engines()
            if engines.manifest() is not None:
                return OnnxRecipe.from_folder(engines.folder, ship=options.ship_bytes)
            return TorchRecipe(self.spec, "cpu", self.precision)

        return RayEmbedder(options, choose)

    def prepare(self) -> PrepareReport:
        """Export this model's towers to ONNX Runtime now (loads torch), replacing a prepared runtime.

        Raises :class:`~mcphotos.models.export.NotExportable` when the model cannot be exported or
        fails the parity gate; it then stays on torch.
        """
        return self.engines().prepare()  # type: ignore[no-any-return]

    def refresh_ann(self) -> None:
        """Bring the ANN cache on disk up to date (writers only; skipped if another writes)."""
        store = self.store()
        lock = store.writer_lock()
        if not lock.try_acquire():
            return
        try:
            ann = self.ann()
            if store.dim() is None:
                return
            before = ann.manifest.max_id if ann.load() and ann.manifest else None
            ann.ensure(allow_build=True)
            if ann.manifest is not None and ann.manifest.max_id != before:
                ann.save()
        finally:
            lock.release()

    def check(self) -> CheckReport:
        """SQLite integrity, vectors and the search index (reads only: takes no lock)."""
        from mcphotos.store.check import check_store

        return check_store(self.store(create=False))

    def repair(self) -> CheckReport:
        """Fix what :meth:`check` finds, holding the writer lock (a second writer is refused)."""
        from mcphotos.store.check import repair

        store = self.store(create=False)
        with store.writer_lock():
            return repair(store)
