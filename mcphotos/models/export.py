"""Export a loaded torch model to a prepared ONNX runtime, gated on parity with torch fp32.

This is the one place that turns torch into ONNX: ``torch.onnx.export`` of each tower (the
reparameterized model the torch engine runs, with the pixel normalization and the final L2
normalization inside the graph), then ONNX Runtime's graph optimizations, saved with the weights
in a separate, memory-mappable file. The export is used only if ONNX Runtime agrees with torch
fp32 on at least 512 prompts and the gate images (cosine ≥ 0.99999 on every one); otherwise the
model stays on torch and the reason is remembered so it is said once.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcphotos.errors import McPhotosError
from mcphotos.models.clip import Engine
from mcphotos.models.onnxengine import OnnxEngine, session_options
from mcphotos.models.runtime import (
    FILES,
    Manifest,
    Parity,
    Speed,
    file_entry,
    install,
    record_unexportable,
    versions,
    write_json_atomic,
)
from mcphotos.models.tokenizer import ClipTokenizer, build_bpe, open_clip_vocab_path

OPSET = 17
MIN_COSINE = 0.99999
GATE_IMAGES = 32
GATE_PROMPTS = 512
TEMPLATES = ("a photo of {}", "a close-up photo of a {}", "{}", "a blurry photo of the {}")
# Prompts a label set would never produce: the tokenizer's and text tower's odd corners.
ODD_PROMPTS = ("", "Ünïcödé café in Zürich", "日本の桜", "😀 👍🏽 party", "&amp; &lt;tag&gt;", "x " * 80,
               "Receipt #4711 — total 12.99 €", "DOG dog Dog dOG", "a photo of a cat's toy")


class NotExportable(McPhotosError):
    """This model cannot run on ONNX Runtime; it keeps running on torch."""


@dataclass(frozen=True)
class PrepareReport:
    folder: str
    manifest: Manifest
    export_s: float


def gate_prompts(n: int = GATE_PROMPTS) -> list[str]:
    """``n`` distinct prompts: the odd ones, then the shipped labels, template by template.

    512 is enough to cover the vocabulary people use and costs ~10 s per engine for S0's text
    tower on 2 cores (each prompt is a full 77-token pass), which a one-time export can afford.
    """
    from mcphotos.tagging.labels import resolve_labels, shipped_sets

    leaves = [label.leaf.replace("_", " ") for shipped in shipped_sets()
              for label in resolve_labels(shipped.name).labels]
    prompts = list(ODD_PROMPTS)
    for template in TEMPLATES:
        prompts.extend(template.format(leaf) for leaf in leaves)
    return list(dict.fromkeys(prompts))[:n]


def gate_images(size: tuple[int, int], n: int = GATE_IMAGES, seed: int = 0) -> np.ndarray:
    """Deterministic photo-like test images at the model's input size (h, w): gradients, blobs, noise."""
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy, xx = yy / h, xx / w
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        base = rng.uniform(0, 255, 3) * (1 - yy[..., None]) + rng.uniform(0, 255, 3) * yy[..., None]
        for _ in range(rng.integers(1, 6)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.4)
            mask = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
            base[mask] = rng.uniform(0, 255, 3)
        base += rng.normal(0, rng.uniform(0, 30), base.shape)
        out[i] = np.clip(base, 0, 255).astype(np.uint8)
    return out


def _torch_modules(engine: Engine) -> tuple[Any, Any]:
    import torch

    model = engine.model if engine.device == "cpu" else copy.deepcopy(engine.model).cpu()
    mean = torch.tensor(engine.preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(engine.preprocess.std, dtype=torch.float32).view(1, 3, 1, 1)

    class ImageTower(torch.nn.Module):
        """uint8 NHWC pixels → unit vectors: ToTensor + Normalize + encode_image + L2, as the torch engine."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model
            self.register_buffer("mean", mean)
            self.register_buffer("std", std)

        def forward(self, pixels: Any) -> Any:
            x = (pixels.permute(0, 3, 1, 2).float() / 255.0 - self.mean) / self.std
            f = self.model.encode_image(x)
            return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    class TextTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, tokens: Any) -> Any:
            f = self.model.encode_text(tokens)
            return f / f.norm(dim=-1, keepdim=True).clamp_min(1e-12)

    return ImageTower().eval(), TextTower().eval()


def _check_tokenizer(engine: Engine) -> int:
    """The context length, if open_clip's tokenizer for this model is the one rebuilt torch-free."""
    from open_clip.tokenizer import SimpleTokenizer

    tok = engine.tokenizer
    if not isinstance(tok, SimpleTokenizer) or tok.reduction_fn is not None or len(tok.all_special_ids) != 2:
        raise NotExportable(f"its tokenizer ({type(tok).__name__}) has no torch-free equivalent here")
    if tok.clean_fn.__name__ != "_clean_lower":
        raise NotExportable(f"its tokenizer cleans text with {tok.clean_fn.__name__}, not lower-casing")
    return int(tok.context_length)


def _export_tower(module: Any, example: Any, name: str, inp: str, staging: Path) -> None:
    """``torch.onnx.export``, then ONNX Runtime's portable optimizations saved with external weights."""
    import warnings

    import onnxruntime as ort
    import torch

    raw = staging / f"{name}.raw.onnx"
    # Grad mode on: with it off, nn.MultiheadAttention takes a fused fast path that ONNX cannot express.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.enable_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), str(raw), input_names=[inp], output_names=["embedding"],
                          dynamic_axes={inp: {0: "n"}, "embedding": {0: "n"}}, opset_version=OPSET,
                          dynamo=False)
    so = session_options()
    # EXTENDED, not ALL: the saved graph holds no CPU-specific layout, so it stays valid on
    # another CPU; the layout passes run at open, cheaply.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(staging / f"{name}.onnx")
    so.add_session_config_entry("session.optimized_model_external_initializers_file_name", f"{name}.data")
    so.add_session_config_entry("session.optimized_model_external_initializers_min_size_in_bytes", "1024")
    ort.InferenceSession(str(raw), so, providers=["CPUExecutionProvider"])
    raw.unlink()
    data = staging / f"{name}.data"
    if not data.exists():  # a model so small that no weight went outside the graph
        data.write_bytes(b"")


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def _torch_fp32(image_tower: Any, text_tower: Any, pixels: np.ndarray, tokens: np.ndarray) -> tuple[Any, Any]:
    import torch

    with torch.inference_mode():
        img = np.concatenate([image_tower(torch.from_numpy(pixels[i:i + 16])).numpy()
                              for i in range(0, len(pixels), 16)])
        txt = np.concatenate([text_tower(torch.from_numpy(tokens[i:i + 64])).numpy()
                              for i in range(0, len(tokens), 64)])
    return img, txt


