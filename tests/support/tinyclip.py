"""A tiny CLIP trained in-process on synthetic coloured shapes.

Tests need a model whose embeddings carry *meaning* (ranking, zero-shot tagging, similarity) but
there are no pretrained weights offline.  This module draws "a {color} {shape}" images, builds a
small ViT CLIP with open_clip from a plain config dict and trains it with open_clip's own ClipLoss,
so the checkpoint loads through exactly the same code path the app uses for real models.

Run ``python tests/tinyclip.py OUT_DIR [SEED]`` to train and print accuracy and wall time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from open_clip.loss import ClipLoss
from open_clip.transform import PreprocessCfg, image_transform_v2
from PIL import Image, ImageDraw

MODEL_NAME = "tinyclip"

# Saturated colours plus white/black: all far from the mid-grey background and from each other.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 70, 230),
    "yellow": (245, 225, 30),
    "purple": (140, 40, 180),
    "orange": (255, 135, 0),
    "white": (250, 250, 250),
    "black": (15, 15, 15),
}
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")
CLASSES: list[tuple[str, str]] = [(c, s) for c in COLORS for s in SHAPES]

# "a {color} {shape}" is what tests query with; paraphrases keep prompt templates working too.
CAPTION_TEMPLATES: tuple[str, ...] = (
    "a {color} {shape}",
    "a photo of a {color} {shape}",
    "{color} {shape}",
    "a picture of a {color} {shape}",
)

# Standard open_clip ViT/text towers; vocab stays at 49408 so open_clip.get_tokenizer() works, and the
# narrow text width keeps the (vocab x width) token embedding - most of the checkpoint - small.
MODEL_CFG: dict[str, Any] = {
    "embed_dim": 64,
    "vision_cfg": {
        "image_size": 64,
        "layers": [1, 1, 1, 1],
        "width": 8,
        "head_width": 64,
    },
    "text_cfg": {
        "context_length": 16,
        "vocab_size": 49408,
        "width": 32,
        "heads": 2,
        "layers": 1,
    },
}

# Mirrors MobileCLIP's preprocessing: shortest-side bilinear resize + center crop, pixels in [0, 1].
PREPROCESS_CFG: dict[str, Any] = {
    "size": 64,
    "mean": [0, 0, 0],
    "std": [1, 1, 1],
    "interpolation": "bilinear",
    "resize_mode": "shortest",
}

DRAW_SIZE = 96  # images are drawn larger than the model input so the real resize path is exercised


_RADIUS_BOOST = {"circle": 1.0, "square": 1.2, "triangle": 1.25, "star": 1.15}


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """Vertices of a regular polygon / star inscribed in a circle of ``radius``."""
    if shape == "star":
        radii = [radius if i % 2 == 0 else radius * 0.45 for i in range(10)]
    else:
        radii = [radius] * (4 if shape == "square" else 3)
    n = len(radii)
    return [
        (cx + r * math.cos(angle + 2 * math.pi * i / n), cy + r * math.sin(angle + 2 * math.pi * i / n))
        for i, r in enumerate(radii)
    ]


def draw_shape(
    color: str, shape: str, size: int = DRAW_SIZE, rng: random.Random | None = None
) -> Image.Image:
    """Draw one ``color`` ``shape`` at a random position/scale/rotation on a noisy grey background.

    Deterministic for a given ``rng`` state; ``rng=None`` uses a fresh unseeded generator.
    """
    if color not in COLORS or shape not in SHAPES:
        raise ValueError(f"unknown colour/shape: {color!r} {shape!r}")
    rng = rng or random.Random()

    # Jittered, slightly tinted neutral grey so the background carries no class signal.
    grey = rng.uniform(105, 155)
    bg = tuple(int(grey + rng.uniform(-6, 6)) for _ in range(3))
    fg = tuple(max(0, min(255, v + rng.randint(-12, 12))) for v in COLORS[color])

    # Shape spans roughly 35-70% of the image and always fits inside it; polygons get a larger
    # circumradius so they look about as big as a circle of the same nominal size.
    radius = rng.uniform(0.35, 0.70) * size / 2 * _RADIUS_BOOST[shape]
    cx = rng.uniform(radius, size - radius)
    cy = rng.uniform(radius, size - radius)
    angle = rng.uniform(0, 2 * math.pi)

    # Draw the mask at 4x and downsample: anti-aliased edges like a real photo, not stair-steps.
    ss = 4
    mask = Image.new("L", (size * ss, size * ss), 0)
    draw = ImageDraw.Draw(mask)
    if shape == "circle":
        r = radius * ss
        draw.ellipse((cx * ss - r, cy * ss - r, cx * ss + r, cy * ss + r), fill=255)
    else:
        draw.polygon([(x * ss, y * ss) for x, y in _polygon(shape, cx, cy, radius, angle)], fill=255)
    mask = mask.resize((size, size), Image.Resampling.BOX)

    img = Image.composite(Image.new("RGB", (size, size), fg), Image.new("RGB", (size, size), bg), mask)

    # Mild sensor-like noise, seeded from rng so the whole image stays reproducible.
    np_rng = np.random.default_rng(rng.getrandbits(63))
    noise = np_rng.normal(0.0, rng.uniform(2.0, 7.0), size=(size, size, 3))
    arr = np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def _preprocess() -> Any:
    """The exact eval transform the app builds from PREPROCESS_CFG."""
    return image_transform_v2(PreprocessCfg(**PREPROCESS_CFG), is_train=False)


def _register_config(model_cfg: dict[str, Any], tmp_dir: Path) -> None:
    """Register ``model_cfg`` under MODEL_NAME the same way the app does (a json file on disk)."""
    cfg_path = tmp_dir / f"{MODEL_NAME}.json"
    cfg_path.write_text(json.dumps(model_cfg))
    open_clip.add_model_config(cfg_path)


def create_tiny_clip(model_cfg: dict[str, Any] | None = None) -> tuple[torch.nn.Module, Any]:
    """Build an untrained model + tokenizer from ``model_cfg`` (default MODEL_CFG) via open_clip."""
    with tempfile.TemporaryDirectory() as tmp:
        _register_config(copy.deepcopy(model_cfg or MODEL_CFG), Path(tmp))
        model = open_clip.create_model(MODEL_NAME, pretrained=None)
        tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    return model, tokenizer


def load_tiny_clip(config_path: Path, weights_path: Path) -> tuple[torch.nn.Module, Any, Any]:
    """Load a trained checkpoint written by :func:`train_tiny_clip`: (model, preprocess, tokenizer)."""
    cfg = json.loads(Path(config_path).read_text())
    pp_cfg = cfg.pop("preprocess_cfg", PREPROCESS_CFG)
    model, tokenizer = create_tiny_clip(cfg)
    open_clip.load_checkpoint(model, str(weights_path))
    model.eval()
    return model, image_transform_v2(PreprocessCfg(**pp_cfg), is_train=False), tokenizer


def _make_pool(per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-draw and preprocess ``per_class`` images for every class once, so the loop is pure tensor work."""
    rng = random.Random(seed)
    preprocess = _preprocess()
    images, labels = [], []
    for label, (color, shape) in enumerate(CLASSES):
        for _ in range(per_class):
            images.append(preprocess(draw_shape(color, shape, DRAW_SIZE, rng)))
            labels.append(label)
    return torch.stack(images), torch.tensor(labels)


