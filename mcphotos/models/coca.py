"""Which CoCa captioner: Apple's MobileCLIP2 CoCa variants, local checkpoints, hub downloads, loading.

Every MobileCLIP2 CoCa is open_clip's ``coca_ViT-L-14`` pretrained on DFN-2B; the variants differ
by fine-tuning set (hence caption style). They live on the Hugging Face hub as
``apple/mobileclip2_coca_dfn2b_s13b_<variant>``; they are not in open_clip's pretrained list, so
this module finds the checkpoint (and a config for the long-context variants) in the repo itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcphotos.errors import ModelLoadError, UsageError
from mcphotos.models.registry import (
    CAPTIONER_HUB_PREFIX,
    DEFAULT_CAPTIONER,
    entries,
    existing_file,
    lookup,
    unknown_captioner_hint,
)

if TYPE_CHECKING:  # captioning imports torch-free code from here; import it back only lazily
    from mcphotos.models.cocagen import Captioner

ARCH = "coca_ViT-L-14"  # the open_clip architecture of every MobileCLIP2 CoCa checkpoint
HUB_PREFIX = CAPTIONER_HUB_PREFIX
# The captioners by name are the registry's "captioner" entries (mcphotos.models.registry.REGISTRY).


@dataclass(frozen=True)
class CaptionerSpec:
    """Which CoCa to use: a hub repo, or an architecture plus a local checkpoint."""

    name: str  # a registry captioner name, an open_clip CoCa model name, or a config .json path
    repo: str | None = None  # Hugging Face repo to download from
    arch: str = ARCH  # open_clip model name or config .json path
    weights: str | None = None  # local checkpoint

    def identity(self, home: Path) -> str:
        """Stable id for stored captions: what produced them, not where the file lives."""
        if self.weights:
            from mcphotos.models.registry import file_digest

            return f"{Path(self.arch).stem}@w{file_digest(self.weights, home)[:12]}"
        return self.repo or self.arch


def resolve_captioner(name: str | None = None, weights: str | None = None) -> CaptionerSpec:
    """``--captioner`` and ``--captioner-weights`` to a :class:`CaptionerSpec`."""
    name = (name or DEFAULT_CAPTIONER).strip()
    if weights is not None:
        weights = str(existing_file(weights, "weights file", "pass the path of a CoCa checkpoint"))
    if name.lower().endswith(".json"):
        path = existing_file(name, "captioner config")
        if weights is None:
            raise UsageError("a captioner config .json needs --captioner-weights FILE")
        return CaptionerSpec(name=str(path.resolve()), arch=str(path.resolve()), weights=weights)
    key = name.lower()
    entry = lookup(key, "captioner")
    if key.startswith(HUB_PREFIX):  # a hub repo (or the prefix and a short name): the entry it is, if any
        entry = next((e for e in entries("captioner") if e.hub.lower() == key), None) \
            or lookup(key[len(HUB_PREFIX):], "captioner")
    if entry is not None:
        return CaptionerSpec(name=entry.name, repo=None if weights else entry.hub, weights=weights)
    if key.startswith(HUB_PREFIX):  # another variant (context 128/256): its repo brings a config
        return CaptionerSpec(name=key[len(HUB_PREFIX):], repo=None if weights else key, weights=weights)
    if name.startswith("coca_"):  # any open_clip CoCa architecture with a local checkpoint
        if weights is None:
            raise UsageError(f"captioner '{name}' needs --captioner-weights FILE")
        return CaptionerSpec(name=name, arch=name, weights=weights)
    raise UsageError(f"unknown captioner '{name}'", unknown_captioner_hint(name))


def load_captioner(spec: CaptionerSpec, device: str | None = None, precision: str = "auto",
                   on_status: Callable[[str], None] | None = None) -> Captioner:
    """Build the CoCa model, load its weights (local file or hub download), ready to generate."""
    from mcphotos.models.clip import (
        choose_device,
        choose_precision,
        import_open_clip,
        read_config_file,
        register_config_file,
    )
    from mcphotos.models.cocagen import Captioner

    open_clip = import_open_clip()
    arch = register_config_file(open_clip, spec.arch) if spec.arch.lower().endswith(".json") else spec.arch
    weights = spec.weights
    if weights is None and spec.repo:
        config, weights = hub_files(spec.repo, on_status)
        if config is not None:
            try:
                model_cfg, _ = read_config_file(config)
                if "multimodal_cfg" in model_cfg:  # context-128/256 variants ship their own config
                    arch = register_config_file(open_clip, config)
            except ModelLoadError:
                pass
    if on_status:
        on_status(f"loading captioner {spec.name}")
    try:
        model = open_clip.create_model(arch, pretrained=weights, device="cpu", weights_only=True,
                                       require_pretrained=weights is not None)
    except Exception as e:  # open_clip raises bare RuntimeError/KeyError for mismatches
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot load captioner {spec.name} from {weights or arch}: {first}",
                             "check that the file is a CoCa checkpoint of this architecture") from None
    if not hasattr(model, "text_decoder"):
        raise ModelLoadError(f"{spec.name} is not a CoCa model (no text decoder)")
    tokenizer = open_clip.get_tokenizer(arch)
    dev = choose_device(device)
    return Captioner.from_model(model, tokenizer, dev, choose_precision(dev, precision))


def hub_files(repo: str, on_status: Callable[[str], None] | None = None) -> tuple[str | None, str]:
    """(config, checkpoint) of ``repo``: from the HF cache if there, else downloaded once."""
    try:
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
    except ImportError:  # pragma: no cover - open_clip depends on it
        raise ModelLoadError("huggingface_hub is not installed",
                             "pass a local checkpoint with --captioner-weights FILE") from None
    patterns = ["*.json", "*.safetensors", "*.bin", "*.pt", "*.pth"]
    try:
        cached = snapshot_download(repo, allow_patterns=patterns, local_files_only=True)
        found = pick_files(os.listdir(cached))
        if found[1] is not None:
            return (os.path.join(cached, found[0]) if found[0] else None), os.path.join(cached, found[1])
    except Exception:
        pass  # not cached (fully): download below
    hint = (f"download it once while online, or pass a local checkpoint with --captioner-weights FILE "
            f"(from hf.co/{repo})")
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"captioner {repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set", hint)
    try:
        config, checkpoint = pick_files(HfApi().list_repo_files(repo))
        if checkpoint is None:
            raise ModelLoadError(f"no checkpoint file in {repo}", hint)
        if on_status:
            on_status(f"downloading {repo}/{checkpoint} (once; about 2.5 GB)")
        weights = hf_hub_download(repo, checkpoint)
        cfg = hf_hub_download(repo, config) if config else None
    except ModelLoadError:
        raise
    except Exception as e:
        raise ModelLoadError(f"cannot download captioner {repo}: {str(e).strip().splitlines()[0][:200]}", hint) \
            from None
    return cfg, weights


def pick_files(names: Iterable[str]) -> tuple[str | None, str | None]:
    names = [n for n in names if "/" not in n]
    ranked = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    checkpoint = next((n for n in ranked if n in names), None)
    for ext in (".safetensors", ".pt", ".pth", ".bin"):
        checkpoint = checkpoint or next((n for n in sorted(names) if n.endswith(ext)), None)
    config = next((n for n in ("open_clip_config.json", "config.json") if n in names), None)
    return config, checkpoint
