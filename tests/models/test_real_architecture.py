"""The real MobileCLIP2-S0 architecture with random weights: plumbing, not meaning.

Random weights collapse every photo to nearly one direction, so nothing here checks
ranking; it checks that the real model loads through the real code paths (a local
checkpoint via --weights, and the hub path via the HF cache) and runs end to end.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mcphotos.cli import app
from tests.support.cli import runner
from tests.support.photos import photo


@pytest.fixture(scope="module")
def s0_engine(s0_weights: Path):
    from mcphotos.models.clip import load_engine
    from mcphotos.models.registry import resolve_model

    return load_engine(resolve_model("MobileCLIP2-S0", weights=str(s0_weights)))


def test_local_checkpoint_gets_the_pretrained_preprocessing(s0_engine) -> None:
    cfg = s0_engine.model.visual.preprocess_cfg
    assert tuple(cfg["mean"]) == (0.0, 0.0, 0.0) and tuple(cfg["std"]) == (1.0, 1.0, 1.0)
    assert cfg["interpolation"] == "bilinear" and cfg["resize_mode"] == "shortest"
    assert s0_engine.preprocess.size == (256, 256)
    assert s0_engine.dim == 512


def test_engine_matches_open_clip_reference_pipeline(s0_engine, tmp_path: Path) -> None:
    """Our decode + batch normalize == open_clip's preprocess + encode_image (fp32)."""
    import torch
    from PIL import Image

    from mcphotos.indexing.imaging import decode_for_model
    from mcphotos.models.clip import reference_transform

    paths = [photo(tmp_path / f"{i}.png", seed=i, size=(300 + 37 * i, 200 + 11 * i)) for i in range(3)]
    ref_t = reference_transform(s0_engine)
    ref_x = torch.stack([ref_t(Image.open(p).convert("RGB")) for p in paths])
    ours_px = np.stack([decode_for_model(p.read_bytes(), s0_engine.preprocess).pixels for p in paths])
    ours_x = torch.from_numpy(ours_px).permute(0, 3, 1, 2).float() / 255.0
    assert torch.allclose(ours_x, ref_x, atol=1.01 / 255)
    prec = s0_engine.precision
    s0_engine.precision = "fp32"
    try:
        ours = s0_engine.encode_images(ours_px)
    finally:
        s0_engine.precision = prec
    with torch.inference_mode():
        ref = s0_engine.model.encode_image(ref_x, normalize=True).float().numpy()
    assert np.all(np.sum(ours * ref, axis=1) > 0.9999)


def test_hub_path_loads_from_the_hf_cache_like_a_local_file(s0_weights: Path, tmp_path: Path, monkeypatch) -> None:
    """The default (hub) model, found in the HF cache, equals the same weights via --weights."""
    cache = tmp_path / "hf"
    snap = cache / "models--timm--MobileCLIP2-S0-OpenCLIP" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (cache / "models--timm--MobileCLIP2-S0-OpenCLIP" / "refs").mkdir()
    (cache / "models--timm--MobileCLIP2-S0-OpenCLIP" / "refs" / "main").write_text("abc123")
    shutil.copy(s0_weights, snap / "open_clip_pytorch_model.bin")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    import huggingface_hub.constants as hc

    monkeypatch.setattr(hc, "HF_HUB_CACHE", str(cache))
    from mcphotos.models.clip import load_engine
    from mcphotos.models.registry import resolve_model

    hub = load_engine(resolve_model("MobileCLIP2-S0"))
    local = load_engine(resolve_model("MobileCLIP2-S0", weights=str(s0_weights)))
    assert hub.model.visual.preprocess_cfg == local.model.visual.preprocess_cfg
    assert hub.preprocess == local.preprocess
    px = np.random.default_rng(0).integers(0, 255, (2, 256, 256, 3), dtype=np.uint8)
    assert np.allclose(hub.encode_images(px), local.encode_images(px), atol=1e-5)
    t = ["a photo of a dog"]
    assert np.allclose(hub.encode_texts(t), local.encode_texts(t), atol=1e-5)


def test_cli_end_to_end_on_the_real_architecture(s0_weights: Path, tmp_path: Path) -> None:
    pics = tmp_path / "my pics"
    for i in range(5):
        photo(pics / f"photo {i}.jpg", seed=i, size=(640, 480), fmt="JPEG")
    photo(pics / "odd\nname.png", seed=9)
    # --engine torch: no automatic export here (test_search_s0.py runs the default, which prepares
    # the ONNX runtime, and test_onnx_export_of_s0_passes_the_parity_gate checks S0's export).
    args = ["--weights", str(s0_weights), "--engine", "torch"]
    r = runner.invoke(app, ["index", str(pics), "--json", *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["new"] == 6 and report["embedded"] == 6 and report["failed"] == 0
    r = runner.invoke(app, ["find", "a photo", "--json", "-k", "10", *args], catch_exceptions=False)
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert len(rows) == 6 and {Path(x["path"]).parent for x in rows} == {pics}
    r = runner.invoke(app, ["find", "a photo", "-0", *args], catch_exceptions=False)
    names = sorted(os.fsdecode(p) for p in r.stdout_bytes.split(b"\0") if p)
    assert names == sorted(str(p) for p in pics.iterdir())
    r = runner.invoke(app, ["status", "--json", *args], catch_exceptions=False)
    st = json.loads(r.stdout)
    assert st["files"] == 6 and st["images"] == 6 and st["ann"] == "current"


def test_onnx_export_of_s0_passes_the_parity_gate(tmp_path: Path) -> None:
    """The real S0 exported to ONNX Runtime agrees with torch fp32 on 512 prompts and spread-out photos."""
    from mcphotos.indexing.imaging import decode_for_model
    from mcphotos.models.clip import load_engine, preprocess_spec_for
    from mcphotos.models.export import export_runtime
    from mcphotos.models.onnxengine import OnnxEngine
    from mcphotos.models.registry import resolve_model
    from tests.support.photos import save_bn_recalibrated_checkpoint
    from tests.support.scenes import scene

    pre = preprocess_spec_for(resolve_model("MobileCLIP2-S0"))
    paths = []
    for i in range(24):
        paths.append(tmp_path / f"{i}.jpg")
        scene(i, (320 + 8 * i, 240)).save(paths[-1], quality=90)
    pixels = np.stack([decode_for_model(p.read_bytes(), pre).pixels for p in paths])
    weights = save_bn_recalibrated_checkpoint("MobileCLIP2-S0", tmp_path / "s0-bn.pt", pixels)
    engine = load_engine(resolve_model("MobileCLIP2-S0", weights=str(weights)))
    report = export_runtime(engine, tmp_path / "runtime", {"name": "s0", "preprocess": pre.to_dict()}, 1.0)
    parity = report.manifest.parity
    assert parity.passed and parity.prompts >= 512
    assert parity.text_min_cosine >= 0.99999 and parity.image_min_cosine >= 0.99999
    # The photos are spread out, so the image cosine above measured something.
    onnx = OnnxEngine(tmp_path / "runtime", report.manifest)
    got = onnx.encode_images(pixels)
    sims = got @ got.T
    assert sims[~np.eye(len(got), dtype=bool)].mean() < 0.9
    engine.precision = "fp32"
    ref = engine.encode_images(pixels)
    assert (np.sum(ref * got, axis=1) >= 0.99999).all()
    texts = ["a photo of a dog", "Ünïcödé café", "receipt total 12.99"]
    assert (np.sum(engine.encode_texts(texts) * onnx.encode_texts(texts), axis=1) >= 0.99999).all()