def _caption_tokens(tokenizer: Any) -> torch.Tensor:
    """Tokens shaped (num_classes, num_templates, context_length)."""
    texts = [t.format(color=c, shape=s) for c, s in CLASSES for t in CAPTION_TEMPLATES]
    return tokenizer(texts).view(len(CLASSES), len(CAPTION_TEMPLATES), -1)


def _augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random flips / 90-degree turns: label-preserving and free, so the pool acts 8x larger."""
    if torch.rand((), generator=gen) < 0.5:
        images = images.flip(-1)
    k = int(torch.randint(0, 4, (), generator=gen))
    return torch.rot90(images, k, dims=(-2, -1)) if k else images


def _train(
    model_cfg: dict[str, Any],
    steps: int,
    seed: int,
    per_class: int = 128,
    groups: int = 2,
    lr: float = 2e-3,
    log_every: int = 0,
) -> tuple[torch.nn.Module, Any]:
    """Train a fresh model; each step holds ``groups`` sets of 32 images, one per class.

    With only 32 classes, a big random batch is full of duplicate captions that ClipLoss treats as
    negatives; giving every ClipLoss call exactly one image per class keeps its targets correct.
    """
    torch.manual_seed(seed)
    model, tokenizer = create_tiny_clip(model_cfg)
    images, labels = _make_pool(per_class, seed)
    tokens = _caption_tokens(tokenizer)
    by_class = [torch.nonzero(labels == i).flatten() for i in range(len(CLASSES))]
    n_cls, n_tpl = tokens.shape[:2]

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.05}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / warmup if s < warmup else 0.5 * (1 + math.cos(math.pi * (s - warmup) / (steps - warmup))),
    )
    loss_fn = ClipLoss()
    gen = torch.Generator().manual_seed(seed)

    model.train()
    for step in range(steps):
        # One random pool image and one random caption template per class, per group.
        pick = torch.randint(0, per_class, (groups, n_cls), generator=gen)
        idx = torch.stack([by_class[c][pick[:, c]] for c in range(n_cls)], dim=1).flatten()
        tpl = torch.randint(0, n_tpl, (groups, n_cls), generator=gen)
        text = tokens[torch.arange(n_cls).repeat(groups), tpl.flatten()]

        img_feat = model.encode_image(_augment(images[idx], gen), normalize=True)
        txt_feat = model.encode_text(text, normalize=True)
        scale = model.logit_scale.exp()
        loss = sum(
            loss_fn(img_feat[g * n_cls:(g + 1) * n_cls], txt_feat[g * n_cls:(g + 1) * n_cls], scale)
            for g in range(groups)
        ) / groups

        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        with torch.no_grad():  # same clamp as open_clip's training loop
            model.logit_scale.clamp_(0, math.log(100))
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d} loss {loss.item():.3f} scale {scale.item():.1f}", flush=True)
    model.eval()
    return model, tokenizer


@torch.no_grad()
def zero_shot_accuracy(
    model: torch.nn.Module, tokenizer: Any, n_per_class: int = 10, seed: int = 123
) -> dict[str, float]:
    """Zero-shot top-1 over the 32 "a {color} {shape}" prompts on freshly drawn images.

    "color"/"shape" count a prediction as right when just that attribute of the top-1 class matches.
    """
    model.eval()
    rng = random.Random(seed)
    preprocess = _preprocess()
    text = model.encode_text(tokenizer([f"a {c} {s}" for c, s in CLASSES]), normalize=True)
    top1 = color_ok = shape_ok = 0
    for label, (color, shape) in enumerate(CLASSES):
        batch = torch.stack([preprocess(draw_shape(color, shape, DRAW_SIZE, rng)) for _ in range(n_per_class)])
        pred = (model.encode_image(batch, normalize=True) @ text.T).argmax(dim=1).tolist()
        top1 += sum(p == label for p in pred)
        color_ok += sum(CLASSES[p][0] == color for p in pred)
        shape_ok += sum(CLASSES[p][1] == shape for p in pred)
    n = n_per_class * len(CLASSES)
    return {"top1": top1 / n, "color": color_ok / n, "shape": shape_ok / n}


# A trained model below this zero-shot top-1 means the training recipe regressed: the tests of
# meaning would then fail for reasons that have nothing to do with the code they test.
MIN_TOP1 = 0.90
TRAIN_THREADS = 2  # the CI machine kind has 2 cores; a fixed count also fixes the float reduction order


class TrainingRegressed(RuntimeError):
    """The freshly trained tiny CLIP is below MIN_TOP1: the recipe, not the app, is broken."""


def train_tiny_clip(out_dir: Path, steps: int = 900, seed: int = 0, per_class: int = 128,
                    min_top1: float = MIN_TOP1, eval_per_class: int = 10) -> tuple[Path, Path]:
    """Train the tiny CLIP and write ``tinyclip.json`` (model cfg + "preprocess_cfg") and ``tinyclip.pt``.

    Deterministic on a given machine kind: every random draw comes from ``seed``, the thread
    count is fixed and torch runs deterministic algorithms. The caller's thread count and
    determinism setting are restored afterwards. The .pt is a plain fp32 state_dict, loadable
    with ``open_clip.load_checkpoint``; ``accuracy.json`` beside it holds the zero-shot
    accuracy measured right after training, and training that lands below MIN_TOP1 raises
    :class:`TrainingRegressed` instead of writing a model the tests would trust.
    """
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(TRAIN_THREADS)
    torch.use_deterministic_algorithms(True)
    try:
        random.seed(seed)
        np.random.seed(seed)
        model, tokenizer = _train(MODEL_CFG, steps, seed, per_class=per_class)
        accuracy = zero_shot_accuracy(model, tokenizer, n_per_class=eval_per_class)
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
    if accuracy["top1"] < min_top1:
        raise TrainingRegressed(
            f"tiny CLIP training regressed (seed {seed}): zero-shot top-1 {accuracy['top1']:.1%} "
            f"< {min_top1:.0%} (colour {accuracy['color']:.1%}, shape {accuracy['shape']:.1%})")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_path = out_dir / f"{MODEL_NAME}.json"
    weights_path = out_dir / f"{MODEL_NAME}.pt"
    config_path.write_text(json.dumps({**MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2))
    torch.save({k: v.detach().float().contiguous() for k, v in model.state_dict().items()}, weights_path)
    (out_dir / "accuracy.json").write_text(json.dumps({"seed": seed, "steps": steps, **accuracy}))
    return config_path, weights_path


def _cpu_flags() -> str:
    """The CPU's capability flags: kernels (and so float results) differ between AVX2, AVX-512, AMX."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return " ".join(sorted(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return platform.processor()


def cache_key(seed: int) -> str:
    """What the trained model depends on: the script, the seed, torch, open_clip and the CPU kind."""
    import open_clip
    import torch

    parts = [Path(__file__).read_bytes(), str(seed).encode(), torch.__version__.encode(),
             open_clip.__version__.encode(), platform.machine().encode(), _cpu_flags().encode()]
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:12]


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR [SEED]")
    start = time.perf_counter()
    cfg_file, weights_file = train_tiny_clip(Path(sys.argv[1]), seed=int(sys.argv[2]) if len(sys.argv) == 3 else 0)
    elapsed = time.perf_counter() - start
    trained, _, tok = load_tiny_clip(cfg_file, weights_file)
    acc = zero_shot_accuracy(trained, tok)
    print(f"trained in {elapsed:.1f}s -> {weights_file} ({weights_file.stat().st_size / 1e6:.2f} MB)")
    print("zero-shot accuracy: " + ", ".join(f"{k} {v:.1%}" for k, v in acc.items()))
