"""The library's wiring: home, model, store, engine and vectors, warnings, and status."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mcphotos.enums import parse_choice
from mcphotos.indexing.hashing import HASH_NAME
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.models.encoder import Encoder
from mcphotos.models.engines import EngineKind, Engines
from mcphotos.models.registry import ModelSpec, default_home, resolve_model
from mcphotos.notices import Forwarding, WarningCallback

# numpy, the store's module and the vectors' are imported where they are used: a command that
# the warm server answers (warm/) opens none of them, and importing them costs it most of its time.
if TYPE_CHECKING:
    import numpy as np

    from mcphotos.indexing.roots import RootStatus
    from mcphotos.store.database import Store, StoreStats
    from mcphotos.vectors import Vectors

_L = TypeVar("_L", bound="LibraryBase")


def absolute(paths: Sequence[str]) -> list[str]:
    """Paths as the store names them: ``~`` expanded, absolute. Every Library method normalizes here."""
    return [os.path.abspath(os.path.expanduser(p)) for p in paths]

EngineFactory = Callable[[], Encoder]
ENGINES_META = "engines_used"


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
    engine: str = "auto"  # what --engine asked for
    runtime: dict | None = None  # the prepared ONNX runtime (runtime.summary), None if there is none
    runtime_problem: str | None = None  # why there is none: "not prepared" or why it cannot be
    engines_used: dict | None = None  # job -> the engine that last ran it, and when
    server: dict | None = None  # the `mcphotos serve` running for this store: pid, url, socket, model


class LibraryBase:
    def __init__(self, home: str | os.PathLike[str] | None = None, model: str | None = None,
                 weights: str | None = None, pretrained: str | None = None, device: str | None = None,
                 precision: str = "auto", engine_factory: EngineFactory | None = None,
                 preprocess: PreprocessSpec | None = None, on_warning: WarningCallback | None = None,
                 engine: str = "auto", auto_prepare: bool = True) -> None:
        self.home = Path(home).expanduser() if home else default_home()
        self.spec: ModelSpec = resolve_model(model, weights, pretrained)
        self.device = device
        self.precision = precision
        self._engine_factory = engine_factory
        self._engine: Any = None
        self.engine_kind = parse_choice(EngineKind, engine, "engine")  # models/engines.py chooses for auto
        self.auto_prepare = auto_prepare
        self._engines: Engines | None = None
        self._engines_lock = threading.Lock()
        self._preprocess = preprocess
        self._store: Store | None = None
        self._search_ann: Any = None
        self._warnings = Forwarding(on_warning) if on_warning is not None else None
        # A running `mcphotos serve` of this store and model encodes for us (warm/); False in the
        # server's own library, and off whenever the caller asked for a particular engine setup.
        self.use_warm = True
        self._warm: Any = None
        self._warm_tried = False

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
            from mcphotos.store.database import Store

            self._store = Store(self.store_dir, self.identity(), create=create)
        return self._store

    def engines(self) -> Engines:
        """The torch and ONNX Runtime engines of this model, and which one runs a job."""
        # The indexer asks from two threads at once (preprocessing here, the engine in its loader
        # thread): both must get the same object, or the torch engine loaded in one is unseen.
        with self._engines_lock:
            if self._engines is None:
                self._engines = Engines(self.spec, self.store_dir, self.identity(), self.device, self.precision,
                                        self.engine_kind, self.auto_prepare and self.engine_kind == EngineKind.AUTO,
                                        known_preprocess=self._stored_preprocess,
                                        gpu=(self.device or guess_device()) not in ("cpu", "auto"))
        return self._engines

    def engine(self) -> Encoder:
        """The engine for queries and small jobs: a running server's warm model when there is one
        for this store and identity, else ONNX Runtime once the model is prepared, else torch."""
        if self._engine is None:
            if self._engine_factory is not None:
                self._engine = self._engine_factory()
            elif (client := self.warm_client()) is not None:
                from mcphotos.warm.client import WarmEncoder

                self._engine = WarmEncoder(client, lambda: self.engines().for_job("query"), self.preprocess)
            else:
                self._engine = self.engines().for_job("query")
        return self._engine

    def warm_client(self) -> Any:
        """A client of the ``mcphotos serve`` running for this store and model identity, or None.

        Only when nothing asks for a particular engine (``--engine``, ``--device``,
        ``--precision``, a test's engine factory): the server's vectors are then the ones this
        process would compute itself. Asked once per Library; silent when there is none.
        """
        if not self._warm_tried:
            self._warm_tried = True
            eligible = (self.use_warm and self._engine_factory is None and self.device is None
                        and self.precision == "auto" and self.engine_kind == EngineKind.AUTO
                        and (self.store_dir / "store.db").exists())
            if eligible:
                from mcphotos.warm.client import connect

                client = connect(self.store_dir, self.identity())
                if client is not None and client.hello.get("engine") != EngineKind.AUTO.value:
                    client.close()  # the server runs a chosen engine: its vectors may differ in the last bits
                    client = None
                self._warm = client
        return self._warm

    def warm_up(self) -> None:
        """Open what answering a query needs (the engine's text tower), so the first one is fast."""
        engine = self.engine()
        prefetch = getattr(engine, "prefetch", None)
        if prefetch is not None:
            prefetch("text")
        engine.encode_texts(["a photo"])

    def index_engine(self, images: int) -> Encoder:
        """The engine for an index that embeds ``images`` photos: the faster one for that many."""
        if self._engine_factory is not None:
            return self.engine()
        return self.engines().for_job("index", images)

    def _stored_preprocess(self) -> dict | None:
        """The preprocessing the store recorded at its first index, if it has one (no model needed)."""
        if not (self.store_dir / "store.db").exists():
            return None
        raw = self.store(create=False).get_meta("preprocess")
        return json.loads(raw) if raw else None

    def preprocess(self) -> PreprocessSpec:
        if self._preprocess is None:
            if self._engine_factory is not None:
                self._preprocess = self.engine().preprocess
            else:
                self._preprocess = self.engines().preprocess()
        return self._preprocess

    def ann(self) -> Any:
        from mcphotos.store.ann import AnnIndex

        return AnnIndex(self.store())

    def vectors(self) -> Vectors:
        """Photo and text vectors for any feature: the store's, else computed (see vectors.py)."""
        from mcphotos.vectors import Vectors

        store = self.store(create=False) if (self.store_dir / "store.db").exists() else None
        return Vectors(store, self.engine, self.preprocess)

    def _store_vectors(self) -> Vectors:
        from mcphotos.vectors import Vectors

        return Vectors(self.store(), self.engine, self.preprocess)

    def text_vectors(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` through the store's text cache (the store is created if need be)."""
        return self._store_vectors().texts(texts)

    def logit_scale(self) -> float:
        """The model's logit scale, remembered in the store so cached prompts need no model load."""
        return self._store_vectors().logit_scale()

    def _record_engines(self) -> None:
        """Remember which engine ran each job, for ``status`` (written only when it changed)."""
        used = self._engines.used if self._engines is not None else {}
        if not used or self._store is None:
            return
        try:
            old = json.loads(self._store.get_meta(ENGINES_META) or "{}")
            new = {**old, **{job: {"engine": desc, "at": time.time()} for job, desc in used.items()}}
            if {k: v["engine"] for k, v in old.items()} != {k: v["engine"] for k, v in new.items()}:
                with self._store.transaction():
                    self._store.set_meta(ENGINES_META, json.dumps(new))
        except Exception:  # a busy or read-only store only loses this note
            pass

    def close(self) -> None:
        self._record_engines()
        if self._warm is not None:
            self._warm.close()
            self._warm = None
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
            from mcphotos.indexing.roots import root_states  # the walker's modules: not for every command

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
        runtime, problem = self.runtime_state()
        used = json.loads(self.store(create=False).get_meta(ENGINES_META) or "{}") if exists else {}
        return Status(str(self.home), str(self.store_dir), self.spec.name, ident["source"], device,
                      self.precision if self.precision != "auto" else guess_precision(device),
                      exists, stats, ann_state, roots, self.engine_kind, runtime, problem, used,
                      self.server_state() if exists else None)

    def server_state(self) -> dict | None:
        """The ``mcphotos serve`` answering for this store, if one does: pid, url, socket, and
        whether it serves this model identity (only then does the CLI use it)."""
        from mcphotos.warm.client import probe

        hello = probe(self.store_dir)
        if hello is None:
            return None
        return {"pid": hello.get("pid"), "url": hello.get("url"), "socket": hello.get("socket"),
                "model": hello.get("model"), "same_identity": hello.get("identity") == self.identity(),
                "requests": hello.get("requests", {})}

    def runtime_state(self) -> tuple[dict | None, str | None]:
        """The prepared runtime's summary, or why there is none."""
        from mcphotos.models.runtime import summary, unexportable_reason, versions

        engines = self.engines()
        manifest = engines.manifest()
        if manifest is not None:
            return summary(manifest), None
        reason = unexportable_reason(engines.folder, versions())
        return None, (f"cannot be prepared: {reason}" if reason else "not prepared")


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
