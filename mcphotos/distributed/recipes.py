"""How each Ray actor builds its encoder, once, in its ``__init__``: picklable recipes.

- :class:`OnnxRecipe`: the prepared ONNX Runtime runtime (models/runtime.py), no torch: by folder
  when the cluster sees the driver's disk, else the files' bytes, unpacked once per actor;
- :class:`TorchRecipe`: the torch engine on the actor's device (a GPU actor gets ``cuda``);
- :class:`FactoryRecipe`: any picklable zero-argument callable (a ``Library(engine_factory=…)``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcphotos.models.encoder import ImageEncoder
from mcphotos.models.registry import ModelSpec


class Recipe:
    gpu = False  # True: each actor wants one GPU

    def build(self) -> ImageEncoder:
        raise NotImplementedError


@dataclass(frozen=True)
class OnnxRecipe(Recipe):
    folder: str
    manifest: dict[str, Any]
    files: dict[str, bytes] | None = field(default=None, repr=False)  # set: ship them, the cluster can't see
    threads: int | None = None

    @classmethod
    def from_folder(cls, folder: Path, ship: bool, threads: int | None = None) -> OnnxRecipe:
        from mcphotos.models.runtime import FILES, read_manifest

        manifest = read_manifest(folder)
        if manifest is None:
            raise FileNotFoundError(folder / "manifest.json")
        files = {name: (folder / name).read_bytes() for name in FILES} if ship else None
        return cls(str(folder), asdict(manifest), files, threads)

    def build(self) -> ImageEncoder:
        from mcphotos.models.onnxengine import OnnxEngine
        from mcphotos.models.runtime import Manifest

        folder = Path(self.folder)
        if self.files is not None:
            folder = Path(tempfile.mkdtemp(prefix="mcphotos-runtime-"))
            for name, data in self.files.items():
                (folder / name).write_bytes(data)
        engine = OnnxEngine(folder, Manifest.from_dict(self.manifest), threads=self.threads)
        engine.prefetch("image")
        return engine


@dataclass(frozen=True)
class TorchRecipe(Recipe):
    spec: ModelSpec
    device: str | None = None
    precision: str = "auto"
    gpu: bool = False

    def build(self) -> ImageEncoder:
        from mcphotos.models.clip import load_engine

        return load_engine(self.spec, "cuda" if self.gpu else self.device, self.precision)


@dataclass(frozen=True)
class FactoryRecipe(Recipe):
    factory: Callable[[], ImageEncoder]

    def build(self) -> ImageEncoder:
        return self.factory()
