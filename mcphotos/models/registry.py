"""Where the store lives, and which model a command means: the one table of models and captioners.

Every CLIP model and CoCa captioner mcphotos knows by name is one :class:`Entry` in
:data:`REGISTRY`. Name resolution (:func:`resolve_model`, and ``resolve_captioner`` in
:mod:`mcphotos.models.coca`), the ``--model``/``--captioner`` help texts, the hints of
unknown-name errors and ``mcphotos models`` all read it. No torch, no open_clip here.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mcphotos.errors import UsageError

DEFAULT_MODEL = "MobileCLIP2-S0"
DEFAULT_CAPTIONER = "mscoco38k"
HOME_ENV = "MCPHOTOS_HOME"
# Every MobileCLIP2 CoCa lives on the hub as ``apple/mobileclip2_coca_dfn2b_s13b_<variant>``.
CAPTIONER_HUB_PREFIX = "apple/mobileclip2_coca_dfn2b_s13b_"
# The checkpoint file names open_clip looks for in a hub repo given as ``org/name/``.
OPEN_CLIP_HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")

Kind = Literal["clip", "captioner"]


@dataclass(frozen=True)
class Preprocess:
    """The image preprocessing a pretrained tag was trained with (open_clip's pretrained config)."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str
    resize_mode: str

    def as_dict(self) -> dict[str, Any]:
        return {"mean": list(self.mean), "std": list(self.std), "interpolation": self.interpolation,
                "resize_mode": self.resize_mode}


@dataclass(frozen=True)
class Entry:
    """One model or captioner known by name."""

    name: str  # canonical name: the open_clip model name, or the captioner's short name
    kind: Kind
    hub: str  # Hugging Face repo the weights come from
    description: str  # one line, for ``mcphotos models``
    aliases: tuple[str, ...] = ()  # other names that mean this entry (matched case-insensitively)
    pretrained: str | None = None  # open_clip pretrained tag (clip entries)
    preprocess: Preprocess | None = None  # where it matters: a local checkpoint of a clip entry needs it
    hub_files: tuple[str, ...] = ()  # checkpoint names to look for in ``hub``; empty: any checkpoint

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def is_default(self) -> bool:
        return self.name == (DEFAULT_MODEL if self.kind == "clip" else DEFAULT_CAPTIONER)


# MobileCLIP and MobileCLIP2 S0/S2/B take raw [0, 1] pixels; S3/S4/L-14 OpenAI's mean and std.
_RAW = Preprocess((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), "bilinear", "shortest")
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
_OPENAI = Preprocess(_OPENAI_MEAN, _OPENAI_STD, "bilinear", "shortest")


def _clip(name: str, tag: str, hub: str, pre: Preprocess, description: str, *aliases: str) -> Entry:
    return Entry(name=name, kind="clip", hub=hub, description=description, aliases=aliases, pretrained=tag,
                 preprocess=pre, hub_files=OPEN_CLIP_HUB_FILES)


def _coca(name: str, suffix: str, description: str) -> Entry:
    # All are open_clip's coca_ViT-L-14 pretrained on DFN-2B; the name says what it was fine-tuned
    # on, hence the style of caption it writes. Their preprocessing comes with the architecture.
    return Entry(name=name, kind="captioner", hub=CAPTIONER_HUB_PREFIX + suffix, description=description)


REGISTRY: tuple[Entry, ...] = (
    # Short aliases (S0, l-14) mean MobileCLIP2: "S2" and "B" are MobileCLIP2's, not MobileCLIP's.
    _clip("MobileCLIP2-S0", "dfndr2b", "timm/MobileCLIP2-S0-OpenCLIP", _RAW,
          "MobileCLIP2 S0: the smallest and fastest", "S0"),
    _clip("MobileCLIP2-S2", "dfndr2b", "timm/MobileCLIP2-S2-OpenCLIP", _RAW,
          "MobileCLIP2 S2: small and fast, more accurate than S0", "S2"),
    _clip("MobileCLIP2-B", "dfndr2b", "timm/MobileCLIP2-B-OpenCLIP", _RAW,
          "MobileCLIP2 B: a ViT-B/16 image encoder", "B"),
    _clip("MobileCLIP2-S3", "dfndr2b", "timm/MobileCLIP2-S3-OpenCLIP", _OPENAI,
          "MobileCLIP2 S3: larger, more accurate, slower", "S3"),
    _clip("MobileCLIP2-S4", "dfndr2b", "timm/MobileCLIP2-S4-OpenCLIP", _OPENAI,
          "MobileCLIP2 S4: large, among the most accurate, slow", "S4"),
    _clip("MobileCLIP2-L-14", "dfndr2b", "timm/MobileCLIP2-L-14-OpenCLIP",
          Preprocess(_OPENAI_MEAN, _OPENAI_STD, "bicubic", "shortest"),
          "MobileCLIP2 L/14: a ViT-L/14 image encoder, the slowest", "L-14"),
    _clip("MobileCLIP-S1", "datacompdr", "apple/MobileCLIP-S1-OpenCLIP", _RAW,
          "MobileCLIP (v1) S1, trained on DataCompDR"),
    _clip("MobileCLIP-S2", "datacompdr", "apple/MobileCLIP-S2-OpenCLIP", _RAW,
          "MobileCLIP (v1) S2, trained on DataCompDR"),
    _clip("MobileCLIP-B", "datacompdr", "apple/MobileCLIP-B-OpenCLIP", _RAW,
          "MobileCLIP (v1) B, trained on DataCompDR"),
    _coca("mscoco38k", "mscoco38k_s12m_context77", "CoCa fine-tuned on MSCOCO: one short sentence per photo"),
    _coca("recap-coco-30k", "recap-coco-30k_s12m_context77", "CoCa fine-tuned on re-captioned COCO: a longer sentence"),
    _coca("gbc1m-short", "gbc1m-short_context77", "CoCa fine-tuned on graph-based captions, short form"),
    _coca("dci-short", "dci-short_s12m_context77", "CoCa fine-tuned on Densely Captioned Images: short summaries"),
    _coca("dci-complete", "dci-complete_s12m_context77", "CoCa fine-tuned on Densely Captioned Images: complete"),
    _coca("dci-extended", "dci-extended_s12m_context77", "CoCa fine-tuned on Densely Captioned Images: extended"),
    _coca("docci", "docci_s12m_context77", "CoCa fine-tuned on DOCCI: detailed descriptions"),
    _coca("dfn2b", "context77", "CoCa pretrained on DFN-2B only, no caption fine-tuning"),
)

# open_clip names and their pretrained tags (a view of REGISTRY, kept for callers of the old table).
KNOWN_MODELS: dict[str, str] = {e.name: e.pretrained for e in REGISTRY if e.kind == "clip" and e.pretrained}


def entries(kind: Kind | None = None) -> list[Entry]:
    """The registry, in table order; only one kind if ``kind`` is given."""
    return [e for e in REGISTRY if kind is None or e.kind == kind]


def lookup(name: str, kind: Kind | None = None) -> Entry | None:
    """The entry ``name`` (or one of its aliases) means, case-insensitively; None if none does."""
    key = name.strip().lower()
    for e in entries(kind):  # full names first: an alias never shadows another entry's name
        if key == e.name.lower():
            return e
    for e in entries(kind):
        if any(key == a.lower() for a in e.aliases):
            return e
    return None


def close_matches(name: str, kind: Kind | None = None, n: int = 3) -> list[Entry]:
    """Entries whose name or an alias looks like ``name`` (a typo), best first."""
    by_name: dict[str, Entry] = {}
    for e in entries(kind):
        for alias in e.names:
            by_name.setdefault(alias.lower(), e)
    found: list[Entry] = []
    for match in difflib.get_close_matches(name.strip().lower(), list(by_name), n=len(by_name), cutoff=0.6):
        if by_name[match] not in found:
            found.append(by_name[match])
    return found[:n]


def _either(names: Iterable[str]) -> str:
    *rest, last = names
    return f"{', '.join(rest)} or {last}" if rest else last


def _label(e: Entry) -> str:
    return f"{e.name} (alias {', '.join(e.aliases)})" if e.aliases else e.name


def unknown_model_hint(name: str) -> str:
    """The hint of an 'unknown model' error: close matches from the registry, and where to look."""
    near = close_matches(name, "clip")
    guess = f"did you mean {_either(_label(e) for e in near)}? " if near else ""
    return f"{guess}see `mcphotos models` for the known names, or pass an open_clip model config .json"


def unknown_captioner_hint(name: str) -> str:
    """The hint of an 'unknown captioner' error, with close matches from the registry."""
    near = close_matches(name, "captioner")
    guess = f"did you mean {_either(e.name for e in near)}? " if near else ""
    known = ", ".join(e.name for e in entries("captioner"))
    return (f"{guess}use one of {known}, a CoCa config .json, or coca_ViT-L-14 with --captioner-weights; "
            "see `mcphotos models`")


def model_choices_help() -> str:
    """Help text of ``--model``, from the registry."""
    clips = entries("clip")
    default = next(e for e in clips if e.is_default)
    # An entry with a short alias shows the alias, as people type it; the others their full name.
    others = [(e.aliases[0] if e.aliases else e.name) for e in clips if e is not default]
    return (f"{default.name} (default), {', '.join(others)}, or an open_clip config .json "
            "(see `mcphotos models`).")


def captioner_choices_help() -> str:
    """Help text of ``--captioner``, from the registry."""
    caps = entries("captioner")
    default = next(e for e in caps if e.is_default)
    others = [e.name for e in caps if e is not default]
    return (f"{default.name} (default), {', '.join(others)}; or a CoCa config .json / coca_ViT-L-14 with "
            "--weights (see `mcphotos models`).")


def cached_hub_file(repo: str, filenames: Sequence[str] = ()) -> str | None:
    """Path of ``repo``'s checkpoint in the local Hugging Face cache, or None. No network, no torch.

    ``filenames``: the checkpoint names to look for, in order; empty means any checkpoint, ranked as
    a captioner download ranks them. Reads the hub cache layout (``models--org--name/refs/main``
    naming a folder under ``snapshots/``) the way ``huggingface_hub.try_to_load_from_cache`` does.
    """
    snapshot = _hub_snapshot(repo)
    if snapshot is None:
        return None
    if filenames:
        names: Iterable[str] = filenames
    else:
        from mcphotos.models.coca import pick_files  # torch-free; the ranking of hub_files

        try:
            _, best = pick_files(n for n in os.listdir(snapshot) if os.path.isfile(os.path.join(snapshot, n)))
        except OSError:
            return None
        names = [best] if best else []
    for fn in names:
        path = os.path.join(snapshot, fn)
        if os.path.isfile(path):  # a snapshot entry is a symlink into blobs/: follow it
            return path
    return None


def entry_cached_file(e: Entry) -> str | None:
    """Where ``e``'s weights are in the local Hugging Face cache, or None."""
    return cached_hub_file(e.hub, e.hub_files)


def _hub_cache_dir() -> str:
    try:  # huggingface_hub reads its environment once, at import: ask it, as the downloaders do
        from huggingface_hub import constants

        return str(constants.HF_HUB_CACHE)
    except ImportError:  # pragma: no cover - open_clip depends on it
        env = os.environ.get("HF_HUB_CACHE")
        if env:
            return env
        hf_home = os.environ.get("HF_HOME") or os.path.join(
            os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        return os.path.join(hf_home, "hub")


def _hub_snapshot(repo: str, revision: str = "main") -> str | None:
    repo_cache = os.path.join(_hub_cache_dir(), "models--" + repo.strip("/").replace("/", "--"))
    ref = os.path.join(repo_cache, "refs", revision)
    try:
        if os.path.isfile(ref):
            with open(ref) as f:
                revision = f.read().strip()
        snapshot = os.path.join(repo_cache, "snapshots", revision)
    except OSError:
        return None
    return snapshot if os.path.isdir(snapshot) else None


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
            base = "custom-" + Path(self.name).stem + "-" + _short_digest(file_digest(self.name, home))
        else:
            base = self.name
        if self.weights:
            suffix = "w" + _short_digest(file_digest(self.weights, home))
        else:
            suffix = self.pretrained or "random"
        return _safe(f"{base}@{suffix}")

    def describe(self) -> str:
        if self.weights:
            return f"{self.name} (weights {self.weights})"
        return f"{self.name} ({self.pretrained})" if self.pretrained else self.name


def existing_file(given: str, what: str, hint: str | None = None) -> Path:
    """``given`` with ``~`` expanded, if it names a file; else a one-line usage error."""
    path = Path(given).expanduser()
    if not path.is_file():
        raise UsageError(f"{what} not found: {given if what.endswith('config') else path}", hint)
    return path


def resolve_model(model: str | None, weights: str | None = None, pretrained: str | None = None) -> ModelSpec:
    """Turn ``--model``/``--weights``/``--pretrained`` into a :class:`ModelSpec`."""
    name = (model or DEFAULT_MODEL).strip()
    if weights is not None:
        weights = str(existing_file(weights, "weights file", "pass the path of a checkpoint file"))
    if name.lower().endswith(".json"):
        path = existing_file(name, "model config")
        return ModelSpec(name=str(path.resolve()), pretrained=None, weights=weights)
    entry = lookup(name, "clip")  # any other name goes to open_clip as is: the engine validates it
    canonical = entry.name if entry else name
    tag = pretrained or (entry.pretrained if entry else None)
    return ModelSpec(name=canonical, pretrained=None if weights else tag, weights=weights)


def default_tag(name: str) -> str | None:
    """The pretrained tag whose preprocessing a local checkpoint of ``name`` needs."""
    return KNOWN_MODELS.get(name)


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@+-]", "_", s)


def _short_digest(hexdigest: str) -> str:
    return hexdigest[:12]


def file_digest(path: str, home: Path) -> str:
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
