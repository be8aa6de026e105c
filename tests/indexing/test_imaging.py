"""Our Pillow-only preprocessing must match open_clip's reference transform."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mcphotos.indexing.imaging import (
    PreprocessSpec,
    decode_for_model,
    load_upright,
    phash64,
    preprocess,
)
from tests.support.photos import photo


def reference(img: Image.Image, spec: PreprocessSpec) -> np.ndarray:
    from open_clip.transform import PreprocessCfg, image_transform_v2

    cfg = PreprocessCfg(size=spec.size, mean=(0.0,) * 3, std=(1.0,) * 3, interpolation=spec.interpolation,
                        resize_mode=spec.resize_mode, fill_color=spec.fill_color)
    t = image_transform_v2(cfg, is_train=False)
    return (t(img).permute(1, 2, 0).numpy() * 255.0).astype(np.float64)


def mobileclip2_spec() -> PreprocessSpec:
    from mcphotos.models.clip import preprocess_spec_for
    from mcphotos.models.registry import resolve_model

    return preprocess_spec_for(resolve_model("MobileCLIP2-S0"))


def test_spec_comes_from_open_clip_pretrained_config() -> None:
    spec = mobileclip2_spec()
    assert spec.size == (256, 256)
    assert spec.mean == (0.0, 0.0, 0.0) and spec.std == (1.0, 1.0, 1.0)
    assert spec.interpolation == "bilinear" and spec.resize_mode == "shortest"


@pytest.mark.parametrize("size", [(640, 480), (480, 640), (1023, 511), (256, 256), (300, 257), (200, 150), (97, 1301)])
@pytest.mark.parametrize("mode", ["shortest", "longest", "squash"])
@pytest.mark.parametrize("interp", ["bilinear", "bicubic"])
def test_preprocess_matches_reference_png(tmp_path, size, mode, interp) -> None:
    spec = PreprocessSpec(size=(256, 256), mean=(0, 0, 0), std=(1, 1, 1), interpolation=interp, resize_mode=mode)
    p = photo(tmp_path / "a.png", seed=size[0], size=size)
    ours = decode_for_model(p.read_bytes(), spec).pixels.astype(np.float64)
    ref = reference(Image.open(p).convert("RGB"), spec)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).mean() <= 0.51  # rounding to uint8 only


@pytest.mark.parametrize("size", [(1600, 1200), (1200, 1600), (2049, 1031)])
def test_jpeg_draft_stays_within_one_level(tmp_path, size) -> None:
    spec = mobileclip2_spec()
    p = photo(tmp_path / "a.jpg", seed=3, size=size, fmt="JPEG")
    ours = decode_for_model(p.read_bytes(), spec).pixels.astype(np.float64)
    ref = reference(Image.open(p).convert("RGB"), spec)
    diff = np.abs(ours - ref).mean()
    print(f"draft vs reference mean abs diff {diff:.3f}/255 for {size}")
    assert diff <= 1.0


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(tmp_path, orientation) -> None:
    upright = Image.open(photo(tmp_path / "u.png", seed=5, size=(120, 80))).convert("RGB")
    inverse = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}[orientation]
    stored = upright.transpose(inverse) if inverse is not None else upright
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "PNG", exif=exif)
    img, w, h, _ = load_upright(buf.getvalue())
    assert (w, h) == (120, 80)
    assert np.abs(np.asarray(img, dtype=float) - np.asarray(upright, dtype=float)).mean() < 1.0


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    arr = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    img, *_ = load_upright(buf.getvalue())
    px = np.asarray(img)
    assert px.min() == 0 and px.max() == 255
    assert 100 < px.mean() < 155  # a ramp, not a white square


def test_phash_is_stable_under_reencoding_and_differs_between_photos(tmp_path) -> None:
    a = Image.open(photo(tmp_path / "a.png", seed=1, size=(400, 300))).convert("RGB")
    b = Image.open(photo(tmp_path / "b.png", seed=2, size=(400, 300))).convert("RGB")
    buf = io.BytesIO()
    a.resize((200, 150)).save(buf, "JPEG", quality=60)
    a2 = Image.open(buf).convert("RGB")

    def dist(x: int, y: int) -> int:
        return bin((x ^ y) & (2**64 - 1)).count("1")

    assert dist(phash64(a), phash64(a2)) <= 6
    assert dist(phash64(a), phash64(b)) >= 16


def test_preprocess_uses_original_geometry_after_draft(tmp_path) -> None:
    spec = PreprocessSpec(size=(64, 64), mean=(0, 0, 0), std=(1, 1, 1), interpolation="bilinear")
    img = Image.new("RGB", (100, 50))
    assert preprocess(img, spec, (400, 200)).shape == (64, 64, 3)
