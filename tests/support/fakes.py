"""A deterministic fake image encoder for plumbing tests (meaning is tested with the tiny CLIP)."""

from __future__ import annotations

import numpy as np

from mcphotos.indexing.preprocess_spec import PreprocessSpec

SPEC = PreprocessSpec(size=(32, 32), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear")


class FakeEncoder:
    """Embeds an image as its normalized 4x4x3 colour layout, and counts what it embeds."""

    dim = 48

    def __init__(self) -> None:
        self.calls = 0
        self.images = 0

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.images += len(pixels)
        n, h, w, _ = pixels.shape
        small = pixels.reshape(n, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4)).reshape(n, -1) - 127.5
        return (small / np.linalg.norm(small, axis=1, keepdims=True).clip(1e-6)).astype(np.float32)
