"""The prepared ONNX Runtime: export with a parity gate, torch-free commands, engine choice, bad files.

The tiny trained CLIP (tests/support/tinyclip.py) runs through the real export and the real
ONNX Runtime sessions; rankings are compared between the two engines, so these hold for any
model the training script makes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mcphotos import Library
from mcphotos.models.engines import EngineKind, choose
from mcphotos.models.runtime import MANIFEST, Manifest, Parity, Speed, read_manifest
from tests.support.cli import assert_light, invoke
from tests.support.photos import shape_photo

COLORS = ["red", "green", "blue", "yellow"]
SHAPES = ["circle", "square", "triangle", "star"]
QUERIES = ["red circle", "a photo of a blue square", "green", "yellow star - star", "triangle + 2*red"]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    for ci, c in enumerate(COLORS):
        for si, s in enumerate(SHAPES):
            for k in range(2):
                shape_photo(root / f"{c} {s} {k}.png", c, s, seed=7000 + 1000 * ci + 100 * si + k)
    return root


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, shapes: Path, tiny_args: list[str]) -> Path:
    """A store of the 32 shapes whose first index (on torch) prepared the runtime by itself."""
    home = tmp_path_factory.mktemp("home")
    r = invoke("index", shapes, "--store", home, *tiny_args)
    listing = sorted(str(p.relative_to(home)) for p in home.rglob("*"))
    assert "preparing the fast runtime" in r.stderr, (r.stderr, listing)  # said unless -q
    return home


def runtime_of(home: Path) -> Path:
    (store,) = (home / "models").iterdir()
    return store / "runtime"


def ranking(home: Path, tiny_args: list[str], engine: str, *args: str) -> list[tuple[str, float]]:
    r = invoke("find", *args, "--json", "-k", "20", "--engine", engine, "--store", home, *tiny_args)
    return [(Path(row["path"]).name, row["score"]) for row in map(json.loads, r.stdout.splitlines())]


def test_first_index_prepares_a_runtime_that_passed_the_gate(prepared: Path) -> None:
    folder = runtime_of(prepared)
    m = read_manifest(folder)
    assert m is not None and m.parity.passed
    assert m.parity.prompts >= 512 and m.parity.images >= 32
    assert m.parity.text_min_cosine >= 0.99999 and m.parity.image_min_cosine >= 0.99999
    assert {p.name for p in folder.iterdir()} >= {MANIFEST, "image.onnx", "image.data", "text.onnx", "text.data",
                                                  "tokenizer.json"}
    # Made for this store's identity and the preprocessing its first index recorded.
    (store,) = (prepared / "models").iterdir()
    with sqlite3.connect(store / "store.db") as db:
        raw = db.execute("SELECT value FROM meta WHERE key = 'preprocess'").fetchone()[0]
    assert m.identity["preprocess"] == json.loads(raw)


def test_top20_identical_on_both_engines(prepared: Path, shapes: Path, tiny_args: list[str]) -> None:
    for q in QUERIES:
        a, b = ranking(prepared, tiny_args, "torch", q), ranking(prepared, tiny_args, "onnx", q)
        assert [n for n, _ in a] == [n for n, _ in b], q
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-4), q
    outside = shape_photo(shapes.parent / "query.png", "blue", "star", seed=99)
    a = ranking(prepared, tiny_args, "torch", "--image", str(outside))
    b = ranking(prepared, tiny_args, "onnx", "--image", str(outside))
    assert [n for n, _ in a] == [n for n, _ in b] and a[0][0].startswith("blue star")


def test_prepared_commands_never_import_torch(prepared: Path, shapes: Path, tiny_args: list[str],
                                              tmp_path: Path) -> None:
    store = ["--store", str(prepared), *tiny_args]
    outside = str(shape_photo(tmp_path / "outside.png", "red", "square", seed=5))
    labels = tmp_path / "new.txt"
    labels.write_text("\n".join(f"{c} {s}" for c in COLORS for s in SHAPES) + "\nsomething never asked\n")
    small = tmp_path / "small"
    shape_photo(small / "one.png", "green", "star", seed=77)
    assert_light(
        prepared,
        ["find", "words never asked before", *store],
        ["find", "--image", str(shapes / "red circle 0.png"), *store],
        ["find", "--image", outside, *store],
        ["find", "red + 2*@" + outside + " - circle", *store],
        ["embed", outside, *store],
        ["embed", "--text", "a brand new text", *store],
        ["score", outside, "a red square", "a caption never seen", *store],
        ["tag", "--labels", str(labels), *store],
        ["index", str(small), *store],
    )


def test_auto_picks_onnx_for_queries_and_small_jobs(prepared: Path, tiny_args: list[str]) -> None:
    cfg, weights = tiny_args[1], tiny_args[3]
    with Library(home=prepared, model=cfg, weights=weights) as lib:
        assert lib.engine().name == "onnx"
        assert lib.index_engine(1).name == "onnx"
        st = lib.status()
    assert st.runtime is not None and st.runtime_problem is None
    r = invoke("status", "--json", "--store", prepared, *tiny_args)
    data = json.loads(r.stdout)
    assert data["runtime"]["parity"]["passed"] and data["engines_used"]["query"]["engine"] == "onnx (cpu, fp32)"


def _manifest(onnx: float, torch: float, load: float = 3.0, open_s: float = 0.1) -> Manifest:
    return Manifest(identity={}, dim=512, logit_scale=100.0, context_length=77, opset=17, versions={}, files={},
                    parity=Parity(512, 32, 1.0, 1.0, True),
                    speed=Speed(onnx, torch, "bf16", "cpu", load, open_s))


def test_choice_by_measured_speed() -> None:
    fast_torch = _manifest(onnx=43, torch=64)  # AVX-512 BF16/AMX: torch bf16 ahead, after 3 s of start-up
    assert choose(fast_torch, 0, gpu=False) == EngineKind.ONNX
    assert choose(fast_torch, 47, gpu=False) == EngineKind.ONNX
    assert choose(fast_torch, 200, gpu=False) == EngineKind.ONNX  # 4.8 s vs 6.1 s
    assert choose(fast_torch, 5000, gpu=False) == EngineKind.TORCH
    slow_torch = _manifest(onnx=43, torch=20)  # a CPU without bf16: ONNX always
    assert choose(slow_torch, 100_000, gpu=False) == EngineKind.ONNX
    assert choose(slow_torch, 1000, gpu=True) == EngineKind.TORCH  # a GPU for bulk work
    assert choose(None, 0, gpu=False) == EngineKind.TORCH  # nothing prepared


def test_damaged_runtime_is_exported_again(prepared: Path, tiny_args: list[str], tmp_path: Path) -> None:
    home = tmp_path / "copy"
    shutil.copytree(prepared, home)
    folder = runtime_of(home)
    data = folder / "text.data"
    blob = bytearray(data.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # same size, one byte changed
    data.write_bytes(bytes(blob))
    query = "a red circle, asked for the first time"
    r = invoke("find", query, "--json", "--store", home, *tiny_args)
    assert "does not match its checksum" in r.stderr and "exporting it again" in r.stderr
    repaired = [Path(json.loads(x)["path"]).name for x in r.stdout.splitlines()]
    assert repaired == [n for n, _ in ranking(prepared, tiny_args, "torch", query)]
    m = read_manifest(folder)
    assert m is not None and m.files["text.data"]["sha256"]
    image = folder / "image.data"
    image.write_bytes(image.read_bytes()[:1000])  # truncated
    outside = shape_photo(tmp_path / "q.png", "green", "triangle", seed=3)
    r = invoke("find", "--image", outside, "--json", "-k", "2", "--store", home, *tiny_args)
    assert "is missing" in r.stderr or "does not match its checksum" in r.stderr
    assert all(Path(json.loads(x)["path"]).name.startswith("green triangle") for x in r.stdout.splitlines())
    r = invoke("find", "--image", outside, "--json", "-k", "2", "--store", home, *tiny_args)
    assert r.stderr == ""  # repaired: the next command runs on the new export, silently


def test_damaged_runtime_without_torch_is_one_line(prepared: Path, tiny_args: list[str], tmp_path: Path) -> None:
    home = tmp_path / "copy"
    shutil.copytree(prepared, home)
    (runtime_of(home) / "text.onnx").unlink()
    code = ("import sys; sys.modules['torch'] = None\n"  # torch cannot be imported in this process
            "from mcphotos.cli import main; sys.argv = ['mcphotos', *sys.argv[1:]]; main()\n")
    out = subprocess.run([sys.executable, "-c", code, "find", "a never seen query", "--store", str(home),
                          *tiny_args], capture_output=True, text=True)
    assert out.returncode == 1, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("mcphotos: error")]
    assert len(errors) == 1 and "torch cannot export it" in errors[0], out.stderr
    assert "Traceback" not in out.stderr


def test_runtime_of_another_identity_is_never_used(prepared: Path, tiny_args: list[str], tmp_path: Path) -> None:
    cfg, weights = tiny_args[1], tiny_args[3]
    other = tmp_path / "other.pt"
    shutil.copy(weights, other)
    with open(other, "ab") as f:  # same model, different weights file: another identity
        f.write(b"\0")
    lib = Library(home=tmp_path / "h", model=cfg, weights=str(other))
    try:
        target = lib.engines().folder
        target.parent.mkdir(parents=True)
        shutil.copytree(runtime_of(prepared), target)
        assert lib.engines().manifest() is None
        assert lib.status().runtime_problem == "not prepared"
    finally:
        lib.close()


def test_failing_gate_keeps_torch_and_says_so_once(tiny_args: list[str], tmp_path: Path, monkeypatch) -> None:
    import mcphotos.models.export as export

    monkeypatch.setattr(export, "MIN_COSINE", 1.5)  # no export can pass: the gate must refuse it
    pics = tmp_path / "pics"
    shape_photo(pics / "a.png", "red", "circle", seed=1)
    r = invoke("index", pics, "--store", tmp_path / "h", *tiny_args)
    refusals = [line for line in r.stderr.splitlines() if "stays on torch" in line]
    assert len(refusals) == 1 and "differs from torch fp32" in refusals[0], r.stderr
    shape_photo(pics / "b.png", "blue", "square", seed=2)
    r = invoke("index", pics, "--store", tmp_path / "h", *tiny_args)
    assert "stays on torch" not in r.stderr and "preparing" not in r.stderr
    r = invoke("find", "red circle", "--json", "-k", "1", "--store", tmp_path / "h", *tiny_args)
    assert Path(json.loads(r.stdout)["path"]).name == "a.png"
    st = json.loads(invoke("status", "--json", "--store", tmp_path / "h", *tiny_args).stdout)
    assert st["runtime"] is None and st["runtime_problem"].startswith("cannot be prepared")
    r = invoke("find", "a new query", "--engine", "onnx", "--store", tmp_path / "h", *tiny_args, code=1)
    assert r.stderr.count("\n") == 1 and "differs from torch fp32" in r.stderr


def test_models_prepare(tiny_args: list[str], tmp_path: Path) -> None:
    r = invoke("models", "prepare", "--json", "--store", tmp_path / "h", *tiny_args)
    report = json.loads(r.stdout)
    assert report["parity"]["passed"] and report["size_mb"] > 0
    assert Path(report["folder"], MANIFEST).is_file()
    r = invoke("models", "prepare", "--store", tmp_path / "h", *tiny_args)
    assert r.stdout.startswith("prepared ") and "parity with torch fp32" in r.stdout


def test_models_prepare_without_weights_is_the_index_error(tmp_path: Path) -> None:
    shape_photo(tmp_path / "pics" / "a.png", "red", "circle", seed=1)
    a = invoke("index", tmp_path / "pics", code=1)
    b = invoke("models", "prepare", code=1)
    assert a.stderr.strip().splitlines()[-1] == b.stderr.strip().splitlines()[-1]
    assert b.stderr.count("\n") == 1


def test_engine_option_is_validated(tiny_args: list[str]) -> None:
    r = invoke("find", "x", "--engine", "tensorflow", *tiny_args, code=2)
    assert "unknown engine 'tensorflow'" in r.output


def test_manifest_round_trip() -> None:
    m = _manifest(10, 20)
    from dataclasses import asdict

    assert Manifest.from_dict(json.loads(json.dumps(asdict(m)))) == m
    assert replace(m, dim=3).dim == 3


def test_a_process_that_never_needs_the_text_tower_exits_cleanly(prepared: Path, tiny_args: list[str],
                                                                  tmp_path: Path) -> None:
    """A find by an outside photo runs only the image tower and exits 0 (no session left opening)."""
    outside = shape_photo(tmp_path / "o.png", "yellow", "circle", seed=8)
    for args in (["find", "--image", str(outside)], ["find", "words for the exit test"]):
        out = subprocess.run([sys.executable, "-m", "mcphotos", *args, "--store", str(prepared), *tiny_args],
                             capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip(), out.stderr


def test_threads_asking_at_once_all_see_the_prepared_runtime(prepared: Path, tiny_args: list[str]) -> None:
    """The indexer asks for the preprocessing and the engine from two threads at once."""
    from concurrent.futures import ThreadPoolExecutor

    for _ in range(5):
        with Library(home=prepared, model=tiny_args[1], weights=tiny_args[3]) as lib:
            with ThreadPoolExecutor(8) as pool:
                seen = list(pool.map(lambda _: lib.engines().manifest(), range(8)))
            assert all(m is not None for m in seen)
            assert len({id(lib.engines()) for _ in range(3)}) == 1
