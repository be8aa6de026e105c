"""Model loading and batched encoding: the only module that imports torch and open_clip.

Both imports happen inside functions, so commands that need no model never pay for them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mcphotos.errors import ModelLoadError
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.models.registry import OPEN_CLIP_HUB_FILES, ModelSpec, cached_hub_file, default_tag, unknown_model_hint

log = logging.getLogger(__name__)

# Decode workers and torch share the cores while indexing. With OpenMP's default (spinning)
# wait policy, idle torch threads busy-wait between operators and steal CPU from decoding;
# passive waiting measured 20% faster end to end on 2 cores (bench/tune_threads.py).
# It must be set before torch starts, and a user's own setting wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def preprocess_spec_for(spec: ModelSpec) -> PreprocessSpec:
    """The preprocessing of the pretrained config, known before the model is built.

    For a local checkpoint of a built-in model we still use the preprocessing of that
    model's pretrained tag: open_clip would otherwise fall back to OpenAI's mean/std and
    bicubic resizing, which are the wrong inputs for MobileCLIP2.
    """
    if spec.is_config_file:
        model_cfg, from_file = read_config_file(spec.name)
        return PreprocessSpec.from_dict({"size": model_cfg["vision_cfg"].get("image_size", 224), **from_file})
    open_clip = import_open_clip()
    model_cfg = open_clip.get_model_config(spec.name)
    if model_cfg is None:
        raise ModelLoadError(f"unknown model '{spec.name}'", unknown_model_hint(spec.name))
    tag = spec.pretrained or default_tag(spec.name)
    pre: dict[str, Any] = {}
    if tag:
        cfg = open_clip.get_pretrained_cfg(spec.name, tag)
        if not cfg:
            tags = open_clip.list_pretrained_tags_by_model(spec.name)
            raise ModelLoadError(f"model '{spec.name}' has no pretrained tag '{tag}'", f"known tags: {tags}")
        pre = {k: cfg[k] for k in ("mean", "std", "interpolation", "resize_mode", "fill_color") if k in cfg}
    size = model_cfg["vision_cfg"].get("image_size", 224)
    return PreprocessSpec.from_dict({"size": size, **pre})


def choose_device(requested: str | None = None) -> str:
    """cuda, then mps, then cpu, unless the user named one."""
    import torch

    if requested and requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def cpu_supports_bf16() -> bool:
    """True when the CPU runs bf16 matmuls natively (AVX-512 BF16 or AMX)."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:
        return False


