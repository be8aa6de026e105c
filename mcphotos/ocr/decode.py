"""Decoding a photo for OCR, as a task for the crash-isolating worker pool (indexing/workers.py).

The recognizer wants the upright photo in colour at a size where small print is still legible,
not the model's 224-pixel crop: the long side is brought down to ``max_side`` (RapidOCR would
do the same inside), which also keeps what crosses the process boundary to a few megabytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from mcphotos.errors import ImageError
from mcphotos.indexing.hashing import hash_bytes
from mcphotos.indexing.imaging import DEFAULT_MAX_PIXELS, load_upright, open_image
from mcphotos.indexing.workers import Failed, read_checked


@dataclass
class OcrDecoded:
    path: str
    hash: str
    size: int
    mtime_ns: int
    pixels: np.ndarray  # upright RGB uint8, long side at most max_side
    scale: float  # pixels' size over the original's (boxes are divided by it)


def decode_for_ocr(data: bytes, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float]:
    """Upright RGB pixels of ``data`` with the long side at most ``max_side``, and that size over
    the original's (the scale boxes are divided by).

    A JPEG is decoded with ``draft()`` (a DCT-domain downscale by a power of two, never below the
    size asked for): a 12 MP photo then costs a fifth of a full decode. Other formats decode fully
    through the indexer's guarded loader.
    """
    img = open_image(data, max_pixels)
    long_side = max(img.size)
    if img.format in ("JPEG", "MPO") and long_side > max_side:
        k = max_side / long_side
        try:
            img.draft("RGB", (math.ceil(img.size[0] * k), math.ceil(img.size[1] * k)))
            img.load()
            upright = ImageOps.exif_transpose(img) or img
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError("image is too large (possible decompression bomb)") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
            raise ImageError(f"cannot decode image: {e}") from None
        rgb = upright.convert("RGB")
    else:
        rgb, _, _, _ = load_upright(data, max_pixels)
    if max(rgb.size) > max_side:
        k = max_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.size[0] * k)), max(1, round(rgb.size[1] * k))), Image.Resampling.BILINEAR,
                         reducing_gap=2.0)
    return np.asarray(rgb, dtype=np.uint8), max(rgb.size) / long_side


def ocr_decode_task(path: str, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> OcrDecoded | Failed:
    """Read, hash and decode one file for OCR. Runs in a worker; never raises for a bad file."""
    read = read_checked(path)
    if isinstance(read, Failed):
        return read
    data, st = read
    try:
        pixels, scale = decode_for_ocr(data, max_side, max_pixels)
    except ImageError as e:
        return Failed(path, e.message)
    except MemoryError:
        return Failed(path, "out of memory while decoding")
    except Exception as e:  # a decoder bug must cost one file, not the run
        return Failed(path, f"decoder error: {type(e).__name__}: {e}")
    return OcrDecoded(path, hash_bytes(data), st.st_size, st.st_mtime_ns, pixels, scale)