def _images_per_s(encode: Any, pixels: np.ndarray, repeat: int = 2) -> float:
    encode(pixels[:4])  # warm-up: first-call allocations and kernel choices
    t0 = time.perf_counter()
    for _ in range(repeat):
        encode(pixels)
    return repeat * len(pixels) / (time.perf_counter() - t0)


def export_runtime(engine: Engine, folder: Path, identity: dict[str, Any], torch_load_s: float,
                   min_cosine: float | None = None) -> PrepareReport:
    """Export ``engine``'s model into ``folder`` (replacing what is there) if it passes the gate.

    Raises :class:`NotExportable` (and remembers why, in ``folder``) when it cannot be exported or
    does not match torch closely enough; ``folder`` then keeps no runtime.
    """
    t0 = time.perf_counter()
    min_cosine = MIN_COSINE if min_cosine is None else min_cosine
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.with_name(f".{folder.name}.new.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        report = _export_into(engine, staging, identity, torch_load_s, min_cosine)
    except NotExportable as e:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        record_unexportable(folder, e.message, versions())
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    install(staging, folder)
    return PrepareReport(str(folder), report, time.perf_counter() - t0)


def _export_into(engine: Engine, staging: Path, identity: dict[str, Any], torch_load_s: float,
                 min_cosine: float) -> Manifest:
    import torch

    context = _check_tokenizer(engine)
    tokenizer = ClipTokenizer(build_bpe(open_clip_vocab_path()), context)
    tokenizer.save(staging / "tokenizer.json")
    prompts = gate_prompts()
    tokens = tokenizer(prompts)
    if not (tokens == engine.tokenizer(prompts).numpy()).all():
        raise NotExportable("the torch-free tokenizer disagrees with open_clip's on the gate prompts")
    pixels = gate_images(engine.preprocess.size)
    image_tower, text_tower = _torch_modules(engine)
    try:
        _export_tower(image_tower, torch.from_numpy(pixels[:2]), "image", "pixels", staging)
        _export_tower(text_tower, torch.from_numpy(tokens[:2]), "text", "tokens", staging)
    except Exception as e:  # the exporter's and ONNX Runtime's errors are many and untyped
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise NotExportable(f"torch.onnx.export failed: {first}") from None
    files = {name: file_entry(staging / name) for name in FILES}
    draft = Manifest(identity=identity, dim=engine.dim, logit_scale=engine.logit_scale, context_length=context,
                     opset=OPSET, versions=versions(), files=files,
                     parity=Parity(len(prompts), len(pixels), 0.0, 0.0, False),
                     speed=Speed(0.0, 0.0, engine.precision, engine.device, torch_load_s, 0.0))
    onnx = OnnxEngine(staging, draft)
    t_open = time.perf_counter()
    onnx.prefetch("image")
    onnx.encode_images(pixels[:1])
    open_s = time.perf_counter() - t_open
    ref_img, ref_txt = _torch_fp32(image_tower, text_tower, pixels, tokens)
    got_img, got_txt = onnx.encode_images(pixels), onnx.encode_texts(prompts)
    parity = Parity(len(prompts), len(pixels), _min_cosine(ref_txt, got_txt), _min_cosine(ref_img, got_img), False)
    parity.passed = parity.text_min_cosine >= min_cosine and parity.image_min_cosine >= min_cosine
    if not parity.passed:
        raise NotExportable(f"ONNX Runtime differs from torch fp32 (min cosine text {parity.text_min_cosine:.6f}, "
                            f"image {parity.image_min_cosine:.6f}; needs {min_cosine})")
    bench = pixels[:16]
    speed = Speed(onnx_images_per_s=round(_images_per_s(onnx.encode_images, bench), 2),
                  torch_images_per_s=round(_images_per_s(engine.encode_images, bench), 2),
                  torch_precision=engine.precision, torch_device=engine.device,
                  torch_load_s=round(torch_load_s, 3), onnx_open_s=round(open_s, 3))
    manifest = Manifest(identity=identity, dim=engine.dim, logit_scale=engine.logit_scale, context_length=context,
                        opset=OPSET, versions=versions(), files=files, parity=parity, speed=speed)
    write_json_atomic(staging / "manifest.json", asdict(manifest))
    return manifest
