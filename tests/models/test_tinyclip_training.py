"""The tiny CLIP's training script: deterministic, leaves the process as it found it, and fails
loudly when it trains a model too weak for the tests of meaning to mean anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.support import tinyclip

SHORT = {"steps": 3, "per_class": 2, "eval_per_class": 1}  # a few steps on a small pool: the real loop, in seconds


def test_training_is_deterministic_and_restores_threads_and_determinism(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    try:
        _, a_w = tinyclip.train_tiny_clip(tmp_path / "a", seed=7, min_top1=0.0, **SHORT)
        assert torch.get_num_threads() == 1
        assert not torch.are_deterministic_algorithms_enabled()
        _, b_w = tinyclip.train_tiny_clip(tmp_path / "b", seed=7, min_top1=0.0, **SHORT)
    finally:
        torch.set_num_threads(2)
    a, b = torch.load(a_w), torch.load(b_w)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((tmp_path / "a" / "accuracy.json").read_text())["seed"] == 7
    _, c_w = tinyclip.train_tiny_clip(tmp_path / "c", seed=8, min_top1=0.0, **SHORT)
    c = torch.load(c_w)
    assert not all(torch.equal(a[k], c[k]) for k in a)  # the seed is really used


def test_a_model_below_the_bar_fails_loudly_and_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(tinyclip.TrainingRegressed, match="training regressed"):
        tinyclip.train_tiny_clip(tmp_path / "weak", seed=0, **SHORT)
    assert not (tmp_path / "weak" / "tinyclip.pt").exists()


def test_cache_key_covers_seed_and_script() -> None:
    assert tinyclip.cache_key(0) != tinyclip.cache_key(1)
    assert len(tinyclip.cache_key(0)) == 12
