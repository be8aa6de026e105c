"""`index --ray` on a real local Ray runtime: the same store as the local pipeline, the same
failures, resumable after kill -9, bytes shipped on request; `--ray` without Ray is one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from mcphotos.distributed.pipeline import SHIP_HINT, RayEmbedder, RayOptions
from mcphotos.indexing.workers import Failed
from mcphotos.library import Library
from mcphotos.store.database import Store
from tests.distributed.conftest import ROOT
from tests.support.badfiles import make_zoo
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo, shape_photo


def lib(home: Path) -> Library:
    return Library(home=home, engine_factory=FakeEncoder, preprocess=SPEC)


def snapshot(store_dir: Path) -> tuple[dict[str, str | None], dict[str, np.ndarray], dict[str, tuple]]:
    """path -> hash (or the failure), hash -> vector, hash -> the facts stored beside it."""
    with Store(store_dir, create=False) as st:
        files = {os.fsdecode(p): h if s == "ok" else f"failed: {e}"
                 for p, h, s, e in st.conn.execute("SELECT path, hash, status, error FROM files")}
        vectors = {h: st.vector_for_hash(h) for h in {h for h in files.values() if h and not h.startswith("failed")}}
        facts = {r[0]: r[1:] for r in st.conn.execute("SELECT hash, width, height, taken_at, phash, colors, detail "
                                                       "FROM images")}
    return files, vectors, facts  # type: ignore[return-value]


def index(home: Path, root: Path, ray: RayOptions | None) -> tuple[Any, list[tuple[str, str]]]:
    skips: list[tuple[str, str]] = []
    with lib(home) as library:
        report = library.index([str(root)], ray=ray, on_skip=lambda p, r: skips.append((p, r)))
        return report, sorted(skips)


def test_ray_builds_the_same_store_as_the_local_pipeline_and_fails_the_same_files(
        ray_runtime: Any, tmp_path: Path) -> None:
    root = tmp_path / "pics"
    for i in range(12):
        photo(root / f"p{i}.png", seed=i)
    photo(root / "copy-of-p0.png", seed=0)  # a copy: one embedding, two files
    zoo = make_zoo(root / "zoo")
    local, local_skips = index(tmp_path / "local", root, None)
    remote, remote_skips = index(tmp_path / "ray", root, RayOptions(batch_size=8))
    assert remote_skips == local_skips and any(not c.ok for c in zoo.values())
    assert (remote.new, remote.failed, remote.embedded) == (local.new, local.failed, local.embedded)
    lf, lv, lfacts = snapshot(tmp_path / "local" / "models" / "MobileCLIP2-S0@dfndr2b")
    rf, rv, rfacts = snapshot(tmp_path / "ray" / "models" / "MobileCLIP2-S0@dfndr2b")
    assert rf == lf and rfacts == lfacts
    for h, v in lv.items():  # the same engine on both sides: the same vectors
        assert np.allclose(rv[h], v, atol=1e-6), h
    # A second run embeds nothing and never starts a pipeline.
    again, _ = index(tmp_path / "ray", root, RayOptions())
    assert (again.new, again.embedded, again.unchanged) == (0, 0, local.new)


def test_ship_bytes_gives_the_same_store(ray_runtime: Any, tmp_path: Path) -> None:
    root = tmp_path / "pics"
    for i in range(6):
        photo(root / f"p{i}.jpg", seed=i, fmt="JPEG")
    (root / "truncated.jpg").write_bytes((root / "p0.jpg").read_bytes()[:300])
    _, local_skips = index(tmp_path / "local", root, None)
    _, shipped_skips = index(tmp_path / "ship", root, RayOptions(ship_bytes=True, batch_size=4))
    assert shipped_skips == local_skips and len(local_skips) == 1
    assert snapshot(tmp_path / "ship" / "models" / "MobileCLIP2-S0@dfndr2b")[0] == \
        snapshot(tmp_path / "local" / "models" / "MobileCLIP2-S0@dfndr2b")[0]


def test_a_path_the_cluster_cannot_read_is_retried_later_with_a_hint(tmp_path: Path) -> None:
    here = photo(tmp_path / "seen-here.png")
    facts = json.dumps({"reason": "No such file or directory", "retry": False, "unreachable": True})
    res = RayEmbedder._result(str(here), False, facts, np.zeros(4, dtype=np.float32))
    assert isinstance(res, Failed) and res.retry and SHIP_HINT in res.reason
    assert "No such file or directory" in res.reason
    gone = RayEmbedder._result(str(tmp_path / "gone.png"), False, facts, np.zeros(4, dtype=np.float32))
    assert isinstance(gone, Failed) and gone.reason == "No such file or directory" and not gone.retry


def test_kill_9_of_the_driver_then_a_rerun_embeds_only_what_is_missing(ray_runtime: Any, tmp_path: Path) -> None:
    root = tmp_path / "pics"
    n = 160
    for i in range(n):
        photo(root / f"p{i:03d}.png", seed=i, size=(64, 48))
    home = tmp_path / "home"
    store_dir = home / "models" / "MobileCLIP2-S0@dfndr2b"
    address = ray_runtime.get_runtime_context().gcs_address
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    child = subprocess.Popen([sys.executable, "-m", "tests.support.ray_index_driver", address, str(home), str(root)],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    committed = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and child.poll() is None:
        if (store_dir / "store.db").exists():
            try:
                with Store(store_dir, create=False) as st:
                    committed = st.image_count()
            except Exception:  # the child may be creating the schema right now
                committed = 0
            if committed > 0:
                break
        time.sleep(0.05)
    assert child.poll() is None, f"the driver finished before it could be killed: {child.communicate()}"
    child.send_signal(signal.SIGKILL)
    child.wait()
    with Store(store_dir, create=False) as st:
        kept = st.image_count()
        kept_files = st.conn.execute("SELECT COUNT(*) FROM files").fetchone()[0]
    assert 0 < kept < n and kept_files == kept
    rerun, skips = index(home, root, RayOptions(batch_size=16))
    assert skips == []
    assert (rerun.embedded, rerun.new, rerun.unchanged) == (n - kept, n - kept, kept)
    files, vectors, _ = snapshot(store_dir)
    assert len(files) == n and len(vectors) == n


def test_ray_without_ray_installed_is_one_line_and_exit_1(tmp_path: Path) -> None:
    photo(tmp_path / "pics" / "a.png")
    code = ("import sys; sys.modules['ray'] = None\n"  # what an install without the extra sees
            "from mcphotos.cli import main\n"
            f"sys.argv = ['mcphotos', 'index', {str(tmp_path / 'pics')!r}, '--ray']\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), MCPHOTOS_HOME=str(tmp_path / "home")), timeout=60)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "mcphotos[ray]" in lines[0], r.stderr
    assert not (tmp_path / "home" / "models").exists() or not any((tmp_path / "home" / "models").rglob("store.db"))


def test_ray_actors_on_the_prepared_onnx_runtime_stay_within_the_parity_bar_of_torch(
        ray_runtime: Any, tmp_path: Path, tiny_args: list[str], cli: Any) -> None:
    """The tiny trained CLIP: torch locally (which prepares the ONNX runtime), then the same photos through
    --ray, whose CPU actors open that runtime without torch: vectors within the runtime's parity bar."""
    root = tmp_path / "shapes"
    for k, (c, s) in enumerate([("red", "circle"), ("blue", "square"), ("green", "triangle"), ("red", "square")]):
        shape_photo(root / f"{c}-{s}.png", c, s, seed=50 + k)
    cli("index", root, "--store", tmp_path / "torch", *tiny_args)  # on torch: no runtime yet
    (store_a,) = (tmp_path / "torch" / "models").iterdir()
    assert (store_a / "runtime" / "manifest.json").exists()
    store_b = tmp_path / "ray" / "models" / store_a.name
    shutil.copytree(store_a / "runtime", store_b / "runtime")
    cli("index", root, "--store", tmp_path / "ray", *tiny_args, "--ray")
    _, va, _ = snapshot(store_a)
    files, vb, _ = snapshot(store_b)
    assert len(files) == 4 and set(va) == set(vb)
    for h in va:
        assert float(np.dot(va[h], vb[h])) >= 0.9999, h
