"""Tests of meaning with the tiny CLIP trained on coloured shapes (random weights mean nothing)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcphotos.cli import app
from tests.support.cli import runner
from tests.support.photos import shape_photo

COLORS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle", "star"]


@pytest.fixture(scope="module")
def shapes_library(tmp_path_factory: pytest.TempPathFactory, tiny_args: list[str]) -> tuple[Path, Path]:
    home = tmp_path_factory.mktemp("home")
    root = tmp_path_factory.mktemp("shapes")
    for ci, c in enumerate(COLORS):
        for si, s in enumerate(SHAPES):
            for k in range(3):
                shape_photo(root / c / f"{c} {s} {k}.png", c, s, seed=1000 * ci + 100 * si + k)
    old = os.environ.get("MCPHOTOS_HOME")
    os.environ["MCPHOTOS_HOME"] = str(home)
    try:
        r = runner.invoke(app, ["index", str(root), "-q", *tiny_args], catch_exceptions=False)
        assert r.exit_code == 0, r.output
    finally:
        if old is None:
            os.environ.pop("MCPHOTOS_HOME", None)
        else:
            os.environ["MCPHOTOS_HOME"] = old
    return home, root


def find(home: Path, tiny_args: list[str], *args: str) -> list[dict]:
    r = runner.invoke(app, ["find", *args, "--json", "--store", str(home), *tiny_args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    return [json.loads(line) for line in r.stdout.splitlines()]


@pytest.mark.parametrize("color,shape", [("red", "circle"), ("blue", "star"), ("green", "square"),
                                         ("yellow", "triangle")])
def test_find_ranks_the_described_shape_first(shapes_library, tiny_args, color: str, shape: str) -> None:
    home, _ = shapes_library
    hits = find(home, tiny_args, f"a {color} {shape}", "-k", "3")
    names = [Path(h["path"]).name for h in hits]
    assert all(n.startswith(f"{color} {shape}") for n in names), names
    scores = [h["score"] for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_find_in_dir_and_min_score(shapes_library, tiny_args) -> None:
    home, root = shapes_library
    hits = find(home, tiny_args, "a red circle", "-k", "50", "--in", str(root / "blue"))
    assert hits and all(Path(h["path"]).parent == root / "blue" for h in hits)
    best = find(home, tiny_args, "a red circle", "-k", "1")[0]["score"]
    some = find(home, tiny_args, "a red circle", "-k", "50", "--min-score", str(best - 1e-6))
    assert len(some) >= 1 and all(h["score"] >= best - 1e-6 for h in some)


def test_colour_words_find_every_photo_of_that_colour(shapes_library, tiny_args) -> None:
    home, _ = shapes_library
    hits = find(home, tiny_args, "a yellow square", "-k", "12")
    yellow = sum(Path(h["path"]).name.startswith("yellow") for h in hits)
    print(f"'a yellow square': {yellow}/12 of the top 12 are yellow")
    assert yellow >= 8  # chance is 3


def test_stdin_paths_and_awkward_names_round_trip(tmp_path: Path, tiny_args: list[str]) -> None:
    """index --files0-from - and index - (NUL and newline lists), then --json and -0 give back each name's bytes."""
    root = tmp_path / "odd"
    names = [b"plain.png", b"with space.png", b"new\nline.png", b"caf\xe9-latin1.png"]
    paths = []
    for i, raw in enumerate(names):
        p = Path(os.fsdecode(bytes(root) + b"/" + raw))
        shape_photo(p, COLORS[i % 4], SHAPES[i % 4], seed=i)
        paths.append(p)
    listing = b"\0".join(os.fsencode(p) for p in paths) + b"\0"
    r = runner.invoke(app, ["index", "--files0-from", "-", "--json", "-q", *tiny_args], input=listing,
                      catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["new"] == 4
    plain = b"\n".join(os.fsencode(p) for p in paths[:2]) + b"\n"
    r = runner.invoke(app, ["index", "-", "--json", "-q", *tiny_args], input=plain, catch_exceptions=False)
    assert json.loads(r.stdout)["unchanged"] == 2
    r = runner.invoke(app, ["find", "a shape", "--json", "-k", "10", *tiny_args], catch_exceptions=False)
    got = sorted(os.fsencode(json.loads(line)["path"]) for line in r.stdout.splitlines())
    assert got == sorted(os.fsencode(p) for p in paths)
    r = runner.invoke(app, ["find", "a shape", "-0", "-k", "10", *tiny_args], catch_exceptions=False)
    assert sorted(x for x in r.stdout_bytes.split(b"\0") if x) == sorted(os.fsencode(p) for p in paths)
    r = runner.invoke(app, ["find", "a shape", "-k", "10", *tiny_args], catch_exceptions=False)
    assert "new\\nline.png" in r.stdout and "caf\\xe9" in r.stdout  # the table stays one line per photo
