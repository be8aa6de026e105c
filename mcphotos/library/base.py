"""The library's wiring: home, model, store, engine and vectors, warnings, and status."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from mcphotos.indexing.hashing import HASH_NAME
from mcphotos.indexing.imaging import PreprocessSpec
from mcphotos.indexing.roots import RootStatus, root_states
from mcphotos.models.encoder import Encoder
from mcphotos.models.registry import ModelSpec, default_home, resolve_model
from mcphotos.notices import Forwarding, WarningCallback
from mcphotos.store.database import Store, StoreStats
from mcphotos.vectors import Vectors

_L = TypeVar("_L", bound="LibraryBase")


def absolute(paths: Sequence[str]) -> list[str]:
    """Paths as the store names them: ``~`` expanded, absolute. Every Library method normalizes here."""
    return [os.path.abspath(os.path.expanduser(p)) for p in paths]

EngineFactory = Callable[[], Encoder]


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
    roots: tuple[RootStatus, ...] = ()  # the folders indexed, online or offline now


class LibraryBase:
    def __init__(self, home: str | os.PathLike[str] | None = None, model: str | None = None,
                 weights: str | None = None, pretrained: str | None = None, device: str | None = None,
                 precision: str = "auto", engine_factory: EngineFactory | None = None,
                 preprocess: PreprocessSpec | None = None, on_warning: WarningCallback | None = None) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        self.spec: ModelSpec = resolve_model(model, weights, pretrained)
        self.device = device
        self.precision = precision
        self._engine_factory = engine_factory
        self._engine: Any = None
        self._preprocess = preprocess
        self._store: Store | None = None
        self._search_ann: Any = None
        self._warnings = Forwarding(on_warning) if on_warning is not None else None

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

    def engine(self) -> Encoder:
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

    def vectors(self) -> Vectors:
        """Photo and text vectors for any feature: the store's, else computed (see vectors.py)."""
        store = self.store(create=False) if (self.store_dir / "store.db").exists() else None
        return Vectors(store, self.engine, self.preprocess)

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` through the store's text cache (the store is created if need be)."""
        return Vectors(self.store(), self.engine, self.preprocess).texts(texts)

    def logit_scale(self) -> float:
        """The model's logit scale, remembered in the store so cached prompts need no model load."""
        return Vectors(self.store(), self.engine, self.preprocess).logit_scale()

    def close(self) -> None:
        if self._warnings is not None:
            self._warnings.close()
            self._warnings = None
        self._search_ann = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self: _L) -> _L:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> Status:
        exists = (self.store_dir / "store.db").exists()
        stats = None
        ann_state = "missing"
        roots: tuple[RootStatus, ...] = ()
        if exists:
            store = self.store(create=False)
            stats = store.stats()
            roots = tuple(root_states(store))
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
                      exists, stats, ann_state, roots)


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
