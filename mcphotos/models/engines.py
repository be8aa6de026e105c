"""Which engine runs a job, and the life of the prepared ONNX runtime.

Two engines satisfy :class:`~mcphotos.models.encoder.Encoder`: torch (models/clip.py: export,
CUDA/MPS, bf16 bulk indexing) and ONNX Runtime (models/onnxengine.py: no torch at all, opens in
a tenth of a second). ``auto`` picks by the speeds measured when the runtime was prepared:

    time(engine) = start-up + images / images_per_second

so a query (no images) and a small job run on ONNX Runtime, and a bulk index takes torch only
where torch's start-up (~3 s of imports and model building) is repaid by a faster model, as
with bf16 on AVX-512/AMX CPUs or on a GPU. ``--engine torch|onnx`` overrides.

The runtime is exported when torch has the model loaded anyway (after an ``index``), or with
``mcphotos models prepare``. A damaged runtime is exported again; a model that cannot be
exported stays on torch and says so once (until the software changes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcphotos.enums import StrEnum
from mcphotos.errors import ModelLoadError
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.models.encoder import Encoder
from mcphotos.models.registry import ModelSpec
from mcphotos.models.runtime import Manifest, RuntimeDamaged, matches, read_manifest, runtime_dir, verify

log = logging.getLogger("mcphotos")


class EngineKind(StrEnum):
    AUTO = "auto"
    TORCH = "torch"
    ONNX = "onnx"


def describe(engine: Any) -> str:
    """``torch (cpu, bf16)`` or ``onnx (cpu, fp32)``: what status and the bench report."""
    if hasattr(engine, "describe"):
        return str(engine.describe())
    name = getattr(engine, "name", "torch")
    return f"{name} ({getattr(engine, 'device', '?')}, {getattr(engine, 'precision', '?')})"


def choose(manifest: Manifest | None, images: int, gpu: bool) -> EngineKind:
    """The faster engine for a job that embeds ``images`` photos (0: a query)."""
    if manifest is None:
        return EngineKind.TORCH
    if images == 0:
        return EngineKind.ONNX
    s = manifest.speed
    if gpu and s.torch_device == "cpu":
        # Measured on the CPU, but torch would run on the GPU here: bulk work goes there.
        return EngineKind.TORCH if images >= 64 else EngineKind.ONNX
    onnx_s = s.onnx_open_s + images / max(s.onnx_images_per_s, 1e-6)
    torch_s = s.torch_load_s + images / max(s.torch_images_per_s, 1e-6)
    return EngineKind.ONNX if onnx_s <= torch_s else EngineKind.TORCH


class Engines:
    """The engines of one model identity: loaded once each, chosen per job."""

    def __init__(self, spec: ModelSpec, store_dir: Path, identity: dict[str, Any], device: str | None = None,
                 precision: str = "auto", requested: str = "auto", auto_prepare: bool = True,
                 known_preprocess: Any = None, gpu: bool = False) -> None:
        self.spec = spec
        self.folder = runtime_dir(store_dir)
        self.identity = identity  # the store's identity; the runtime adds the preprocessing
        self.device = device
        self.precision = precision
        self.requested = EngineKind(requested)
        self.auto_prepare = auto_prepare
        self.gpu = gpu  # torch would run on CUDA or MPS
        self._known_preprocess = known_preprocess  # a callable: the store's recorded preprocessing, or None
        self._torch: Any = None
        self._torch_load_s = 0.0
        self._onnx: Any = None
        self._manifest: Manifest | None = None
        self._manifest_read = False
        self._lock = threading.RLock()
        self.used: dict[str, str] = {}  # job ("query", "index") -> engine description

    # -- the prepared runtime ----------------------------------------------------------------------

    def manifest(self) -> Manifest | None:
        """The prepared runtime's manifest, when there is one for exactly this identity."""
        # Under a lock: the indexer asks from its loader thread while the main thread asks for the
        # preprocessing, and neither may see "read, none found" before the reading is done.
        with self._lock:
            if not self._manifest_read:
                found = read_manifest(self.folder)
                if found is not None and self._belongs(found):
                    self._manifest = found
                self._manifest_read = True
        return self._manifest

    def _belongs(self, manifest: Manifest) -> bool:
        want = {k: v for k, v in manifest.identity.items() if k != "preprocess"}
        if want != self.identity:
            return False
        recorded = self._known_preprocess() if self._known_preprocess else None
        return recorded is None or matches(manifest, {**self.identity, "preprocess": recorded})

    def preprocess(self) -> PreprocessSpec:
        """The model's preprocessing: the runtime's (no open_clip import) or open_clip's config."""
        m = self.manifest()
        if m is not None and self.requested != EngineKind.TORCH:
            return PreprocessSpec.from_dict(m.identity["preprocess"])
        from mcphotos.models.clip import preprocess_spec_for

        return preprocess_spec_for(self.spec)

    # -- engines -------------------------------------------------------------------------------------

    def torch(self) -> Any:
        with self._lock:  # loaded once, whichever thread asks first
            if self._torch is None:
                from mcphotos.models.clip import load_engine

                t0 = time.perf_counter()
                self._torch = load_engine(self.spec, self.device, self.precision)
                self._torch_load_s = time.perf_counter() - t0
        return self._torch

    def _open_onnx(self, manifest: Manifest, prefetch: tuple[str, ...]) -> Any:
        if self._onnx is None:
            from mcphotos.models.onnxengine import OnnxEngine

            self._onnx = OnnxEngine(self.folder, manifest)
        self._onnx.prefetch(*prefetch)
        return self._onnx

    def for_job(self, job: str, images: int = 0) -> Encoder:
        """The engine for ``job`` ("query" or "index") embedding ``images`` photos."""
        manifest = self.manifest()
        if self.requested == EngineKind.ONNX and manifest is None:
            manifest = self.prepare().manifest
        kind = self.requested if self.requested != EngineKind.AUTO else \
            choose(manifest, images, gpu=self.gpu)
        if kind == EngineKind.ONNX and manifest is not None:
            tower = "text" if job == "query" else "image"
            try:
                # Every file, not just this tower's: a query by example needs the image tower too.
                # Cheap: a stat each, unless a file changed since its last full check.
                verify(self.folder, manifest)
            except RuntimeDamaged as e:
                engine = self.repair(e)
            else:
                # A query opens its text tower only once a text must be encoded (or when find
                # asks ahead, see prefetch_text); an index starts opening the image tower now.
                engine = self._open_onnx(manifest, () if job == "query" else (tower,))
        else:
            engine = self.torch()
        self.used[job] = describe(engine)
        return engine

    def repair(self, error: RuntimeDamaged) -> Encoder:
        """A prepared file failed its check: export again with torch, and run this job on torch."""
        log.warning("%s; exporting it again", error.message)
        self._onnx = None
        self._manifest, self._manifest_read = None, True
        self.prepare()
        return self.torch()

    def prepare(self) -> Any:
        """Export the runtime now (loading torch if need be); a :class:`PrepareReport`."""
        try:
            torch_engine = self.torch()
        except ImportError as e:  # torch or open_clip missing: nothing can re-export
            raise ModelLoadError(f"the prepared runtime is unusable and torch cannot export it: {e}",
                                 "pip install torch open_clip_torch, or run `mcphotos models prepare` "
                                 "where they are installed") from None
        from mcphotos.models.export import export_runtime

        identity = {**self.identity, "preprocess": torch_engine.preprocess.to_dict()}
        report = export_runtime(torch_engine, self.folder, identity, self._torch_load_s)
        self._manifest, self._manifest_read, self._onnx = report.manifest, True, None
        return report

    def after_index(self, on_status: Callable[[str], None] | None = None) -> None:
        """Export the runtime if torch ran the index and none is prepared: torch is loaded anyway."""
        if not self.auto_prepare or self._torch is None or self.manifest() is not None:
            return
        from mcphotos.models.export import NotExportable
        from mcphotos.models.runtime import unexportable_reason, versions

        if unexportable_reason(self.folder, versions()) is not None:
            return  # said once already
        if on_status is not None:
            on_status(f"preparing the fast runtime for {self.spec.name} (once; later commands start without torch)")
        try:
            self.prepare()
        except NotExportable as e:
            log.warning("%s stays on torch: %s", self.spec.name, e.message)
