"""Decoding for OCR: upright, long side capped (JPEG drafts included), scale reported, bad bytes
refused; and the worker's detector probe, which answers "no text" without sending pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mcphotos.errors import ImageError
from mcphotos.indexing.workers import Failed
from mcphotos.ocr.decode import OcrDecoded, decode_for_ocr, ocr_decode_task
from mcphotos.ocr.engine import OcrSettings
from tests.support.textphotos import scene_with_text

FULL = OcrSettings()
NO_PROBE = OcrSettings(probe_side=0)


def jpeg(size: tuple[int, int], orientation: int = 1) -> bytes:
    img = Image.new("RGB", size, (200, 30, 30))
    img.paste((30, 30, 200), (0, 0, size[0] // 4, size[1] // 4))  # a blue top-left corner, as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, exif=exif)
    return buf.getvalue()


def test_large_jpeg_is_drafted_capped_and_upright() -> None:
    pixels, scale = decode_for_ocr(jpeg((3000, 2000), orientation=6), max_side=1000)
    assert pixels.shape == (1000, 667, 3)  # orientation 6: stored landscape, shown portrait
    assert scale == pytest.approx(1000 / 3000)
    assert pixels[10, -10, 2] > 150 and pixels[10, 10, 0] > 150  # the blue corner is now top right


def test_small_photos_keep_their_size_and_png_decodes_fully() -> None:
    buf = io.BytesIO()
    Image.new("L", (120, 80), 90).save(buf, "PNG")
    pixels, scale = decode_for_ocr(buf.getvalue(), max_side=2000)
    assert (pixels.shape, scale) == ((80, 120, 3), 1.0)
    assert np.all(pixels == 90)


def test_task_reads_hashes_and_fails_in_one_reason(tmp_path) -> None:
    good = tmp_path / "a.jpg"
    good.write_bytes(jpeg((400, 300)))
    res = ocr_decode_task(str(good), FULL, probe=False)
    assert isinstance(res, OcrDecoded) and res.pixels is not None and res.pixels.shape == (300, 400, 3)
    assert len(res.hash) == 40 and not res.probed
    bad = tmp_path / "b.jpg"
    data = jpeg((3000, 2000))
    bad.write_bytes(data[: len(data) // 2])  # the header is whole, the pixels are cut off
    res = ocr_decode_task(str(bad), FULL, probe=False)  # the drafted path
    assert isinstance(res, Failed) and res.reason.startswith("cannot decode image")
    res = ocr_decode_task(str(bad), FULL)  # drafted small for the probe
    assert isinstance(res, Failed) and res.reason.startswith("cannot decode image")
    res = ocr_decode_task(str(bad), OcrSettings(max_side=4000), probe=False)  # the full decode
    assert isinstance(res, Failed) and res.reason.startswith("cannot decode image")
    with pytest.raises(ImageError):
        decode_for_ocr(b"not an image", 2000)


def test_probe_in_the_worker_sends_pixels_only_for_text(tmp_path) -> None:
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(scene_with_text((4000, 3000), 0, []))
    res = ocr_decode_task(str(blank), FULL)
    assert isinstance(res, OcrDecoded) and res.probed and res.pixels is None  # the detector said: no text
    # Text 1/100 of the long side (about 6 pixels at the 640-pixel probe): found, then decoded
    # again at the size text is read at.
    small = tmp_path / "small.jpg"
    small.write_bytes(scene_with_text((4000, 3000), 40, ["Total 12.50", "Kalomiru thank you"]))
    res = ocr_decode_task(str(small), FULL)
    assert isinstance(res, OcrDecoded) and res.probed and res.pixels is not None
    assert res.pixels.shape == (1500, 2000, 3) and res.scale == pytest.approx(0.5)
    res = ocr_decode_task(str(small), NO_PROBE)
    assert isinstance(res, OcrDecoded) and not res.probed and res.pixels is not None
