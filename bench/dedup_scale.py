"""dedup over 100,000 stored photos: time per tier, and whether planted duplicates are found.

    python bench/dedup_scale.py [--n 100000] [--dim 512] [--groups 2000]

Writes a store directly (no images, no model): N synthetic photos with 512-d vectors (scenes:
10 photos around each of N/10 random directions, cosine ~0.5 between them), random 64-bit
pHashes, smooth random colour layouts, and --groups planted near-duplicate groups of three
(pHash 0-10 bits apart, layout within a few grey levels, vector cosine ~0.99). The ANN cache
is built as `mcphotos index` would leave it (timed separately: it is indexing's cost), then
each tier of `dedup` runs over the whole store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcphotos.library import Library  # noqa: E402
from mcphotos.store.database import FileRecord, ImageRecord  # noqa: E402


def no_model() -> None:
    raise AssertionError("dedup must not load the model")


def synthesize(lib: Library, n: int, dim: int, groups: int, structureless: bool = False,
               seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    store = lib.store()
    store.update_model_identity(dim=dim)
    # Embeddings of real photos occupy a low-dimensional part of the space (which is what makes
    # HNSW fast on them); --structureless draws isotropic noise instead, HNSW's worst case.
    latent = dim if structureless else 24
    basis = rng.normal(size=(latent, dim)).astype(np.float32) / np.sqrt(latent)
    centers = rng.normal(size=(max(1, n // 10), latent)).astype(np.float32) @ basis
    base_layout = rng.uniform(30, 220, size=(n, 1, 3))
    ramp = np.linspace(-1, 1, 4)
    grad = rng.uniform(-40, 40, size=(n, 1, 3)) * np.repeat(ramp, 4)[None, :, None]
    layouts = np.clip(base_layout + grad + rng.normal(0, 12, size=(n, 16, 3)), 0, 255)
    phash = rng.integers(-(2**63), 2**63 - 1, size=n, dtype=np.int64)
    scene_spread = rng.normal(0, 0.5, size=(n, latent)).astype(np.float32) @ basis
    vectors = centers[np.arange(n) // 10] + scene_spread + rng.normal(0, 0.05, size=(n, dim)).astype(np.float32)
    planted: list[list[int]] = []
    stride = n // max(groups, 1)
    for g in range(groups):
        a = g * stride
        members = [a, a + 1, a + 2]
        for m in members[1:]:
            flip = np.uint64(sum(1 << int(b) for b in rng.choice(64, size=int(rng.integers(0, 11)), replace=False)))
            phash[m] = (phash[a:a + 1].view(np.uint64) ^ flip).view(np.int64)[0]
            layouts[m] = np.clip(layouts[a] + rng.normal(0, 2, size=(16, 3)), 0, 255)
            vectors[m] = vectors[a] + rng.normal(0, 0.1 / np.sqrt(dim / latent), size=dim)
        planted.append(members)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    colors = layouts.astype(np.uint8)
    for s in range(0, n, 10_000):
        e = min(n, s + 10_000)
        images = [ImageRecord(f"h{i:08d}", vectors[i], 4032 - (i % 3) * 100, 3024, None, int(phash[i]),
                              colors[i].tobytes(), 20.0) for i in range(s, e)]
        files = [FileRecord(f"/synthetic/{i // 1000:03d}/img{i:06d}.jpg", 2_000_000 + i, 1_700_000_000 * 10**9 + i,
                            f"h{i:08d}", "ok") for i in range(s, e)]
        with store.transaction():
            store.put_images(images)
            store.put_files(files)
    return planted


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--groups", type=int, default=2000)
    ap.add_argument("--structureless", action="store_true", help="isotropic random vectors (HNSW's worst case)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lib = Library(home=Path(tmp), model="bench-synthetic", engine_factory=no_model)
        t0 = time.perf_counter()
        planted = synthesize(lib, args.n, args.dim, args.groups, args.structureless)
        print(f"store: {args.n} photos, {args.dim}-d ({'structureless' if args.structureless else 'latent 24-d'}), "
              f"{len(planted)} planted groups of 3; "
              f"written in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        lib.refresh_ann()
        print(f"ANN cache built (indexing's job, not dedup's) in {time.perf_counter() - t0:.1f}s")
        lib.close()
        for tier in ("exact", "near", "similar"):
            lib = Library(home=Path(tmp), model="bench-synthetic", engine_factory=no_model)
            t0 = time.perf_counter()
            rep = lib.dedup(tier=tier, exists=lambda p: True)
            wall = time.perf_counter() - t0
            found = {frozenset(m.path for m in g.members) for g in rep.groups}
            want = {frozenset(f"/synthetic/{i // 1000:03d}/img{i:06d}.jpg" for i in g) for g in planted}
            recovered = sum(1 for w in want if any(w <= f for f in found))
            print(f"{tier:8s} {wall:6.1f}s  groups {len(rep.groups):5d}  planted groups recovered "
                  f"{recovered}/{len(want)}  candidates {rep.candidates}  embeddings used {rep.embeddings_used}")
            lib.close()


if __name__ == "__main__":
    main()
