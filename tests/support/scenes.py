"""Photo-like synthetic scenes and the near-duplicate variants dedup must recognise.

``conftest.photo()`` images are fine-grained textures (sinusoids plus noise): nearly all their
energy is at frequencies a pHash ignores, so a 5 % crop moves their pHash ~32 bits and two
different ones can be 8 bits apart. Real photos have most energy at low frequencies and sharp
edges; ``scene()`` draws that (gradient, soft blobs, hard-edged rectangles, sensor noise).

``variants()`` is shared with bench/dedup_quality.py, which applies it to real photos.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance

from mcphotos.indexing.imaging import register_plugins


def scene(seed: int, size: tuple[int, int] = (320, 240)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32) + rng.uniform(40, 200, 3)
    img += (xx / w - 0.5)[..., None] * rng.uniform(-80, 80, 3) + (yy / h - 0.5)[..., None] * rng.uniform(-80, 80, 3)
    for _ in range(8):
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.08, 0.35) * w
        img += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))[..., None] * rng.uniform(-120, 120, 3)
    for _ in range(6):
        x0, y0 = rng.uniform(0, w * 0.8), rng.uniform(0, h * 0.8)
        x1, y1 = x0 + rng.uniform(0.1, 0.4) * w, y0 + rng.uniform(0.1, 0.4) * h
        inside = ((xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1))[..., None]
        img = np.where(inside, img * 0.3 + rng.uniform(0, 255, 3) * 0.7, img)
    img += rng.normal(0, 4, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _crop(img: Image.Image, fraction: float, anchor: str) -> Image.Image:
    w, h = img.size
    dx, dy = round(w * fraction), round(h * fraction)
    if anchor == "center":
        return img.crop((dx // 2, dy // 2, w - (dx - dx // 2), h - (dy - dy // 2)))
    return img.crop((dx, dy, w, h))  # all of it off the top-left corner


def _rotated_by_exif(img: Image.Image) -> bytes:
    """Pixels stored sideways plus EXIF orientation 6: upright it is the same picture."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return _encode(img.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90, exif=exif.tobytes())


def _recoloured(img: Image.Image) -> Image.Image:
    """Mild colour change: +8 % brightness, +15 % saturation, a warm cast."""
    img = ImageEnhance.Color(ImageEnhance.Brightness(img).enhance(1.08)).enhance(1.15)
    arr = np.asarray(img).astype(np.float32)
    arr[..., 0] *= 1.05
    arr[..., 2] *= 0.95
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


VARIANTS: dict[str, tuple[str, Callable[[Image.Image], bytes]]] = {
    "jpeg-q60": (".jpg", lambda im: _encode(im, "JPEG", quality=60)),
    "half": (".jpg", lambda im: _encode(im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS),
                                        "JPEG", quality=90)),
    "png": (".png", lambda im: _encode(im, "PNG", compress_level=1)),
    "webp": (".webp", lambda im: _encode(im, "WEBP", quality=80)),
    "heic": (".heic", lambda im: _encode(im, "HEIF", quality=70)),
    "crop5-center": (".jpg", lambda im: _encode(_crop(im, 0.05, "center"), "JPEG", quality=90)),
    "crop5-corner": (".jpg", lambda im: _encode(_crop(im, 0.05, "corner"), "JPEG", quality=90)),
    "exif-rotated": (".jpg", _rotated_by_exif),
    "recoloured": (".jpg", lambda im: _encode(_recoloured(im), "JPEG", quality=90)),
}


def variants(img: Image.Image, names: list[str] | None = None) -> dict[str, tuple[str, bytes]]:
    """name -> (extension, file bytes) for each near-duplicate variant of ``img``."""
    register_plugins()
    return {n: (VARIANTS[n][0], VARIANTS[n][1](img)) for n in (names or list(VARIANTS))}


def write_near_set(root: Path, seeds: list[int], size: tuple[int, int] = (320, 240),
                   names: list[str] | None = None) -> dict[int, list[Path]]:
    """For each seed: an original PNG plus its variants in sub-folders. Returns seed -> files."""
    out: dict[int, list[Path]] = {}
    for seed in seeds:
        img = scene(seed, size)
        files = [root / "originals" / f"s{seed}.png"]
        files[0].parent.mkdir(parents=True, exist_ok=True)
        img.save(files[0])
        for name, (ext, data) in variants(img, names).items():
            p = root / name / f"s{seed}{ext}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            files.append(p)
        out[seed] = files
    return out
