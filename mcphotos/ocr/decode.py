"""Decoding a photo for OCR, and the detector's first look at it, as a task for the
crash-isolating worker pool (indexing/workers.py).

Most photos hold no text, so the worker first decodes the photo small (a JPEG with ``draft()``,
a DCT-domain downscale: a 12 MP photo straight to 1008x756, far cheaper than to 2000 px) and
runs the detector on it (:class:`~mcphotos.ocr.engine.TextProbe`, one thread per worker). A
photo where the detector finds nothing is answered "no text" there and then; only a photo with
text-like regions is decoded again at :attr:`OcrSettings.max_side`, where small print is still
legible, and sent to the main process for full detection and recognition. So the main process
never waits for a blank photo, and what crosses the process boundary for one is a few bytes.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from mcphotos.errors import ImageError, McPhotosError
from mcphotos.indexing.hashing import hash_bytes
from mcphotos.indexing.imaging import DEFAULT_MAX_PIXELS, load_upright, open_image
from mcphotos.indexing.workers import Failed, read_checked
from mcphotos.ocr.engine import OcrSettings, TextProbe


@dataclass
class OcrDecoded:
    path: str
    hash: str
    size: int
    mtime_ns: int
    pixels: np.ndarray | None  # upright RGB uint8, long side at most max_side; None: the probe found no text
    scale: float  # pixels' size over the original's (boxes are divided by it)
    probed: bool = False  # the detector's probe ran in the worker (and found text when pixels is set)


def _upright(data: bytes, at_least: int, max_pixels: int) -> tuple[Image.Image, int, bool]:
    """The upright RGB photo, a JPEG drafted to a long side of at least ``at_least``; its
    original long side; and whether it was drafted (a larger size needs another decode)."""
    img = open_image(data, max_pixels)
    long_side = max(img.size)
    if img.format in ("JPEG", "MPO") and long_side > at_least:
        k = at_least / long_side
        try:
            img.draft("RGB", (math.ceil(img.size[0] * k), math.ceil(img.size[1] * k)))
            drafted = max(img.size) < long_side
            img.load()
            upright = ImageOps.exif_transpose(img) or img
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError("image is too large (possible decompression bomb)") from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as e:
            raise ImageError(f"cannot decode image: {e}") from None
        return upright.convert("RGB"), long_side, drafted
    rgb, _, _, _ = load_upright(data, max_pixels)
    return rgb, long_side, False


def _fit(img: Image.Image, side: int, long_side: int) -> tuple[np.ndarray, float]:
    if max(img.size) > side:
        k = side / max(img.size)
        img = img.resize((max(1, round(img.size[0] * k)), max(1, round(img.size[1] * k))), Image.Resampling.BILINEAR,
                         reducing_gap=2.0)
    return np.asarray(img, dtype=np.uint8), max(img.size) / long_side


def decode_for_ocr(data: bytes, max_side: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, float]:
    """Upright RGB pixels of ``data`` with the long side at most ``max_side``, and that size over
    the original's (the scale boxes are divided by).

    A JPEG is decoded with ``draft()`` (by a power of two, never below the size asked for); other
    formats decode fully through the indexer's guarded loader.
    """
    img, long_side, _ = _upright(data, max_side, max_pixels)
    return _fit(img, max_side, long_side)


# The worker's detector probe, built on its first photo (a second) and kept for the pool's life.
_probes: dict[OcrSettings, TextProbe] = {}


def _probe(settings: OcrSettings) -> TextProbe:
    probe = _probes.get(settings)
    if probe is None:
        probe = _probes[settings] = TextProbe(settings, threads=1)  # one worker per core
    return probe


def _decode_and_probe(data: bytes, settings: OcrSettings, probe: bool, max_pixels: int
                      ) -> tuple[np.ndarray | None, float]:
    if not (probe and settings.probe_side):
        return decode_for_ocr(data, settings.max_side, max_pixels)
    img, long_side, drafted = _upright(data, settings.probe_side, max_pixels)
    small, small_scale = _fit(img, settings.probe_side, long_side)
    if not _probe(settings).has_text(small):
        return None, small_scale
    if drafted:  # decoded small for the probe: decode again at the size text is read at
        return decode_for_ocr(data, settings.max_side, max_pixels)
    return _fit(img, settings.max_side, long_side)


def ocr_decode_task(path: str, settings: OcrSettings, probe: bool = True,
                    max_pixels: int = DEFAULT_MAX_PIXELS) -> OcrDecoded | Failed:
    """Read, hash and decode one file for OCR and, with ``probe``, let the detector's probe say
    whether it may hold text (:class:`OcrDecoded` without pixels when not). Runs in a worker;
    never raises for a bad file."""
    read = read_checked(path)
    if isinstance(read, Failed):
        return read
    data, st = read
    try:
        pixels, scale = _decode_and_probe(data, settings, probe, max_pixels)
    except ImageError as e:
        return Failed(path, e.message)
    except McPhotosError as e:  # the probe's models failed to load here: not this file's fault
        return Failed(path, e.message, retry=True)
    except MemoryError:
        return Failed(path, "out of memory while decoding")
    except Exception as e:  # a decoder bug must cost one file, not the run
        return Failed(path, f"decoder error: {type(e).__name__}: {e}")
    return OcrDecoded(path, hash_bytes(data), st.st_size, st.st_mtime_ns, pixels, scale,
                      probed=probe and settings.probe_side > 0)
