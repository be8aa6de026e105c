"""Where the store lives and which model a command means. No torch, no open_clip here."""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from mcphotos.errors import UsageError

DEFAULT_MODEL = "MobileCLIP2-S0"
HOME_ENV = "MCPHOTOS_HOME"

# open_clip names and their pretrained tags. Short aliases (``S0``, ``l-14``) mean MobileCLIP2.
KNOWN_MODELS: dict[str, str] = {
    "MobileCLIP2-S0": "dfndr2b",
    "MobileCLIP2-S2": "dfndr2b",
    "MobileCLIP2-B": "dfndr2b",
    "MobileCLIP2-S3": "dfndr2b",
    "MobileCLIP2-S4": "dfndr2b",
    "MobileCLIP2-L-14": "dfndr2b",
    "MobileCLIP-S1": "datacompdr",
    "MobileCLIP-S2": "datacompdr",
    "MobileCLIP-B": "datacompdr",
}


def default_home() -> Path:
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("mcphotos", appauthor=False))


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for: an open_clip model name (or config JSON) and its weights."""

    name: str  # open_clip model name, or the path of a model config JSON
    pretrained: str | None = None  # open_clip pretrained tag, used when weights is None
    weights: str | None = None  # local checkpoint file

    @property
    def is_config_file(self) -> bool:
        return self.name.lower().endswith(".json")

    def slug(self, home: Path) -> str:
        """Directory name of this model's store: two models never share vectors."""
        if self.is_config_file:
            base = "custom-" + Path(self.name).stem + "-" + _short_digest(_file_digest(self.name, home))
        else:
            base = self.name
        if self.weights:
            suffix = "w" + _short_digest(_file_digest(self.weights, home))
        else:
            suffix = self.pretrained or "random"
        return _safe(f"{base}@{suffix}")

    def describe(self) -> str:
        if self.weights:
            return f"{self.name} (weights {self.weights})"
        return f"{self.name} ({self.pretrained})" if self.pretrained else self.name


def resolve_model(model: str | None, weights: str | None = None, pretrained: str | None = None) -> ModelSpec:
    """Turn ``--model``/``--weights``/``--pretrained`` into a :class:`ModelSpec`."""
    name = (model or DEFAULT_MODEL).strip()
    if weights is not None:
        weights = str(Path(weights).expanduser())
        if not Path(weights).is_file():
            raise UsageError(f"weights file not found: {weights}", "pass the path of a checkpoint file")
    if name.lower().endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise UsageError(f"model config not found: {name}")
        return ModelSpec(name=str(path.resolve()), pretrained=None, weights=weights)
    canonical = _canonical_name(name)
    tag = pretrained or KNOWN_MODELS.get(canonical)
    return ModelSpec(name=canonical, pretrained=None if weights else tag, weights=weights)


def default_tag(name: str) -> str | None:
    """The pretrained tag whose preprocessing a local checkpoint of ``name`` needs."""
    return KNOWN_MODELS.get(name)


def _canonical_name(name: str) -> str:
    lowered = name.lower()
    for known in KNOWN_MODELS:
        if lowered == known.lower():
            return known
    for known in KNOWN_MODELS:
        if known.startswith("MobileCLIP2-") and lowered == known[len("MobileCLIP2-"):].lower():
            return known
    return name  # any other open_clip model name; engine validates it


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@+-]", "_", s)


def _short_digest(hexdigest: str) -> str:
    return hexdigest[:12]


def _file_digest(path: str, home: Path) -> str:
    """SHA-256 of a file, memoised by (path, size, mtime) so big checkpoints hash once."""
    p = Path(path).resolve()
    st = p.stat()
    cache_file = home / "file-digests.json"
    key = f"{p}|{st.st_size}|{st.st_mtime_ns}"
    cache: dict[str, str] = {}
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key]
    h = hashlib.sha256()
    with open(p, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    digest = h.hexdigest()
    cache[key] = digest
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache))
        os.replace(tmp, cache_file)
    except OSError:
        pass  # a read-only home only costs a re-hash next time
    return digest
