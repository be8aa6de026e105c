"""API search latency of `mcphotos serve` over 10,000 photos, a NEW text query every time.

    python bench/serve_search.py [--n 10000] [--queries 200] [--weights FILE] [--work DIR]

The store holds N clustered synthetic 512-d vectors (written with the Store API, one empty file
per vector, as bench/find_latency.py does) with its ANN cache built as `index` builds it, for
MobileCLIP2-S0 with random weights (or --weights) and its prepared ONNX runtime
(`mcphotos models prepare`): the text tower's compute is the real model's, only the values
differ. Then a real `mcphotos serve --no-browser --port 0` process is started and, over one
keep-alive HTTP connection with the Bearer token, each query is a text never asked before
(so it is encoded by the ONNX text tower; nothing comes from the text cache):

- `GET /api/search?q=…&k=60`, timed at the client (wall clock, request to parsed JSON);
- the same queries again (now cached: no model), for comparison;
- a filtered new query (`ext=jpg`, `after=2019`).

Also prints the server's own `elapsed_ms` (the part inside the route). Needs torch and open_clip
once, to write the random checkpoint and export the runtime; the server itself never loads torch.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
from startup import random_s0  # bench/startup.py

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("zebra", "violin", "lighthouse", "tractor", "cactus", "harbour", "glacier", "pagoda", "saxophone",
         "bonfire", "canyon", "meerkat", "tram", "orchid", "kayak", "windmill", "pelican", "waterfall",
         "sunset", "beach", "mountain", "forest", "city", "street", "night", "snow", "dog", "cat", "child",
         "market", "bridge", "castle", "river", "garden", "train", "boat", "airport", "desert", "island",
         "temple", "festival", "kitchen", "concert", "stadium")


def new_queries(n: int, seed: int) -> list[str]:
    """``n`` distinct three-word queries (none repeats within a run; a seed per run keeps runs apart)."""
    rng = random.Random(seed)
    combos = list(itertools.permutations(WORDS, 3))
    rng.shuffle(combos)
    return [" ".join(c) for c in combos[:n]]


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--work", type=Path, help="keep the checkpoint, runtime and store here, and reuse them next time")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights, env = prepared_store(args.work or Path(tmp), args.n, args.weights)
        proc = subprocess.Popen([sys.executable, "-m", "mcphotos", "serve", "--no-browser", "--port", "0",
                                 "--weights", str(weights)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().strip()
            parts = urlsplit(url)
            token = url.split("token=", 1)[1]
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            headers = {"Authorization": f"Bearer {token}"}
            queries = new_queries(args.queries, args.seed)

            def ask(params: dict) -> tuple[float, float, int]:
                t0 = time.perf_counter()
                conn.request("GET", "/api/search?" + urlencode(params), headers=headers)
                r = conn.getresponse()
                body = json.loads(r.read())
                wall = (time.perf_counter() - t0) * 1e3
                assert r.status == 200, body
                return wall, float(body["elapsed_ms"]), len(body["hits"])

            ask({"q": "warm-up query of the tower", "k": 60})  # the first request also waits for the tower to open
            rows = {
                "new text query, k=60": [ask({"q": q, "k": 60}) for q in queries],
                "the same queries again (cached text)": [ask({"q": q, "k": 60}) for q in queries],
                "new query + ext=jpg + after=2019": [ask({"q": q + " again", "k": 60, "ext": "jpg", "after": "2019"})
                                                     for q in queries[: max(20, args.queries // 4)]],
            }
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        print(f"\n{args.n} photos, MobileCLIP2-S0 ({'--weights' if args.weights else 'random weights'}), prepared "
              f"ONNX runtime; {os.cpu_count()} cores; client wall clock over one keep-alive connection\n")
        print("| request | n | p50 | p90 | p99 | server p50 |")
        print("|---|---:|---:|---:|---:|---:|")
        for name, samples in rows.items():
            walls, inside = [s[0] for s in samples], [s[1] for s in samples]
            print(f"| {name} | {len(samples)} | {statistics.median(walls):.1f} ms | {percentile(walls, 90):.1f} ms | "
                  f"{percentile(walls, 99):.1f} ms | {statistics.median(inside):.1f} ms |")


def prepared_store(work: Path, n: int, weights: Path | None) -> tuple[Path, dict[str, str]]:
    """(checkpoint, environment) of an N-photo store with the prepared runtime in ``work`` (made if missing)."""
    work.mkdir(parents=True, exist_ok=True)
    if weights is None:
        weights = work / "s0.pt"
        if not weights.exists():
            random_s0(weights)
    home = work / f"home-{n}"
    env = {**os.environ, "MCPHOTOS_HOME": str(home), "XDG_CACHE_HOME": str(work / "cache")}
    if not (home / ".complete").exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mcphotos", "models", "prepare", "--weights", str(weights)],
                       env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        print(f"prepared the ONNX runtime in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        from mcphotos.library import Library

        build_store(Library(home=home, weights=str(weights)), n)
        (home / ".complete").touch()
    return weights, env


def build_store(lib: object, n: int, dim: int = 512) -> None:
    """N clustered unit vectors in 100 folders, a fifth of them .png, half with a capture date (2010-2025)."""
    from mcphotos.store.database import FileRecord, ImageRecord

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(max(n // 100, 1), dim)).astype(np.float32)
    vectors = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    years = rng.integers(2010, 2026, n)
    store = lib.store()  # type: ignore[attr-defined]
    root = Path(lib.home) / "photos"  # type: ignore[attr-defined]
    files, images = [], []
    for i in range(n):
        folder = root / f"dir{i % 100:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"img{i:06d}.{'png' if i % 5 == 0 else 'jpg'}"
        path.touch()
        h = f"{i:040x}"
        files.append(FileRecord(str(path), 0, path.stat().st_mtime_ns, h, "ok"))
        images.append(ImageRecord(h, vectors[i], 4000, 3000, f"{years[i]}-06-01T12:00:00" if i % 2 else None))
    with store.transaction():
        store.put_images(images)
        store.put_files(files)
    store.update_model_identity(dim=dim)
    lib.refresh_ann()  # type: ignore[attr-defined]
    lib.close()  # type: ignore[attr-defined]
    print(f"built the {n}-photo store and its ANN index in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
