"""Photo and checkpoint makers for tests: coloured shapes, textured photos, random real architectures."""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image

from tests.support import tinyclip


def save_random_checkpoint(model_name: str, path: Path) -> Path:
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None)
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
