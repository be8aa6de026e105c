"""Decoding for OCR: upright, long side capped (JPEG drafts included), scale reported, bad bytes refused."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mcphotos.errors import ImageError
from mcphotos.indexing.workers import Failed
from mcphotos.ocr.decode import OcrDecoded, decode_for_ocr, ocr_decode_task


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
    res = ocr_decode_task(str(good), 2000)
    assert isinstance(res, OcrDecoded) and res.pixels.shape == (300, 400, 3) and len(res.hash) == 40
    bad = tmp_path / "b.jpg"
    data = jpeg((3000, 2000))
    bad.write_bytes(data[: len(data) // 2])  # the header is whole, the pixels are cut off
    res = ocr_decode_task(str(bad), 2000)  # the drafted path
    assert isinstance(res, Failed) and res.reason.startswith("cannot decode image")
    res = ocr_decode_task(str(bad), 4000)  # the full decode
    assert isinstance(res, Failed) and res.reason.startswith("cannot decode image")
    with pytest.raises(ImageError):
        decode_for_ocr(b"not an image", 2000)
