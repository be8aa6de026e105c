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

if TYPE_CHECKING:  # captioning imports torch-free code from here; import it back only lazily
    from mcphotos.captions.captioning import Captioner

ARCH = "coca_ViT-L-14"  # the open_clip architecture of every MobileCLIP2 CoCa checkpoint
HUB_PREFIX = "apple/mobileclip2_coca_dfn2b_s13b_"
DEFAULT_CAPTIONER = "mscoco38k"

# Short name -> hub repo suffix. All are CoCa ViT-L/14 pretrained on DFN-2B; the name says what
# it was fine-tuned on, hence the style of caption it writes.
CAPTIONERS: dict[str, str] = {
    "mscoco38k": "mscoco38k_s12m_context77",  # MSCOCO: one short sentence per photo (default)
    "recap-coco-30k": "recap-coco-30k_s12m_context77",  # re-captioned COCO: a longer sentence
    "gbc1m-short": "gbc1m-short_context77",  # graph-based captions, short form
    "dci-short": "dci-short_s12m_context77",  # Densely Captioned Images, short summaries
    "dci-complete": "dci-complete_s12m_context77",
    "dci-extended": "dci-extended_s12m_context77",
    "docci": "docci_s12m_context77",  # DOCCI: detailed descriptions
    "dfn2b": "context77",  # pretrained only, no caption fine-tuning
}



@dataclass(frozen=True)
class CaptionerSpec:
    """Which CoCa to use: a hub repo, or an architecture plus a local checkpoint."""

    name: str  # a CAPTIONERS key, an open_clip CoCa model name, or a config .json path
    repo: str | None = None  # Hugging Face repo to download from
    arch: str = ARCH  # open_clip model name or config .json path
    weights: str | None = None  # local checkpoint

    def identity(self, home: Path) -> str:
        """Stable id for stored captions: what produced them, not where the file lives."""
        if self.weights:
            from mcphotos.models.registry import _file_digest

            return f"{Path(self.arch).stem}@w{_file_digest(self.weights, home)[:12]}"
        return self.repo or self.arch


def resolve_captioner(name: str | None = None, weights: str | None = None) -> CaptionerSpec:
    """``--captioner`` and ``--weights`` to a :class:`CaptionerSpec`."""
    name = (name or DEFAULT_CAPTIONER).strip()
    if weights is not None:
        weights = str(Path(weights).expanduser())
        if not Path(weights).is_file():
            raise UsageError(f"weights file not found: {weights}", "pass the path of a CoCa checkpoint")
    if name.lower().endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise UsageError(f"captioner config not found: {name}")
        if weights is None:
            raise UsageError("a captioner config .json needs --weights FILE")
        return CaptionerSpec(name=str(path.resolve()), arch=str(path.resolve()), weights=weights)
    key = name.lower()
    if key.startswith(HUB_PREFIX):
        key = key[len(HUB_PREFIX):]
        key = next((k for k, v in CAPTIONERS.items() if v == key), key)
    if key in CAPTIONERS:
        repo = HUB_PREFIX + CAPTIONERS[key]
        return CaptionerSpec(name=key, repo=None if weights else repo, weights=weights)
    if name.lower().startswith(HUB_PREFIX):  # another variant (context 128/256): its repo brings a config
        return CaptionerSpec(name=key, repo=None if weights else name.lower(), weights=weights)
    if name.startswith("coca_"):  # any open_clip CoCa architecture with a local checkpoint
        if weights is None:
            raise UsageError(f"captioner '{name}' needs --weights FILE")
        return CaptionerSpec(name=name, arch=name, weights=weights)
    raise UsageError(f"unknown captioner '{name}'",
                     f"use one of {', '.join(CAPTIONERS)}, a CoCa config .json, or coca_ViT-L-14 with --weights")


def load_captioner(spec: CaptionerSpec, device: str | None = None, precision: str = "auto",
                   on_status: Callable[[str], None] | None = None) -> Captioner:
    """Build the CoCa model, load its weights (local file or hub download), ready to generate."""
    from mcphotos.captions.captioning import Captioner
    from mcphotos.models.clip import (
        _import_open_clip,
        _read_config_file,
        _register_config_file,
        choose_device,
        choose_precision,
    )

    open_clip = _import_open_clip()
    arch = _register_config_file(open_clip, spec.arch) if spec.arch.lower().endswith(".json") else spec.arch
    weights = spec.weights
    if weights is None and spec.repo:
        config, weights = hub_files(spec.repo, on_status)
        if config is not None:
            try:
                model_cfg, _ = _read_config_file(config)
                if "multimodal_cfg" in model_cfg:  # context-128/256 variants ship their own config
                    arch = _register_config_file(open_clip, config)
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
        raise ModelLoadError("huggingface_hub is not installed", "pass a local checkpoint with --weights FILE") \
            from None
    patterns = ["*.json", "*.safetensors", "*.bin", "*.pt", "*.pth"]
    try:
        cached = snapshot_download(repo, allow_patterns=patterns, local_files_only=True)
        found = _pick_files(os.listdir(cached))
        if found[1] is not None:
            return (os.path.join(cached, found[0]) if found[0] else None), os.path.join(cached, found[1])
    except Exception:
        pass  # not cached (fully): download below
    hint = f"download it once while online, or pass a local checkpoint with --weights FILE (from hf.co/{repo})"
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(f"captioner {repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set", hint)
    try:
        config, checkpoint = _pick_files(HfApi().list_repo_files(repo))
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


def _pick_files(names: Iterable[str]) -> tuple[str | None, str | None]:
    names = [n for n in names if "/" not in n]
    ranked = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
    checkpoint = next((n for n in ranked if n in names), None)
    for ext in (".safetensors", ".pt", ".pth", ".bin"):
        checkpoint = checkpoint or next((n for n in sorted(names) if n.endswith(ext)), None)
    config = next((n for n in ("open_clip_config.json", "config.json") if n in names), None)
    return config, checkpoint
