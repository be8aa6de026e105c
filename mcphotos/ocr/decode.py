"""Decoding a photo for OCR, as a task for the crash-isolating worker pool (indexing/workers.py).

The recognizer wants the upright photo in colour at a size where small print is still legible,
not the model's 224-pixel crop: the long side is brought down to ``max_side`` (RapidOCR would
do the same inside), which also keeps what crosses the process boundary to a few megabytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from mcphotos.errors import ImageError
from mcphotos.indexing.hashing import hash_bytes
from mcphotos.indexing.imaging import DEFAULT_MAX_PIXELS, load_upright
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
    """Upright RGB pixels of ``data`` with the long side at most ``max_side``, and the scale applied."""
    img, w, h, _ = load_upright(data, max_pixels)
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8), scale


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
