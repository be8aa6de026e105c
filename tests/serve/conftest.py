"""Stores for the serve tests.

- ``shapes_store`` (module scope, read only): the tiny trained CLIP over coloured shapes, with
  the prepared ONNX runtime the first index makes, so searches mean something and run as
  ``mcphotos serve`` runs them (no torch). One exact copy, one smaller near copy, a large photo
  (for the 1600-px view) and a photo that is broken on disk after indexing (a grey tile).
- ``dup_library`` (per test, its files move): scenes with copies, on the fake encoder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mcphotos.cli import app
from mcphotos.library import Library
from tests.support.cli import runner
from tests.support.photos import shape_photo
from tests.support.scenes import scene

COLORS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle", "star"]


@pytest.fixture(scope="module")
def shapes_store(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("home")
    root = tmp_path_factory.mktemp("shapes")
    for ci, c in enumerate(COLORS):
        for si, s in enumerate(SHAPES):
            for k in range(2):
                sub = "jpegs" if (ci + si + k) % 4 == 0 else "pngs"
                fmt = "JPEG" if sub == "jpegs" else "PNG"
                shape_photo(root / sub / f"{c} {s} {k}.{fmt.lower().replace('jpeg', 'jpg')}", c, s,
                            seed=7000 + 1000 * ci + 100 * si + k, fmt=fmt)
    (root / "copies").mkdir()
    shutil.copy(root / "pngs" / "red circle 1.png", root / "copies" / "red circle 1 copy.png")
    scene(3, size=(2400, 1200)).save(root / "large.jpg", quality=90)
    scene(4).save(root / "broken.jpg", quality=90)
    r = runner.invoke(app, ["index", str(root), "-q", "--store", str(home), *tiny_args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    (root / "broken.jpg").write_bytes((root / "broken.jpg").read_bytes()[:200])  # truncated after indexing
    return home, root


@pytest.fixture
def shapes_library(shapes_store: tuple[Path, Path], tiny_clip: tuple[Path, Path]) -> Library:
    home, _ = shapes_store
    cfg, weights = tiny_clip
    with Library(home=home, model=str(cfg), weights=str(weights)) as lib:
        yield lib


@pytest.fixture
def dup_library(tmp_path: Path) -> tuple[Library, Path]:
    """pics/ with a scene, its exact copy, a smaller near copy, and an unrelated scene; the fake encoder."""
    from tests.dedup.test_dedup import index, make_lib

    pics = tmp_path / "pics"
    (pics / "a").mkdir(parents=True)
    (pics / "b").mkdir()
    scene(1).save(pics / "a" / "one.png")
    shutil.copy2(pics / "a" / "one.png", pics / "b" / "one-copy.png")
    scene(1).resize((160, 120)).save(pics / "b" / "one-small.jpg", quality=85)
    scene(2).save(pics / "a" / "two.png")
    home = tmp_path / "home"
    index(home, pics)
    with make_lib(home) as lib:
        yield lib, pics
