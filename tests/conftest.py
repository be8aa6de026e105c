"""Shared fixtures.

- Every test gets its own mcphotos home (``MCPHOTOS_HOME``) and the HF hub is offline.
- ``s0_weights``: the real MobileCLIP2-S0 architecture with random weights, saved as a
  checkpoint, loaded through ``--weights`` exactly as a user's file would be.
- ``tiny_clip``: the tiny CLIP trained by ``tests/tinyclip.py`` on coloured shapes: the
  model that makes tests of *meaning* possible without pretrained weights. It is trained
  once and cached (keyed by the training script's hash) in ``$MCPHOTOS_TEST_CACHE`` or
  ``~/.cache/mcphotos-tests``.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
from pathlib import Path

import pytest
from PIL import Image

TESTS = Path(__file__).parent
sys.path.insert(0, str(TESTS))

import tinyclip  # noqa: E402

CACHE = Path(os.environ.get("MCPHOTOS_TEST_CACHE", Path.home() / ".cache" / "mcphotos-tests"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MCPHOTOS_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return home


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    return _isolated_home


def _cached(name: str, key: str) -> Path:
    d = CACHE / f"{name}-{key}"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="session")
def tiny_clip() -> tuple[Path, Path]:
    """(config.json, weights.pt) of the trained tiny shapes CLIP."""
    from filelock import FileLock

    key = hashlib.sha256((TESTS / "tinyclip.py").read_bytes()).hexdigest()[:12]
    d = _cached("tinyclip", key)
    cfg, weights = d / "tinyclip.json", d / "tinyclip.pt"
    # Several test processes may start at once: one trains, the others wait for its result.
    with FileLock(str(d) + ".lock"):
        if not (cfg.exists() and weights.exists()):
            tmp = d.with_name(d.name + f".tmp{os.getpid()}")
            tmp.mkdir(parents=True, exist_ok=True)
            c, w = tinyclip.train_tiny_clip(tmp)
            os.replace(w, weights)
            os.replace(c, cfg)
    return cfg, weights


@pytest.fixture(scope="session")
def tiny_args(tiny_clip: tuple[Path, Path]) -> list[str]:
    cfg, weights = tiny_clip
    return ["--model", str(cfg), "--weights", str(weights)]


def save_random_checkpoint(model_name: str, path: Path) -> Path:
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model(model_name, pretrained=None)
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def s0_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight MobileCLIP2-S0 checkpoint (the real architecture, no meaning)."""
    return save_random_checkpoint("MobileCLIP2-S0", tmp_path_factory.mktemp("s0") / "mobileclip2_s0.pt")


def shape_photo(path: Path, color: str, shape: str, seed: int, size: int = 96, fmt: str | None = None) -> Path:
    img = tinyclip.draw_shape(color, shape, size=size, rng=random.Random(seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def photo(path: Path, seed: int = 0, size: tuple[int, int] = (160, 120), fmt: str | None = None) -> Path:
    """A small textured photo-like image (smooth gradients plus noise), distinct per seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([
        128 + 100 * np.sin(xx / (7 + seed % 5) + rng.uniform(0, 6)),
        128 + 100 * np.cos(yy / (5 + seed % 7) + rng.uniform(0, 6)),
        128 + 100 * np.sin((xx + yy) / (9 + seed % 3)),
    ], axis=-1)
    base += rng.normal(0, 12, base.shape)
    img = Image.fromarray(np.clip(base, 0, 255).astype("uint8"), "RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path
