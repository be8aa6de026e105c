"""Shared fixtures.

- Every test gets its own mcphotos home (``MCPHOTOS_HOME``) and its own empty Hugging Face
  cache (``HF_HOME``, ``HF_HUB_CACHE``), and the HF hub is offline: no test sees what the
  user downloaded (the README's quick start fills the real cache).
- ``s0_weights``: the real MobileCLIP2-S0 architecture with random weights, saved as a
  checkpoint, loaded through ``--weights`` exactly as a user's file would be.
- ``tiny_clip``: the tiny CLIP trained by ``tests/support/tinyclip.py`` on coloured shapes: the
  model that makes tests of *meaning* possible without pretrained weights. It is trained
  once per machine kind and cached in ``$MCPHOTOS_TEST_CACHE`` or ``~/.cache/mcphotos-tests``,
  keyed by the training script, the seed, torch, open_clip and the CPU's capability flags.
  Under ``CI=true`` the cache is a fresh temporary directory, so CI trains from scratch and
  proves what a new machine sees. ``MCPHOTOS_TINYCLIP_SEED`` picks the training seed
  (default 0): the tests of meaning must pass for any seed.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from typer.testing import Result

# huggingface_hub reads its cache location once, at import (open_clip imports it below): point
# it at an empty directory before that, so not even import-time state sees the user's cache.
_HF_SESSION = Path(tempfile.mkdtemp(prefix="mcphotos-tests-hf-"))
atexit.register(shutil.rmtree, _HF_SESSION, True)
os.environ["HF_HOME"] = str(_HF_SESSION)
os.environ["HF_HUB_CACHE"] = str(_HF_SESSION / "hub")
os.environ["HF_HUB_OFFLINE"] = "1"

from tests.support import tinyclip  # noqa: E402
from tests.support.photos import save_random_checkpoint  # noqa: E402

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
TINYCLIP_SEED = int(os.environ.get("MCPHOTOS_TINYCLIP_SEED", "0"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("MCPHOTOS_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hf = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(hf))
    monkeypatch.setenv("HF_HUB_CACHE", str(hf / "hub"))
    hub_constants = sys.modules.get("huggingface_hub.constants")
    if hub_constants is not None:
        monkeypatch.setattr(hub_constants, "HF_HOME", str(hf))
        monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(hf / "hub"))
    return home


@pytest.fixture
def cli() -> Callable[..., Result]:
    """Run ``mcphotos ARGS`` and check its exit code (see tests/support/cli.py)."""
    from tests.support.cli import invoke

    return invoke


@pytest.fixture
def home(_isolated_home: Path) -> Path:
    return _isolated_home


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where trained test models are kept: a fresh directory under CI=true, else the user's cache."""
    if IN_CI:
        return tmp_path_factory.mktemp("model-cache")
    return Path(os.environ.get("MCPHOTOS_TEST_CACHE", Path.home() / ".cache" / "mcphotos-tests"))


@pytest.fixture(scope="session")
def tiny_clip(model_cache: Path) -> tuple[Path, Path]:
    """(config.json, weights.pt) of the trained tiny shapes CLIP."""
    from filelock import FileLock

    d = model_cache / f"tinyclip-{tinyclip.cache_key(TINYCLIP_SEED)}"
    d.mkdir(parents=True, exist_ok=True)
    cfg, weights, accuracy = d / "tinyclip.json", d / "tinyclip.pt", d / "accuracy.json"
    # Several test processes may start at once: one trains, the others wait for its result.
    with FileLock(str(d) + ".lock"):
        if not (cfg.exists() and weights.exists() and accuracy.exists()):
            tmp = d.with_name(d.name + f".tmp{os.getpid()}")
            try:
                c, w = tinyclip.train_tiny_clip(tmp, seed=TINYCLIP_SEED)
            except tinyclip.TrainingRegressed as e:
                pytest.fail(str(e), pytrace=False)
            os.replace(tmp / "accuracy.json", accuracy)
            os.replace(w, weights)
            os.replace(c, cfg)
            shutil.rmtree(tmp, ignore_errors=True)
    top1 = json.loads(accuracy.read_text())["top1"]
    if top1 < tinyclip.MIN_TOP1:
        pytest.fail(f"cached tiny CLIP in {d} has zero-shot top-1 {top1:.1%} < {tinyclip.MIN_TOP1:.0%}: "
                    "delete it and retrain", pytrace=False)
    return cfg, weights


@pytest.fixture(scope="session")
def tiny_args(tiny_clip: tuple[Path, Path]) -> list[str]:
    cfg, weights = tiny_clip
    return ["--model", str(cfg), "--weights", str(weights)]


@pytest.fixture(scope="session")
def s0_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-weight MobileCLIP2-S0 checkpoint (the real architecture, no meaning)."""
    return save_random_checkpoint("MobileCLIP2-S0", tmp_path_factory.mktemp("s0") / "mobileclip2_s0.pt")


