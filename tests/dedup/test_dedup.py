"""dedup finds what it should: exact copies, near-identical versions, and nothing else.

The near set is a small version of bench/dedup_quality.py's: photo-like scenes, each with
re-encoded, resized, converted, HEIC, cropped, EXIF-rotated and re-coloured variants.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mcphotos.cli import app
from mcphotos.dedup import perceptual as pc
from mcphotos.indexing.indexer import IndexOptions
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.library import Library
from tests.support.fakes import FakeEncoder
from tests.support.scenes import scene, write_near_set

# A 64-px model input: the pHash is taken on this resized image, as with a real model's 256 px.
SPEC64 = PreprocessSpec(size=(64, 64), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear")
SEEDS = list(range(8))
from tests.support.cli import runner  # noqa: E402


class CollapsedEncoder(FakeEncoder):
    """Like random weights: every photo lands in nearly the same direction."""

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        base = np.ones((len(pixels), self.dim), dtype=np.float32)
        base += super().encode_images(pixels) * 0.01
        return base / np.linalg.norm(base, axis=1, keepdims=True)


def make_lib(home: Path, encoder: type = FakeEncoder) -> Library:
    return Library(home=home, model="fake", engine_factory=encoder, preprocess=SPEC64)


def index(home: Path, *roots: Path, encoder: type = FakeEncoder) -> None:
    with make_lib(home, encoder) as lib:
        lib.index([str(r) for r in roots], options=IndexOptions(workers=2))


def groups_as_sets(report) -> list[set[str]]:
    return [{m.path for m in g.members} for g in report.groups]


@pytest.fixture(scope="module")
def near_set(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[int, list[Path]]]:
    root = tmp_path_factory.mktemp("near")
    truth = write_near_set(root / "pics", SEEDS)
    shutil.copy(truth[0][0], root / "pics" / "copy-of-s0.png")  # an exact copy too
    truth[0].append(root / "pics" / "copy-of-s0.png")
    return root, truth


@pytest.fixture(scope="module")
def collapsed_home(near_set) -> Path:
    root, _ = near_set
    home = root / "home-collapsed"
    index(home, root / "pics", encoder=CollapsedEncoder)
    return home


def test_near_tier_finds_every_variant_and_merges_no_scenes(near_set, collapsed_home) -> None:
    _root, truth = near_set
    with make_lib(collapsed_home) as lib:
        report = lib.dedup()
    expected = sorted(sorted(str(p) for p in files) for files in truth.values())
    assert sorted(sorted(s) for s in groups_as_sets(report)) == expected
    assert report.files == sum(len(f) for f in truth.values())
    # random-weight-like embeddings are recognised and not used
    assert report.embeddings_used is False
    assert report.candidates["pHash bands"] > 0 and report.candidates["colour-layout kNN"] > 0


def test_members_carry_tier_scores_and_the_keeper_is_the_largest(near_set, collapsed_home) -> None:
    root, truth = near_set
    with make_lib(collapsed_home) as lib:
        report = lib.dedup()
    g0 = next(g for g in report.groups if str(truth[0][0]) in {m.path for m in g.members})
    pixels = {m.path: m.width * m.height for m in g0.members}
    assert pixels[g0.keeper.path] == max(pixels.values())
    assert "most pixels" in g0.reason or "largest file" in g0.reason or "identical size" in g0.reason
    by_name = {m.path: m for m in g0.members}
    copy = by_name[str(root / "pics" / "copy-of-s0.png")]
    original = by_name[str(truth[0][0])]
    # the copy and the original are the same bytes: to the keeper they are one thing
    assert copy.hash == original.hash and (copy.tier == original.tier or "keeper" in {copy.tier, original.tier})
    assert all(m.tier == "exact" for m in g0.duplicates if m.hash == g0.keeper.hash)
    half = by_name[str(root / "pics" / "half" / "s0.jpg")]
    assert half.tier == "near" and half.role == "duplicate" and 0 <= half.hamming <= 14
    assert g0.tier == "near"


def test_exact_tier_groups_identical_bytes_only(near_set, collapsed_home) -> None:
    root, truth = near_set
    with make_lib(collapsed_home) as lib:
        report = lib.dedup(tier="exact")
    assert groups_as_sets(report) == [{str(truth[0][0]), str(root / "pics" / "copy-of-s0.png")}]
    assert report.groups[0].tier == "exact"


def test_a_strict_threshold_splits_what_the_default_joins(near_set, collapsed_home) -> None:
    with make_lib(collapsed_home) as lib:
        default = lib.dedup()
        strict = lib.dedup(threshold=0)
    assert sum(len(g.members) for g in strict.groups) < sum(len(g.members) for g in default.groups)


def test_a_dark_mode_variant_is_not_near_but_a_mild_recolour_is(tmp_path: Path) -> None:
    img = scene(3)
    img.save(tmp_path / "light.png")
    arr = np.asarray(img).astype(np.float32)
    # darken the left half strongly: same shapes (close pHash), different picture
    arr[:, : arr.shape[1] // 2] *= 0.35
    from PIL import Image

    Image.fromarray(arr.astype(np.uint8)).save(tmp_path / "dark.png")
    Image.fromarray(np.clip(arr * 0 + np.asarray(img) * 1.05, 0, 255).astype(np.uint8)).save(tmp_path / "mild.png")
    index(tmp_path / "home", tmp_path)
    with make_lib(tmp_path / "home") as lib:
        report = lib.dedup()
    assert groups_as_sets(report) == [{str(tmp_path / "light.png"), str(tmp_path / "mild.png")}]


def test_signatures_are_backfilled_for_stores_indexed_before(tmp_path: Path) -> None:
    truth = write_near_set(tmp_path / "pics", [1, 2], names=["jpeg-q60", "half"])
    home = tmp_path / "home"
    index(home, tmp_path / "pics")
    db = next(home.rglob("store.db"))
    with sqlite3.connect(db) as c:
        c.execute("UPDATE images SET phash = NULL, colors = NULL, detail = NULL")
    with make_lib(home) as lib:
        report = lib.dedup()
    assert report.backfilled == 6
    assert sorted(sorted(s) for s in groups_as_sets(report)) == sorted(sorted(map(str, f)) for f in truth.values())
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM images WHERE phash IS NULL OR colors IS NULL").fetchone()[0] == 0
    with make_lib(home) as lib:
        assert lib.dedup().backfilled == 0


def test_band_buckets_find_every_pair_within_seven_bits_without_all_pairs() -> None:
    rng = np.random.default_rng(0)
    n = 20_000
    h = rng.integers(0, 2**63, size=n, dtype=np.int64) * np.where(rng.random(n) < 0.5, -1, 1)
    planted = []
    for k in range(200):
        i, j = 2 * k, 2 * k + 1
        bits = rng.choice(64, size=k % 8, replace=False)  # 0..7 bits apart
        flip = np.uint64(sum(1 << int(b) for b in bits))
        h[j] = (pc.as_unsigned(h[i:i + 1]) ^ flip).view(np.int64)[0]
        planted.append((i, j))
    i, j = pc.band_pairs(h, max_bits=7)
    found = set(zip(i.tolist(), j.tolist(), strict=True))
    assert set(planted) <= found
    assert len(found) < 1000  # not n²/2 = 2e8


def test_keep_policies(tmp_path: Path) -> None:
    pics = tmp_path / "pics"
    img = scene(5)
    (pics / "deep" / "er").mkdir(parents=True)
    img.save(pics / "deep" / "er" / "big.png")
    img.resize((160, 120)).save(pics / "small.png")
    os.utime(pics / "small.png", (1_000_000_000, 1_000_000_000))  # the oldest file
    index(tmp_path / "home", pics)
    with make_lib(tmp_path / "home") as lib:
        largest = lib.dedup(keep="largest").groups[0]
        oldest = lib.dedup(keep="oldest").groups[0]
        newest = lib.dedup(keep="newest").groups[0]
        shortest = lib.dedup(keep="shortest-path").groups[0]
    assert largest.keeper.path.endswith("big.png") and "most pixels: 320x240" in largest.reason
    assert oldest.keeper.path.endswith("small.png") and "modified 2001-09-09" in oldest.reason
    assert newest.keeper.path.endswith("big.png")
    assert shortest.keeper.path.endswith("small.png") and "shortest path" in shortest.reason


def test_cli_formats(near_set, collapsed_home) -> None:
    root, truth = near_set
    args = ["dedup", "--store", str(collapsed_home), "--model", "fake"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert table.stdout.count("# group") == len(SEEDS) and "keep" in table.stdout
    assert "8 groups" in table.stderr
    js = runner.invoke(app, [*args, "--json"])
    lines = [json.loads(ln) for ln in js.stdout.splitlines()]
    assert len(lines) == len(SEEDS)
    assert all(ln["members"][0]["path"] == ln["keeper"] and ln["members"][0]["role"] == "keeper" for ln in lines)
    assert {"tier", "hamming", "cosine", "color", "size", "width"} <= set(lines[0]["members"][1])
    paths = runner.invoke(app, [*args, "--paths"]).stdout.splitlines()
    keepers = {ln["keeper"] for ln in lines}
    assert len(paths) == sum(len(f) for f in truth.values()) - len(SEEDS) and not keepers & set(paths)
    nul = runner.invoke(app, [*args, "-0"]).stdout
    assert sorted(nul.rstrip("\0").split("\0")) == sorted(paths)
    only = runner.invoke(app, [*args, "--paths", str(root / "pics" / "half"), str(root / "pics" / "originals")])
    assert len(only.stdout.splitlines()) == len(SEEDS)  # one group per scene: original + half
    bad = runner.invoke(app, [*args, "--tier", "exact", "--threshold", "3"])
    assert bad.exit_code == 2


def test_dedup_does_not_import_torch(near_set, collapsed_home) -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from mcphotos.cli import app\n"
        f"r = CliRunner().invoke(app, ['dedup', '--store', {str(collapsed_home)!r}, '--model', 'fake', '--json'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert r.stdout.count('group') >= 8, r.stdout\n"
        "bad = [m for m in ('torch', 'open_clip', 'timm') if m in sys.modules]\n"
        "print('HEAVY' if bad else 'LIGHT', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parent.parent)
    assert out.stdout.startswith("LIGHT"), out.stdout + out.stderr


def test_similar_on_meaningless_embeddings_warns(collapsed_home) -> None:
    r = runner.invoke(app, ["dedup", "--store", str(collapsed_home), "--model", "fake", "--tier", "similar"])
    assert r.exit_code == 0 and "similar groups mean nothing" in r.stderr