def choose_precision(device: str, requested: str = "auto") -> str:
    if requested not in PRECISIONS:
        raise ModelLoadError(f"unknown precision '{requested}'", f"use one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    if device.startswith("cuda") or device == "mps":
        return "fp16"
    if device == "cpu" and cpu_supports_bf16():
        return "bf16"
    return "fp32"


@dataclass
class Engine:
    """A loaded model. ``encode_*`` return float32, L2-normalized rows."""

    spec: ModelSpec
    model: Any
    tokenizer: Any
    preprocess: PreprocessSpec
    device: str
    precision: str
    dim: int
    logit_scale: float
    _mean: Any = field(default=None, repr=False)
    _std: Any = field(default=None, repr=False)

    def _autocast(self) -> Any:
        import contextlib

        import torch

        if self.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(device_type=self.device.split(":")[0], dtype=dtype)

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels``: uint8 (N, H, W, 3) from :func:`mcphotos.indexing.imaging.preprocess`."""
        import torch

        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(pixels)).to(self.device)
            # ToTensor + Normalize of the reference transform, on the whole batch at once.
            x = x.permute(0, 3, 1, 2).float().div_(255.0)
            x = (x - self._mean) / self._std
            x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                feats = self.model.encode_image(x)
            feats = feats.float()
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return feats.cpu().numpy().astype(np.float32, copy=False)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch.inference_mode():
            tokens = self.tokenizer(list(texts)).to(self.device)
            # Text stays fp32: prompts are few and cached, so fidelity costs nothing here.
            feats = self.model.encode_text(tokens).float()
            feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            return feats.cpu().numpy().astype(np.float32, copy=False)


def load_engine(spec: ModelSpec, device: str | None = None, precision: str = "auto",
                cache_dir: str | None = None) -> Engine:
    """Build the model, load its weights (hub or local file) and prepare it for inference."""
    open_clip = import_open_clip()
    import torch

    pre = preprocess_spec_for(spec)
    dev = choose_device(device)
    prec = choose_precision(dev, precision)
    force_pre = {
        "mean": pre.mean, "std": pre.std, "interpolation": pre.interpolation,
        "resize_mode": pre.resize_mode, "fill_color": pre.fill_color,
    }
    name = register_config_file(open_clip, spec.name) if spec.is_config_file else spec.name
    pretrained = spec.weights or spec.pretrained
    if spec.weights is None and spec.pretrained:
        # Weights already in the HF cache load from disk: no request to the hub, so an offline
        # machine does not sit through the hub client's retries. Otherwise fail fast when the
        # hub is unreachable, then let open_clip download as usual.
        cached = _cached_hub_weights(open_clip, name, spec.pretrained)
        if cached:
            pretrained = cached
        else:
            _check_hub_reachable(spec)
    try:
        model = open_clip.create_model(
            name,
            pretrained=pretrained,
            device="cpu",
            force_preprocess_cfg=force_pre,
            cache_dir=cache_dir,
            weights_only=True,  # never execute pickled code from a checkpoint
            require_pretrained=pretrained is not None,
        )
    except Exception as e:  # open_clip raises bare RuntimeError/KeyError/OSError for all of these
        raise _explain_load_failure(spec, e) from None
    if pretrained is None:
        log.warning("no pretrained weights for %s: the model is randomly initialized", spec.name)
    model.eval()
    try:
        from timm.utils import reparameterize_model

        # MobileCLIP's RepMixer/MobileOne blocks fold their branches into one conv for inference.
        model = reparameterize_model(model)
    except Exception as e:  # pragma: no cover - a model without reparameterizable blocks
        log.debug("reparameterize skipped: %s", e)
    model = model.to(dev)
    model.visual.to(memory_format=torch.channels_last)
    tokenizer = open_clip.get_tokenizer(name)
    with torch.inference_mode():
        dim = int(model.encode_text(tokenizer(["a"]).to(dev)).shape[-1])
    mean = torch.tensor(pre.mean, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(pre.std, device=dev).view(1, 3, 1, 1)
    return Engine(
        spec=spec, model=model, tokenizer=tokenizer, preprocess=pre, device=dev, precision=prec,
        dim=dim, logit_scale=float(model.logit_scale.exp().item()), _mean=mean, _std=std,
    )


def reference_transform(engine: Engine) -> Any:
    """open_clip's own eval transform for this model: the yardstick for our preprocessing."""
    import_open_clip()
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = dict(engine.model.visual.preprocess_cfg)
    return image_transform_v2(PreprocessCfg(**cfg), is_train=False)


def _cached_hub_weights(open_clip: Any, name: str, tag: str) -> str | None:
    """Path of this model's checkpoint in the local HF cache, if it was downloaded before."""
    cfg = open_clip.get_pretrained_cfg(name, tag) or {}
    hub = cfg.get("hf_hub") or ""
    if not hub:
        return None
    repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
    return cached_hub_file(repo, [filename] if filename else OPEN_CLIP_HUB_FILES)


def _check_hub_reachable(spec: ModelSpec, timeout: float = 3.0) -> None:
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ModelLoadError(
            f"{spec.name} ({spec.pretrained}) is not in the Hugging Face cache and HF_HUB_OFFLINE is set",
            "unset HF_HUB_OFFLINE to download it once, or pass a local checkpoint with --weights FILE",
        )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise ModelLoadError(
            f"cannot download {spec.name} ({spec.pretrained}): {host} is unreachable ({e.strerror or e})",
            "connect to the internet once, or pass a local checkpoint with --weights FILE "
            "(e.g. Apple's mobileclip2_s0.pt)",
        ) from None


def import_open_clip() -> Any:
    import open_clip

    return open_clip


def read_config_file(path: str) -> tuple[dict, dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot read model config {path}: {e}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"model config {path} is not a JSON object")
    if "model_cfg" in data:  # the hub's open_clip_config.json layout
        model_cfg, pre = data["model_cfg"], data.get("preprocess_cfg", {})
    else:
        model_cfg = {k: v for k, v in data.items() if k != "preprocess_cfg"}
        pre = data.get("preprocess_cfg", {})
    missing = [k for k in ("embed_dim", "vision_cfg", "text_cfg") if k not in model_cfg]
    if missing:
        raise ModelLoadError(f"model config {path} lacks {', '.join(missing)}",
                             "it must be an open_clip model config")
    return model_cfg, pre


def register_config_file(open_clip: Any, path: str) -> str:
    """Register a config JSON with open_clip under a private name, through its public API."""
    model_cfg, _ = read_config_file(path)
    name = "mcphotos-custom-" + Path(path).stem
    with tempfile.TemporaryDirectory() as tmp:
        cfg_path = Path(tmp) / f"{name}.json"
        cfg_path.write_text(json.dumps(model_cfg))
        open_clip.add_model_config(cfg_path)
    return name


def _explain_load_failure(spec: ModelSpec, e: Exception) -> ModelLoadError:
    text = str(e)
    if spec.weights:
        return ModelLoadError(
            f"cannot load weights {spec.weights} into {spec.name}: {_first_line(text)}",
            "check that the file is an open_clip checkpoint of this model (choose it with --model)",
        )
    if "not found in built-ins" in text or "Unknown model" in text:
        return ModelLoadError(f"unknown model '{spec.name}'", unknown_model_hint(spec.name))
    if "download" in text.lower() or "connect" in text.lower() or "offline" in text.lower():
        return ModelLoadError(
            f"cannot download {spec.name} ({spec.pretrained}) from the Hugging Face hub: {_first_line(text)}",
            "connect to the internet once, or pass a local checkpoint with --weights FILE "
            "(e.g. Apple's mobileclip2_s0.pt)",
        )
    return ModelLoadError(f"cannot load model {spec.describe()}: {_first_line(text)}")


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return line[:300]
