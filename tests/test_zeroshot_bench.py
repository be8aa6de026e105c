"""bench/zeroshot.py runs end to end (on the tiny CLIP, where its numbers mean something)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from mcphotos.library import Library
from tests.support.photos import shape_photo

BENCH = Path(__file__).parent.parent / "bench" / "zeroshot.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("zeroshot_bench", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_zeroshot_bench_reports_each_strategy(tmp_path: Path, tiny_clip: tuple[Path, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    classes = [("red", "circle"), ("blue", "star"), ("green", "square"), ("yellow", "triangle")]
    for i, (c, s) in enumerate(classes):
        for j in range(3):
            shape_photo(data / f"{c} {s}" / f"{j}.png", c, s, seed=700 + 10 * i + j)
    labels = tmp_path / "mine.txt"
    labels.write_text("red circle = a red circle\nblue star = a blue star\n")
    cfg, weights = tiny_clip
    lib = Library(home=tmp_path / "home", model=str(cfg), weights=str(weights))
    results = load_bench().evaluate(["--data", str(data), "--labels", str(labels)], lib=lib)
    out = capsys.readouterr().out
    print(out)
    assert set(results) == {"name", "photo", "ensemble", "labels"}
    assert all(0.0 <= v <= 1.0 for r in results.values() for k, v in r.items() if k != "multi_wrong_per_photo")
    assert "top-1" in out and "multi-label" in out and "12 photos, 4 classes" in out
    # Four distinct colours: the tiny CLIP gets them from the bare class name.
    assert results["name"]["top1"] >= 0.75
