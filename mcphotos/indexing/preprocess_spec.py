"""What a model expects of its input pictures (size, normalization, resizing), as plain data.

Its own module, apart from the decoders in imaging.py, so code that only names a model's
preprocessing (the library's wiring, a warm CLI command) does not import Pillow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image


def _per_channel(value: float | Sequence[float]) -> tuple[float, float, float]:
    """An RGB triple from a config value: three numbers, or one for every channel."""
    if isinstance(value, (int, float)):
        return float(value), float(value), float(value)
    r, g, b = (float(v) for v in value)
    return r, g, b


@dataclass(frozen=True)
class PreprocessSpec:
    """What the model expects: read from open_clip's (pretrained) config, never hard-coded."""

    size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bilinear"
    resize_mode: str = "shortest"
    fill_color: int = 0

    @classmethod
    def from_dict(cls, d: dict) -> PreprocessSpec:
        size = d.get("size", 224)
        if isinstance(size, int):
            size = (size, size)
        return cls(
            size=(int(size[0]), int(size[1])),
            mean=_per_channel(d.get("mean", (0.48145466, 0.4578275, 0.40821073))),
            std=_per_channel(d.get("std", (0.26862954, 0.26130258, 0.27577711))),
            interpolation=str(d.get("interpolation", "bicubic")),
            resize_mode=str(d.get("resize_mode", "shortest")),
            fill_color=int(d.get("fill_color", 0)),
        )

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "mean": list(self.mean),
            "std": list(self.std),
            "interpolation": self.interpolation,
            "resize_mode": self.resize_mode,
            "fill_color": self.fill_color,
        }

    @property
    def resample(self) -> Image.Resampling:
        from PIL import Image

        # open_clip maps anything but 'bilinear' to bicubic at inference.
        return Image.Resampling.BILINEAR if self.interpolation == "bilinear" else Image.Resampling.BICUBIC
