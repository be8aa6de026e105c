"""Photo and checkpoint makers for tests: coloured shapes, textured photos, random real architectures."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support import tinyclip


def save_random_checkpoint(model_name: str, path: Path) -> Path:
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None)
    torch.save(model.state_dict(), path)
    return path


def save_bn_recalibrated_checkpoint(model_name: str, path: Path, pixels: np.ndarray) -> Path:
    """Random weights whose BatchNorm statistics come from ``pixels`` (uint8 NHWC at the input size).

    Raw random weights map every photo to nearly one direction, so a parity check on them
    cannot fail; recalibrated statistics spread the embeddings out (bench/index_throughput.py
    does the same on real photos).
    """
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None)
    bns = [m for m in model.visual.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over all batches
    model.visual.train()
    with torch.no_grad():
        for i in range(0, len(pixels), 8):
            model.visual(torch.from_numpy(pixels[i:i + 8]).permute(0, 3, 1, 2).float() / 255.0)
    model.eval()
    torch.save(model.state_dict(), path)
    return path


def shape_photo(path: Path, color: str, shape: str, seed: int, size: int = 96, fmt: str | None = None) -> Path:
    img = tinyclip.draw_shape(color, shape, size=size, rng=random.Random(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (160, 120), fmt: str | None = None) -> Path:
    """A small textured photo-like image (smooth gradients plus noise), distinct per seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([
        128 + 100 * np.sin(xx / (7 + seed % 5) + rng.uniform(0, 6)),
        128 + 100 * np.cos(yy / (5 + seed % 7) + rng.uniform(0, 6)),
        128 + 100 * np.sin((xx + yy) / (9 + seed % 3)),
    ], axis=-1)
    base += rng.normal(0, 12, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype("uint8"), "RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path
