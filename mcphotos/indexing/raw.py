"""Camera RAW files through rawpy (LibRaw): the embedded preview when it is big enough, else a demosaic.

Cameras embed a full-size or large JPEG preview in almost every RAW. Decoding that JPEG is
several times faster than demosaicing the sensor data, and at the model's input size (a few
hundred pixels) nothing is lost as long as the preview is at least ``PREVIEW_FACTOR`` times the
model input on its long side. Otherwise (no preview, or a tiny one) the sensor data is
demosaiced at half size (LibRaw's ``half_size``: one RGB pixel per 2x2 Bayer cell, no
interpolation), which is still far more than the model needs.

The preview is stored the way the sensor saw the scene; the RAW's own orientation (LibRaw's
``flip``) turns it, and the capture time comes from the RAW's metadata, not from the preview.

rawpy is the optional extra ``mcphotos[raw]``. Every function here raises
:class:`~mcphotos.errors.ImageError` for a file it cannot decode, including when rawpy is
missing (:data:`NEEDS_EXTRA`), so the callers' one-line skips cover RAW files too.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image

from mcphotos.errors import ImageError
from mcphotos.indexing.imaging import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    PreprocessSpec,
    decode_for_model,
    load_upright,
    model_input,
    open_image,
    upright,
)

RAW_EXTENSIONS = frozenset({".cr2", ".cr3", ".nef", ".arw", ".dng", ".raf", ".orf", ".rw2", ".pef", ".srw"})
NEEDS_EXTRA = "RAW support needs mcphotos[raw]"
PREVIEW_FACTOR = 2  # the preview's long side must be at least this many times the model input's

# LibRaw's ``flip`` (0 none, 3 180°, 5 90° CCW, 6 90° CW, and the mirrored ones) in EXIF numbering.
_FLIP_TO_EXIF = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}


def is_raw(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in RAW_EXTENSIONS


def raw_support() -> bool:
    """True when rawpy can be imported (the ``mcphotos[raw]`` extra is installed)."""
    try:
        import rawpy  # noqa: F401
    except ImportError:
        return False
    return True


def _open(data: bytes, max_pixels: int) -> Any:
    try:
        import rawpy
    except ImportError:
        raise ImageError(NEEDS_EXTRA) from None
    if not data:
        raise ImageError("empty file")
    raw = rawpy.RawPy()
    try:
        raw.open_buffer(io.BytesIO(data))
        sizes = raw.sizes
    except (rawpy.LibRawError, ValueError, OSError) as e:
        raw.close()
        raise ImageError(f"cannot read RAW: {_reason(e)}") from None
    if sizes.raw_width <= 0 or sizes.raw_height <= 0 or sizes.width <= 0 or sizes.height <= 0:
        raw.close()
        raise ImageError("RAW has no pixels")
    if sizes.raw_width * sizes.raw_height > max_pixels:
        raw.close()
        raise ImageError(f"image is too large ({sizes.raw_width}x{sizes.raw_height}; possible decompression bomb)")
    return raw


def _reason(e: BaseException) -> str:
    text = str(e).strip()
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def _orientation(raw: Any) -> int:
    return _FLIP_TO_EXIF.get(int(raw.sizes.flip), 1)


def _taken_at(raw: Any) -> str | None:
    """The capture time LibRaw read from the RAW (EXIF DateTimeOriginal or its maker's own tag).

    LibRaw turns the camera's naive local time into a Unix time with the local zone, and rawpy
    turns it back the same way, so this is the time as the camera wrote it; 0 means none.
    """
    try:
        when = raw.other.timestamp
        if when.timestamp() <= 0:
            return None
        return when.replace(microsecond=0).isoformat()
    except (AttributeError, ValueError, OverflowError, OSError):
        return None


def _preview(raw: Any, max_pixels: int) -> tuple[bytes | None, Image.Image | None, int]:
    """The embedded preview as JPEG bytes or a bitmap, and its long side (0 when there is none)."""
    import rawpy

    try:
        thumb = raw.extract_thumb()
    except (rawpy.LibRawError, ValueError, OSError):
        return None, None, 0
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            head = open_image(bytes(thumb.data), max_pixels)
        except ImageError:
            return None, None, 0  # a broken preview: the sensor data may still be fine
        return bytes(thumb.data), None, max(head.size)
    if thumb.format == rawpy.ThumbFormat.BITMAP:
        arr = np.asarray(thumb.data)
        if arr.ndim == 3 and arr.shape[2] == 3 and arr.dtype == np.uint8:
            return None, Image.fromarray(arr, "RGB"), max(arr.shape[:2])
    return None, None, 0


def _demosaic(raw: Any) -> Image.Image:
    import rawpy

    try:
        rgb = raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8, user_flip=0)
    except (rawpy.LibRawError, ValueError, OSError) as e:
        raise ImageError(f"cannot decode RAW: {_reason(e)}") from None
    except MemoryError:
        raise ImageError("out of memory while decoding the RAW") from None
    return Image.fromarray(np.ascontiguousarray(rgb), "RGB")


def decode_raw_for_model(data: bytes, spec: PreprocessSpec, max_pixels: int = DEFAULT_MAX_PIXELS,
                         demosaic: bool = False) -> DecodedImage:
    """A RAW's bytes to model-ready pixels: the preview when big enough (unless ``demosaic``), else half-size."""
    raw = _open(data, max_pixels)
    try:
        orientation = _orientation(raw)
        taken_at = _taken_at(raw)
        width, height = raw.sizes.width, raw.sizes.height
        jpeg, bitmap, long_side = (None, None, 0) if demosaic else _preview(raw, max_pixels)
        if long_side >= PREVIEW_FACTOR * max(spec.size):
            if jpeg is not None:
                decoded = decode_for_model(jpeg, spec, max_pixels, orientation=orientation)
            else:
                assert bitmap is not None
                decoded = model_input(bitmap, bitmap.size, orientation, None, spec)
        else:
            img = _demosaic(raw)
            decoded = model_input(img, img.size, orientation, None, spec)
    finally:
        raw.close()
    # The facts stored beside the vector are the RAW's own: its full size and capture time.
    decoded.width, decoded.height = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    decoded.taken_at = taken_at
    return decoded


def load_raw_upright(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[Image.Image, int, int, str | None]:
    """A RAW as an upright RGB image for thumbnails: the preview, else a half-size demosaic."""
    raw = _open(data, max_pixels)
    try:
        orientation = _orientation(raw)
        taken_at = _taken_at(raw)
        jpeg, bitmap, _ = _preview(raw, max_pixels)
        if jpeg is not None:
            img, _, _, _ = load_upright(jpeg, max_pixels, orientation=orientation)
        else:
            img = upright(bitmap if bitmap is not None else _demosaic(raw), orientation)
    finally:
        raw.close()
    return img, img.size[0], img.size[1], taken_at


def decode_file_for_model(path: str, data: bytes, spec: PreprocessSpec,
                          max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """``data`` read from ``path`` to model-ready pixels: RAW files by their extension, others by content."""
    if is_raw(path):
        return decode_raw_for_model(data, spec, max_pixels)
    return decode_for_model(data, spec, max_pixels)


def load_file_upright(path: str, data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS,
                      draft: tuple[int, int] | None = None) -> tuple[Image.Image, int, int, str | None]:
    """``data`` read from ``path`` as an upright RGB image (see :func:`imaging.load_upright`)."""
    if is_raw(path):
        return load_raw_upright(data, max_pixels)
    return load_upright(data, max_pixels, draft=draft)
