"""The library facade: one object that knows the home, the model and its store.

``Library`` wires the pieces together and is what the CLI (and a Python user) calls::

    from mcphotos import Library
    lib = Library(model="MobileCLIP2-S0")
    lib.index(["~/Pictures"])
    for hit in lib.find("a receipt", k=5):
        print(hit.score, hit.path)

The engine is built only when a command needs it. Tests pass ``engine_factory`` to use a
fake or the tiny trained CLIP.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcphotos.errors import UsageError
from mcphotos.indexing.hashing import HASH_NAME
from mcphotos.indexing.imaging import PreprocessSpec
from mcphotos.indexing.indexer import Indexer, IndexOptions, IndexReport, ProgressCallback, SkipCallback
from mcphotos.models.registry import ModelSpec, default_home, resolve_model
from mcphotos.search.cutoff import Cut
from mcphotos.search.nearest import SearchFilter, SearchHit, search, text_vectors
from mcphotos.search.query import FindSpec, Term, combine
from mcphotos.store.database import Store, StoreStats

if TYPE_CHECKING:
    from mcphotos.sidecars.xmp import SidecarChange
    from mcphotos.tagging.labels import LabelSet
    from mcphotos.tagging.tagger import PhotoTags, TagOptions, TagReport, UntagReport

EngineFactory = Callable[[], Any]


@dataclass(frozen=True)
class Status:
    home: str
    store_dir: str
    model: str
    source: str
    device: str
    precision: str
    exists: bool
    stats: StoreStats | None
    ann: str  # "current", "behind", "missing" or a problem


class Library:
    def __init__(self, home: str | os.PathLike[str] | None = None, model: str | None = None,
                 weights: str | None = None, pretrained: str | None = None, device: str | None = None,
                 precision: str = "auto", engine_factory: EngineFactory | None = None,
                 preprocess: PreprocessSpec | None = None) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        self.spec: ModelSpec = resolve_model(model, weights, pretrained)
        self.device = device
        self.precision = precision
        self._engine_factory = engine_factory
        self._engine: Any = None
        self._preprocess = preprocess
        self._store: Store | None = None
        self._search_ann: Any = None

    # -- wiring ------------------------------------------------------------------------------

    @property
    def store_dir(self) -> Path:
        return self.home / "models" / self.spec.slug(self.home)

    def identity(self) -> dict:
        source = f"weights:{self.spec.slug(self.home).rsplit('@w', 1)[-1]}" if self.spec.weights \
            else (self.spec.pretrained or "random")
        return {"name": self.spec.name, "source": source, "hash": HASH_NAME}

    def store(self, create: bool = True) -> Store:
        if self._store is None:
            self._store = Store(self.store_dir, self.identity(), create=create)
        return self._store

    def engine(self) -> Any:
        if self._engine is None:
            if self._engine_factory is not None:
                self._engine = self._engine_factory()
            else:
                from mcphotos.models.clip import load_engine

                self._engine = load_engine(self.spec, self.device, self.precision)
        return self._engine

    def preprocess(self) -> PreprocessSpec:
        if self._preprocess is None:
            if self._engine_factory is not None:
                self._preprocess = self.engine().preprocess
            else:
                from mcphotos.models.clip import preprocess_spec_for

                self._preprocess = preprocess_spec_for(self.spec)
        return self._preprocess

    def ann(self) -> Any:
        from mcphotos.store.ann import AnnIndex

        return AnnIndex(self.store())

    def close(self) -> None:
        self._search_ann = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands ----------------------------------------------------------------------------

    def index(self, roots: Sequence[str] = (), paths: Iterable[str] | None = None,
              options: IndexOptions | None = None, on_progress: ProgressCallback | None = None,
              on_skip: SkipCallback | None = None) -> IndexReport:
        store = self.store()
        indexer = Indexer(store, self.engine, self.preprocess, options, on_progress, on_skip)
        # Stored paths are absolute: a root such as "~/pics" must name them the same way, or every
        # run re-hashes the files under it and never prunes the deleted ones.
        report = indexer.index([os.path.abspath(os.path.expanduser(r)) for r in roots], paths)
        self.refresh_ann()
        if store.get_meta("preprocess") is None and self._preprocess is not None:
            with store.transaction():
                import json

                store.set_meta("preprocess", json.dumps(self._preprocess.to_dict()))
        return report

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

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        return text_vectors(self.store(), texts, lambda ts: self.engine().encode_texts(ts))

    def find(self, query: str | None, k: int = 20, in_dir: str | None = None,
             min_score: float | None = None, tags: Sequence[str] | None = None) -> list[SearchHit]:
        """Photos matching ``query``; ``tags``: only photos carrying all of them (no query: by tag score)."""
        if query is None:
            from mcphotos.tagging.tagger import files_with_tags

            if not tags:
                raise UsageError("give a query, --tag, or both")
            in_dir = os.path.abspath(os.path.expanduser(in_dir)) if in_dir else None
            rows = files_with_tags(self.store(create=False), tags, in_dir)
            hits = [SearchHit(p, s, h) for p, h, s in rows if os.path.exists(p)]
            return [h for h in hits if min_score is None or h.score >= min_score][:k]
        vec = self.text_vectors([query])[0]
        return self.search_vector(vec, k, in_dir, min_score, tags)

    def search_vector(self, vector: np.ndarray, k: int = 20, in_dir: str | None = None,
                      min_score: float | None = None, tags: Sequence[str] | None = None,
                      filters: SearchFilter | None = None, cut: Cut | None = None) -> list[SearchHit]:
        store = self.store(create=False)
        if in_dir is not None:
            in_dir = os.path.abspath(os.path.expanduser(in_dir))
        if tags:
            filters = replace(filters or SearchFilter(), image_ids=self.tag_image_ids(tags))
        if store.dim() is None:
            ann = None
        else:
            # Kept across searches: loading the index from disk costs more than a query.
            if self._search_ann is None:
                self._search_ann = self.ann()
            ann = self._search_ann
        return search(store, vector, k, in_dir, min_score, ann, filters=filters, cut=cut)

    def image_embeddings(self, paths: Sequence[str]) -> list[Any]:
        """``export.Embedding`` per photo: the stored vector when the store has its bytes, else embedded now."""
        from mcphotos.export import embed_images

        store = self.store(create=False) if (self.store_dir / "store.db").exists() else None
        return embed_images(store, paths, self.engine)

    def query_vector(self, terms: Sequence[Term]) -> np.ndarray:
        """The unit vector of combined ``terms`` (see query.py for the math)."""
        texts = [t.value for t in terms if t.kind == "text"]
        images = [t.value for t in terms if t.kind == "image"]
        text_vecs = iter(self.text_vectors(texts)) if texts else iter(())
        image_vecs = iter([e.vector for e in self.image_embeddings(images)]) if images else iter(())
        rows = [next(text_vecs) if t.kind == "text" else next(image_vecs) for t in terms]
        return combine(np.stack(rows), [t.weight for t in terms])

    def filters_for(self, spec: FindSpec) -> SearchFilter:
        dirs = tuple(os.path.abspath(os.path.expanduser(d)) for d in spec.in_dirs)
        return SearchFilter(dirs, spec.exts, spec.after, spec.before, self.tag_image_ids(spec.tags))

    def tag_image_ids(self, tags: Sequence[str]) -> frozenset[int] | None:
        """Image ids carrying every tag in ``tags`` (None: no restriction)."""
        from mcphotos.tagging.tagger import image_ids_with_tags

        if not tags:
            return None
        return frozenset(image_ids_with_tags(self.store(create=False), list(tags)))

    def _find_by_tags(self, spec: FindSpec) -> list[SearchHit]:
        """No query, only --tag: the tagged photos (passing the other filters), best tag score first."""
        from mcphotos.search.nearest import files_for_ids
        from mcphotos.tagging.tagger import tag_scores

        filters = self.filters_for(spec)
        ids = sorted(filters.image_ids or ())
        files = files_for_ids(self.store(), ids, filters)
        scores = tag_scores(self.store(), list(spec.tags))
        hits = [SearchHit(p, float(scores.get(h, 0.0)), h) for rows in files.values() for p, h in rows
                if os.path.exists(p)]
        hits.sort(key=lambda x: (-x.score, x.path))
        return [x for x in hits if spec.min_score is None or x.score >= spec.min_score][:spec.k]

    def tags_for_hashes(self, hashes: Sequence[str]) -> dict[str, list[str]]:
        """Tag labels per content hash, for export."""
        from mcphotos.tagging.tagger import tags_for_hashes

        found = tags_for_hashes(self.store(create=False), list(hashes))
        return {h: [getattr(t, "label", str(t)) for t in tags] for h, tags in found.items()}

    def run_find(self, spec: FindSpec) -> list[SearchHit]:
        """A full find: combined terms, filters and cut-off."""
        self.store(create=False)
        terms = spec.terms()
        if not terms:  # only --tag: list the tagged photos
            return self._find_by_tags(spec)
        vec = self.query_vector(terms)
        cut = Cut(spec.relative, spec.auto_cut)
        return self.search_vector(vec, spec.k, None, spec.min_score, filters=self.filters_for(spec),
                                  cut=cut if cut.active else None)

    # -- tagging (see tagging.py) --------------------------------------------------------------

    def logit_scale(self) -> float:
        """The model's logit scale, remembered in the store so cached prompts need no model load."""
        store = self.store()
        raw = store.get_meta("logit_scale")
        if raw is not None:
            return float(raw)
        scale = float(self.engine().logit_scale)
        with store.transaction():
            store.set_meta("logit_scale", repr(scale))
        return scale

    def tag(self, label_set: LabelSet, roots: Sequence[str] | None = None, options: TagOptions | None = None,
            dry_run: bool = False, on_status: Callable[[str], None] | None = None) -> TagReport:
        from mcphotos.tagging.tagger import TagOptions, run_tagging

        roots = [os.path.abspath(os.path.expanduser(r)) for r in roots] if roots else None
        return run_tagging(self.store(create=False), label_set, roots, self.text_vectors, self.logit_scale,
                           options or TagOptions(), dry_run, on_status=on_status)

    def photo_tags(self, paths: Sequence[str], label_set: str | None = None) -> tuple[list[PhotoTags], list[str]]:
        """Stored tags of the photos at or under ``paths``, and the paths with nothing indexed."""
        from mcphotos.tagging.tagger import stored_tags

        return stored_tags(self.store(create=False), [os.path.abspath(os.path.expanduser(p)) for p in paths],
                           label_set)

    def untag(self, roots: Sequence[str] | None = None, label_set: str | None = None, xmp: bool = False,
              style: str = "darktable", dry_run: bool = False) -> UntagReport:
        from mcphotos.tagging.tagger import untag

        roots = [os.path.abspath(os.path.expanduser(r)) for r in roots] if roots else None
        return untag(self.store(create=False), roots, label_set, xmp, style, dry_run)

    def write_sidecars(self, report: TagReport, style: str = "darktable", dry_run: bool = False
                       ) -> list[SidecarChange]:
        """Make the sidecars of a run's photos carry their tags of every set (see xmp.py)."""
        from mcphotos.tagging.tagger import sync_sidecars

        return sync_sidecars(self.store(create=False), [(p.path, p.hash) for p in report.photos], style, dry_run,
                             keep=lambda t: t.label_set != report.label_set,
                             extra={p.hash: p.tags for p in report.photos})

    def dedup(self, tier: str = "near", threshold: float | None = None, roots: Sequence[str] | None = None,
              keep: str = "largest", exists: Callable[[str], bool] = os.path.exists) -> Any:
        """Duplicate groups among the indexed photos (a ``dedup.DedupReport``). Never loads the model."""
        import json

        from mcphotos.dedup.finder import find_duplicates
        from mcphotos.indexing.imaging import PreprocessSpec

        store = self.store(create=False)
        raw = store.get_meta("preprocess")
        spec = PreprocessSpec.from_dict(json.loads(raw)) if raw else self._preprocess
        excluded = json.loads(store.get_meta("dedup_quarantine") or "[]")
        roots = [os.path.abspath(os.path.expanduser(r)) for r in roots] if roots else None
        ann = self.ann() if store.dim() is not None else None
        return find_duplicates(store, tier, threshold, roots, keep, spec, excluded, exists, ann)

    def status(self) -> Status:
        exists = (self.store_dir / "store.db").exists()
        stats = None
        ann_state = "missing"
        if exists:
            store = self.store(create=False)
            stats = store.stats()
            ann = self.ann()
            problem = ann.problem()
            if problem is None:
                man = ann.read_manifest()
                ann_state = "current" if man and man.max_id == store.max_image_id() else "behind"
            else:
                ann_state = problem
        device = self.device or guess_device()
        ident = self.identity()
        return Status(str(self.home), str(self.store_dir), self.spec.name, ident["source"], device,
                      self.precision if self.precision != "auto" else guess_precision(device),
                      exists, stats, ann_state)


def guess_device() -> str:
    """The device the engine would pick, found without importing torch (which takes seconds)."""
    if os.path.exists("/proc/driver/nvidia/version") or os.path.exists("/dev/nvidia0"):
        return "cuda"
    if platform.system() == "Darwin" and platform.machine() == "arm64":
        return "mps"
    return "cpu"


def guess_precision(device: str) -> str:
    if device in ("cuda", "mps"):
        return "fp16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "fp32"
