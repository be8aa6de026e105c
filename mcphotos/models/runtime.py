"""Prepared runtime models: the ONNX files of a model identity, their manifest, and their checks.

A store's prepared runtime lives beside it, in ``<store>/runtime/``:

- ``image.onnx`` + ``image.data``, ``text.onnx`` + ``text.data``: each tower's graph, already
  optimized by ONNX Runtime at export, with its weights in a separate file that ONNX Runtime
  memory-maps instead of copying (the text tower opens about 3x faster that way);
- ``tokenizer.json``: the torch-free tokenizer (models/tokenizer.py);
- ``manifest.json``: the identity the files were made for (model, weights, preprocessing), the
  opset and versions, each file's SHA-256 and size, the parity and speed measured at export.
  It is written last, so a half-written runtime is never taken for a finished one.

Every file is checked against its SHA-256 whenever its size, mtime, ctime or inode changed since
the last full check (remembered in ``verified.json``), so a truncated or rewritten file is caught
without hashing 300 MB on every query. No torch here: this is the query-time side.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mcphotos.errors import ModelLoadError

FORMAT = 1
RUNTIME_DIR = "runtime"
MANIFEST = "manifest.json"
VERIFIED = "verified.json"
UNEXPORTABLE = "unexportable.json"
TOWERS = ("image", "text")
FILES = ("image.onnx", "image.data", "text.onnx", "text.data", "tokenizer.json")


class RuntimeDamaged(ModelLoadError):
    """A prepared file is missing or differs from its manifest: it must be exported again."""


@dataclass
class Parity:
    """ONNX Runtime against torch fp32 on the real architecture, measured at export."""

    prompts: int
    images: int
    text_min_cosine: float
    image_min_cosine: float
    passed: bool


@dataclass
class Speed:
    """Model-only speeds measured at export, which ``--engine auto`` chooses by."""

    onnx_images_per_s: float
    torch_images_per_s: float
    torch_precision: str
    torch_device: str
    torch_load_s: float  # building the torch model, imports included
    onnx_open_s: float  # opening the image session


@dataclass
class Manifest:
    identity: dict[str, Any]  # the store's identity plus the preprocessing
    dim: int
    logit_scale: float
    context_length: int
    opset: int
    versions: dict[str, str]
    files: dict[str, dict[str, Any]]  # name -> {"sha256", "size"}
    parity: Parity
    speed: Speed
    created: float = field(default_factory=time.time)
    format: int = FORMAT

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        return cls(**{**d, "parity": Parity(**d["parity"]), "speed": Speed(**d["speed"])})


def runtime_dir(store_dir: Path) -> Path:
    return store_dir / RUNTIME_DIR


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_file(path), "size": path.stat().st_size}


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest in ``folder``, or None when there is none (or it is unreadable: prepare again)."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
        manifest = Manifest.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return manifest if manifest.format == FORMAT else None


def matches(manifest: Manifest, identity: dict[str, Any]) -> bool:
    """True when ``manifest`` was prepared for exactly this model identity and preprocessing."""
    return manifest.identity == identity


def verify(folder: Path, manifest: Manifest, names: tuple[str, ...] = FILES) -> None:
    """Raise :class:`RuntimeDamaged` unless each named file matches its manifest entry."""
    try:
        memo: dict[str, list[int]] = json.loads((folder / VERIFIED).read_text())
    except (OSError, ValueError):
        memo = {}
    changed = False
    for name in names:
        entry = manifest.files.get(name)
        path = folder / name
        if entry is None:
            raise RuntimeDamaged(f"prepared runtime in {folder} lists no {name}")
        try:
            key = _stat_key(path)
        except OSError:
            raise RuntimeDamaged(f"prepared runtime file {path} is missing") from None
        if memo.get(name) == key:
            continue
        if key[0] != entry["size"] or sha256_file(path) != entry["sha256"]:
            raise RuntimeDamaged(f"prepared runtime file {path} does not match its checksum")
        memo[name] = key
        changed = True
    if changed:
        try:
            write_json_atomic(folder / VERIFIED, memo)
        except OSError:  # a read-only store only costs a re-hash next time
            pass


def install(staging: Path, folder: Path) -> None:
    """Replace ``folder`` by the finished ``staging`` folder (same file system) as one step for readers.

    The manifest is what makes a runtime valid, and it is only in place once the rename is done.
    """
    old = folder.with_name(f".{folder.name}.old.{os.getpid()}")
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def versions() -> dict[str, str]:
    """The software a prepared runtime depends on: a change of any means export again."""
    import importlib.metadata as md

    out = {}
    for dist in ("mcphotos", "torch", "open_clip_torch", "onnxruntime"):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "none"
    return out


def record_unexportable(folder: Path, reason: str, versions: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_json_atomic(folder / UNEXPORTABLE, {"reason": reason, "versions": versions, "at": time.time()})


def unexportable_reason(folder: Path, versions: dict[str, str]) -> str | None:
    """Why this model could not be exported, if it failed before with the same software versions."""
    try:
        data = json.loads((folder / UNEXPORTABLE).read_text())
    except (OSError, ValueError):
        return None
    return str(data.get("reason")) if data.get("versions") == versions else None


def summary(manifest: Manifest) -> dict[str, Any]:
    """What ``status`` and ``models prepare --json`` show of a manifest."""
    return {
        "size_mb": round(sum(f["size"] for f in manifest.files.values()) / 2**20, 1),
        "opset": manifest.opset, "versions": manifest.versions, "created": manifest.created,
        "parity": asdict(manifest.parity), "speed": asdict(manifest.speed),
    }
