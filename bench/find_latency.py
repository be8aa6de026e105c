"""find latency and recall on a store of synthetic vectors (no model, no images decoded).

Builds a store of N clustered, L2-normalized D-d vectors (written with the Store API, one
empty file per vector so the existence check runs as in real use), builds the ANN cache as
`index` would, then times `Library.search_vector` in-process for a precomputed query vector:

- plain: top-20 over everything (the ANN path);
- filtered, narrow: ``--in`` one of 100 folders (1 % of the store: answered exactly);
- filtered, broad: ``--ext jpg --after 2019`` (~35 %: the ANN path with over-fetch and filtering);

and recall@20 of each against exact (brute-force) search over the same candidates.

    python bench/find_latency.py                 # 100,000 x 512, 200 queries
    python bench/find_latency.py --n 20000 --queries 50
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcphotos import Library
from mcphotos.search.nearest import SearchFilter, candidate_ids
from mcphotos.search.query import parse_date, parse_exts
from mcphotos.store.database import FileRecord, ImageRecord


def synthetic(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors: photo libraries are bursts of similar shots, not uniform noise."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(max(n // 100, 1), dim)).astype(np.float32)
    v = centers[rng.integers(0, len(centers), n)] + 0.6 * rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def build(home: Path, vectors: np.ndarray) -> Library:
    lib = Library(home=home)
    store = lib.store()
    root = home / "photos"
    n = len(vectors)
    years = np.random.default_rng(1).integers(2010, 2026, n)
    for start in range(0, n, 10_000):
        files, images = [], []
        for i in range(start, min(start + 10_000, n)):
            folder = root / f"dir{i % 100:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"img{i:06d}.{'png' if i % 5 == 0 else 'jpg'}"
            path.touch()
            mtime = int(time.mktime((int(years[i]), 6, 1, 12, 0, 0, 0, 0, -1)) * 1e9)
            h = f"{i:040x}"
            taken = f"{years[i]}-06-01T12:00:00" if i % 2 else None  # half have EXIF dates
            files.append(FileRecord(str(path), 0, mtime, h, "ok"))
            images.append(ImageRecord(h, vectors[i], 4000, 3000, taken, None))
        with store.transaction():
            store.put_images(images)
            store.put_files(files)
    store.update_model_identity(dim=int(vectors.shape[1]))
    t = time.perf_counter()
    lib.refresh_ann()
    print(f"built ANN index over {n} vectors in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    return lib


def exact_top(vectors: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> set[int]:
    scores = vectors[ids - 1] @ q  # image ids are 1-based insertion order
    top = np.argpartition(-scores, min(k, len(ids) - 1))[:k]
    return set(int(i) for i in ids[top])


def run(lib: Library, vectors: np.ndarray, queries: np.ndarray, name: str, filters: SearchFilter | None,
        k: int = 20) -> dict:
    store = lib.store()
    cand = np.array(candidate_ids(store, filters) if filters else range(1, len(vectors) + 1), dtype=np.int64)
    id_of_hash = {}
    lat, recalls = [], []
    lib.search_vector(queries[0], k, filters=filters)  # warm: loads the ANN index from disk once
    for q in queries:
        t = time.perf_counter()
        hits = lib.search_vector(q, k, filters=filters)
        lat.append((time.perf_counter() - t) * 1000)
        got = {id_of_hash.setdefault(h.hash, int(h.hash, 16) + 1) for h in hits}
        recalls.append(len(got & exact_top(vectors, cand, q, k)) / k)
    lat.sort()
    out = {"query": name, "candidates": len(cand), "p50_ms": statistics.median(lat),
           "p99_ms": lat[min(len(lat) - 1, int(round(0.99 * (len(lat) - 1))))], "recall@20": float(np.mean(recalls))}
    print(f"{name:<40} candidates {len(cand):>7}  p50 {out['p50_ms']:7.2f} ms  p99 {out['p99_ms']:7.2f} ms  "
          f"recall@20 {out['recall@20']:.4f}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--home", help="keep the store here (default: a temporary directory)")
    args = ap.parse_args()
    vectors = synthetic(args.n, args.dim)
    rng = np.random.default_rng(2)
    # Queries near the data (like a text query near some photos), but never equal to a stored vector.
    queries = vectors[rng.integers(0, args.n, args.queries)] + 0.8 * rng.normal(size=(args.queries, args.dim))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    with tempfile.TemporaryDirectory(dir=args.home) as tmp:
        home = Path(tmp)
        t = time.perf_counter()
        lib = build(home, vectors)
        print(f"store of {args.n} x {args.dim} written and indexed in {time.perf_counter() - t:.1f}s "
              f"(cpus: {os.cpu_count()})", file=sys.stderr)
        run(lib, vectors, queries, "plain", None)
        run(lib, vectors, queries, "filtered: --in one folder (1%)",
            SearchFilter(in_dirs=(str(home / "photos" / "dir07"),)))
        run(lib, vectors, queries, "filtered: --ext jpg --after 2019 (~35%)",
            SearchFilter(exts=parse_exts(["jpg"]), after=parse_date("2019")))
        lib.close()


if __name__ == "__main__":
    main()
