"""What the features need of a CLIP model: the small ``Encoder`` protocol.

The torch engine (``models/clip.py``), the suite's fakes and any future runtime (ONNX) all
satisfy it, so indexing, search, scoring, captions and export depend on this, not on torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from mcphotos.indexing.preprocess_spec import PreprocessSpec

if TYPE_CHECKING:
    import numpy as np


class Encoder(Protocol):
    dim: int
    preprocess: PreprocessSpec
    logit_scale: float

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W, 3) uint8 pixels, preprocessed to the model's input size -> (N, dim) unit vectors."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> (N, dim) unit vectors."""
        ...


class ImageEncoder(Protocol):
    """The part of :class:`Encoder` that indexing needs."""

    dim: int

    def encode_images(self, pixels: np.ndarray) -> np.ndarray: ...
