"""Guarded image decoding and preprocessing faithful to open_clip's reference transform.

Reference pipeline (open_clip ``image_transform_v2(cfg, is_train=False)`` for
``resize_mode='shortest'`` and a square size S), which :func:`preprocess` reproduces with
Pillow alone so decode workers never import torch:

1. ``torchvision.transforms.Resize(S)``: the short side becomes S, the long side
   ``int(S * long / short)`` (truncated), resampled with the configured filter;
2. ``CenterCrop(S)``: offsets ``int(round((H - S) / 2))``;
3. ``ToTensor`` (x / 255) then ``Normalize(mean, std)``; that last step runs in the
   engine, on the whole batch.

``longest`` (resize the long side to S, then pad) and ``squash`` are mirrored too.
The test suite checks the result against open_clip's transform.

For speed, JPEGs are decoded with ``draft()`` (a DCT-domain downscale) to no less than
``DRAFT_FACTOR`` times the target size, which keeps the difference from a full decode
well under 1/255 on average while skipping most of the decode work.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

from mcphotos.errors import ImageError
from mcphotos.indexing.preprocess_spec import PreprocessSpec

# A truncated file must fail, never be embedded from grey-filled pixels.
ImageFile.LOAD_TRUNCATED_IMAGES = False

# Pillow format names we index. Restricting ``Image.open`` to them keeps exotic,
# rarely-audited decoders (EPS via Ghostscript, for one) out of reach of a renamed file.
FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP", "MPO", "HEIF", "AVIF"]
EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".avif"}
)

DEFAULT_MAX_PIXELS = 200_000_000  # a 200 MP phone photo is real; beyond that, a bomb
DRAFT_FACTOR = 2
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132

_heif_registered = False


_open_formats: list[str] = []


def register_plugins() -> list[str]:
    """Register the HEIF opener once per process; return the whitelisted formats available."""
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - pillow-heif is a dependency, but degrade cleanly
            pass
        Image.init()
        # Only formats this Pillow actually has (AVIF needs Pillow >= 11.3 built with libavif).
        _open_formats[:] = [f for f in FORMATS if f in Image.OPEN]
        _heif_registered = True
    return _open_formats


@dataclass
class DecodedImage:
    """One photo ready for the model, plus facts read on the way."""

    pixels: np.ndarray  # uint8, (H, W, 3), already resized and cropped
    width: int  # upright size of the original
    height: int
    taken_at: str | None  # ISO 8601 from EXIF, if any
    phash: int | None  # 64-bit DCT perceptual hash of the upright image, signed for SQLite
    colors: bytes | None = None  # 4x4 YCbCr layout (48 bytes), see layout_signature
    detail: float | None = None  # grey-level spread: below FLAT_DETAIL the pHash is noise


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open (header only) with the format whitelist and the bomb check."""
    formats = register_plugins()
    if not data:
        raise ImageError("empty file")
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=formats)
    except UnidentifiedImageError:
        raise ImageError("not a supported image (unrecognized content)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"image is too large (over {max_pixels:,} pixels; possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot read image header: {e}") from None
    w, h = img.size
    if w <= 0 or h <= 0:
        raise ImageError("image has no pixels")
    if w * h > max_pixels:
        raise ImageError(f"image is too large ({w}x{h}; possible decompression bomb)")
    return img


def _capture_time(img: Image.Image) -> str | None:
    try:
        exif = img.getexif()
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # malformed EXIF is common and never fatal
        return None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S").isoformat()
    except ValueError:
        return None


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
        return int(value) if int(value) in range(1, 9) else 1
    except Exception:
        return 1


def _target_geometry(w: int, h: int, spec: PreprocessSpec) -> tuple[int, int]:
    """Size the image is resized to before cropping, exactly as torchvision computes it."""
    th, tw = spec.size
    if spec.resize_mode == "squash":
        return tw, th
    if spec.resize_mode == "longest":
        ratio = max(h / th, w / tw)
        return round(w / ratio), round(h / ratio)
    if th == tw:
        # torchvision Resize(int): short side -> S, long side truncated with int().
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = th, int(th * long / short)
        return (new_short, new_long) if w <= h else (new_long, new_short)
    ratio = min(h / th, w / tw)  # ResizeKeepRatio for non-square targets
    return round(w / ratio), round(h / ratio)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Convert any mode to 8-bit RGB without the classic traps."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow's convert('L') clips 16-bit values at 255 (all white); scale instead.
        arr = np.asarray(img, dtype=np.uint32 if img.mode == "I" else np.uint16).astype(np.float64)
        top = 65535.0 if img.mode != "I" or arr.max() > 255 else 255.0
        arr = np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(np.nanmin(arr)), float(np.nanmax(arr))
        arr = (arr - lo) / (hi - lo or 1.0) * 255.0
        return Image.fromarray(np.nan_to_num(arr).astype(np.uint8), "L").convert("RGB")
    # Transparency: like open_clip's reference (``convert("RGB")``), alpha is dropped, so a
    # transparent PNG embeds exactly as the model's own pipeline would see it.
    if img.mode != "RGB":
        return img.convert("RGB")  # CMYK (with Adobe inversion handled by Pillow), L, YCbCr, ...
    return img


def phash64(img: Image.Image) -> int:
    """DCT perceptual hash: 8x8 low frequencies of a 32x32 grey thumbnail vs their median.

    Returned as a signed 64-bit int so SQLite can store it.
    """
    small = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    dct = _DCT32 @ small @ _DCT32.T
    low = dct[:8, :8].flatten()
    bits = low > np.median(low[1:])
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value - (1 << 64) if value >= (1 << 63) else value


# A photo whose 32x32 grey thumbnail varies by less than this (std, grey levels) is flat: a blank
# page, a white-composited transparent PNG. Its pHash bits are the signs of near-zero numbers,
# i.e. noise, so near-duplicate detection compares its colour layout alone.
FLAT_DETAIL = 0.5


def layout_signature(img: Image.Image) -> tuple[bytes, float]:
    """(colour layout, detail) of an upright image: the second perceptual signature.

    The layout is the mean YCbCr of a 4x4 grid (48 bytes): it tells a dark-mode wallpaper from
    its light original (the pHash, computed on grey levels, does not) and survives re-encoding,
    resizing and small crops. ``detail`` is the std of the 32x32 grey thumbnail.
    """
    grid = np.asarray(img.convert("YCbCr").resize((4, 4), Image.Resampling.BOX), dtype=np.uint8)
    grey = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    return grid.tobytes(), float(grey.std())


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _load(img: Image.Image, draft: tuple[int, int] | None = None) -> None:
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)  # first frame of an animated GIF/WebP
        if draft is not None:
            img.draft("RGB", draft)
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError("image is too large (possible decompression bomb)") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
        raise ImageError(f"cannot decode image: {e}") from None


def load_upright(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS, orientation: int | None = None,
                 draft: tuple[int, int] | None = None) -> tuple[Image.Image, int, int, str | None]:
    """Decode ``data`` fully to an upright RGB image (for thumbnails, sheets and checks).

    Returns (image, width, height, capture time). ``orientation`` overrides the file's EXIF.
    ``draft``: a JPEG may decode at a reduced scale that still covers this size (thumbnails).
    """
    img = open_image(data, max_pixels)
    _load(img, draft)
    if orientation is None:
        orientation = _orientation(img)
    taken_at = _capture_time(img)
    img = upright(_to_rgb(img), orientation)
    return img, img.size[0], img.size[1], taken_at


def upright(img: Image.Image, orientation: int) -> Image.Image:
    """``img`` turned the way EXIF ``orientation`` (1-8) says it is meant to be seen."""
    return img.transpose(_TRANSPOSE[orientation]) if orientation in _TRANSPOSE else img


def preprocess(img: Image.Image, spec: PreprocessSpec, original_size: tuple[int, int] | None = None) -> np.ndarray:
    """Resize and crop like open_clip's eval transform; returns uint8 (H, W, 3).

    ``original_size`` is the upright size before any JPEG draft, so the geometry (and thus
    the crop) is exactly the one the reference computes on the full-resolution image.
    """
    ow, oh = original_size or img.size
    rw, rh = _target_geometry(ow, oh, spec)
    if (rw, rh) != img.size:
        img = img.resize((rw, rh), spec.resample)
    return _crop_or_pad(img, spec)




def decode_for_model(data: bytes, spec: PreprocessSpec, max_pixels: int = DEFAULT_MAX_PIXELS,
                     orientation: int | None = None) -> DecodedImage:
    """Bytes of one photo to model-ready pixels plus the facts stored beside its vector.

    The resize happens in the stored orientation, from the exact source box: a JPEG draft
    rounds odd sizes up, so the drafted image covers slightly more than the original, and
    ignoring that shifts every sample. Flips and rotations commute with resampling, so
    transposing afterwards gives the same pixels as the reference's transpose-then-resize.
    ``orientation`` (EXIF numbering) overrides the file's own: a RAW's embedded preview is
    stored the way the sensor saw it, and the RAW says how to turn it.
    """
    img = open_image(data, max_pixels)
    sw, sh = img.size
    is_jpeg = img.format in ("JPEG", "MPO")
    # JPEG keeps EXIF ahead of the pixels (needed to aim the draft); PNG may put it after.
    if orientation is None and is_jpeg:
        orientation = _orientation(img)
    if is_jpeg:
        turned = (orientation or 1) in (5, 6, 7, 8)
        rw, rh = _target_geometry(*((sh, sw) if turned else (sw, sh)), spec)
        target = (rh, rw) if turned else (rw, rh)
    _load(img, draft=(int(target[0] * DRAFT_FACTOR), int(target[1] * DRAFT_FACTOR)) if is_jpeg else None)
    if orientation is None:
        orientation = _orientation(img)
    return model_input(img, (sw, sh), orientation, _capture_time(img), spec)


def model_input(img: Image.Image, source_size: tuple[int, int], orientation: int, taken_at: str | None,
                spec: PreprocessSpec) -> DecodedImage:
    """A decoded picture (as stored, before ``orientation``) to model-ready pixels and signatures.

    ``source_size`` is the stored size of the original: ``img`` may be smaller (a JPEG draft,
    whose box is then the exact reduced source).
    """
    sw, sh = source_size
    swapped = orientation in (5, 6, 7, 8)
    w, h = (sh, sw) if swapped else (sw, sh)
    rw, rh = _target_geometry(w, h, spec)
    stored_target = (rh, rw) if swapped else (rw, rh)
    img = _to_rgb(img)
    box = None
    if img.size != (sw, sh):
        scale = max(1, round(sw / img.size[0]))  # the draft's power-of-two reduction
        box = (0.0, 0.0, sw / scale, sh / scale)
    if stored_target != img.size or box is not None:
        img = img.resize(stored_target, spec.resample, box=box)
    if orientation in _TRANSPOSE:
        img = img.transpose(_TRANSPOSE[orientation])
    try:
        ph = phash64(img)
        colors, detail = layout_signature(img)
    except Exception:
        ph, colors, detail = None, None, None
    return DecodedImage(pixels=_crop_or_pad(img, spec), width=w, height=h, taken_at=taken_at, phash=ph,
                        colors=colors, detail=detail)


def _crop_or_pad(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    th, tw = spec.size
    rw, rh = img.size
    if spec.resize_mode == "longest":
        canvas = Image.new("RGB", (tw, th), (spec.fill_color,) * 3)
        canvas.paste(img, ((tw - rw) // 2, (th - rh) // 2))
        img = canvas
    elif (rw, rh) != (tw, th):
        left = int(round((rw - tw) / 2.0))
        top = int(round((rh - th) / 2.0))
        img = img.crop((left, top, left + tw, top + th))
    return np.asarray(img, dtype=np.uint8)
