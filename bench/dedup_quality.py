"""Precision and recall of `dedup --tier near` on real photos and their near-duplicate variants.

    python bench/dedup_quality.py [--photos ../shared/photos] [--max-side 2048] [--threshold N]

For every photo in --photos: the photo itself plus nine variants (tests/support/scenes.py VARIANTS):
JPEG q60, 50 % resize, PNG, WebP, HEIC (pillow-heif), 5 % crop (centred, and all off one
corner), EXIF rotation (pixels stored sideways + orientation 6) and a mild colour change.
Photos larger than --max-side are first scaled down (JPEG q95), so the run takes minutes, not
an hour; --max-side 0 uses them as they are.

The set is indexed with a stand-in engine whose embeddings carry no meaning (every photo in
nearly one direction, like random weights) and MobileCLIP2-S0's preprocessing, so `near` must
work from the perceptual signatures alone. Pairs are scored against the truth "same source
photo"; distinct photos include hard negatives (light/dark editions of one wallpaper, portrait
and landscape crops of another).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PIL import Image  # noqa: E402

from mcphotos.indexing.imaging import EXTENSIONS, PreprocessSpec, load_upright  # noqa: E402
from mcphotos.indexing.indexer import IndexOptions  # noqa: E402
from mcphotos.library import Library  # noqa: E402
from tests.support.scenes import VARIANTS, variants  # noqa: E402

S0_SPEC = PreprocessSpec(size=(256, 256), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear")


class MeaninglessEncoder:
    """Every photo maps to about the same unit vector, as with random weights."""

    dim = 64
    preprocess = S0_SPEC

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(int(pixels.sum()) % (2**32))
        v = np.ones((len(pixels), self.dim), dtype=np.float32) + rng.normal(0, 0.01, (len(pixels), self.dim))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def build(photos: Path, out: Path, max_side: int) -> dict[str, str]:
    """Write the set; returns file path -> source photo name."""
    truth: dict[str, str] = {}
    sources = sorted(p for p in photos.iterdir() if p.suffix.lower() in EXTENSIONS)
    for n, src in enumerate(sources, 1):
        img, *_ = load_upright(src.read_bytes())
        original = out / "original" / src.name
        original.parent.mkdir(parents=True, exist_ok=True)
        if max_side and max(img.size) > max_side:
            img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            original = original.with_suffix(".jpg")
            img.save(original, quality=95)
        else:
            shutil.copy(src, original)
        truth[str(original)] = src.name
        for name, (ext, data) in variants(img).items():
            p = out / name / (src.stem + ext)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
            truth[str(p)] = src.name
        if sys.stderr.isatty():
            print(f"\r  built {n}/{len(sources)} photos", end="", file=sys.stderr, flush=True)
    return truth


def score(groups: list[set[str]], truth: dict[str, str]) -> tuple[float, float, list, Counter]:
    label = {p: i for i, g in enumerate(groups) for p in g}
    tp = fp = fn = 0
    merged: Counter = Counter()
    for a, b in itertools.combinations(truth, 2):
        same = truth[a] == truth[b]
        together = a in label and label.get(a) == label.get(b)
        tp += same and together
        fp += together and not same
        fn += same and not together
        if together and not same:
            merged[tuple(sorted((truth[a], truth[b])))] += 1
    # which variants were left out of their original's group
    missed: Counter = Counter()
    originals = {truth[p]: p for p in truth if "/original/" in p}
    for p, src in truth.items():
        o = originals[src]
        if p != o and not (p in label and label.get(p) == label.get(o)):
            missed[Path(p).parent.name] += 1
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), sorted(merged.items()), missed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--max-side", type=int, default=2048)
    ap.add_argument("--threshold", type=int, default=None, help="pHash bits (default: dedup's default)")
    ap.add_argument("--sweep", default="8,10,12,14,16,18,20", help="other thresholds to report")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        t0 = time.perf_counter()
        truth = build(args.photos, t / "set", args.max_side)
        n_src = len(set(truth.values()))
        print(f"set: {len(truth)} files from {n_src} photos ({len(VARIANTS)} variants each), "
              f"built in {time.perf_counter() - t0:.0f}s")
        with Library(home=t / "home", model="bench-meaningless", engine_factory=MeaninglessEncoder,
                     preprocess=S0_SPEC) as lib:
            t0 = time.perf_counter()
            lib.index([str(t / "set")], options=IndexOptions(workers=2))
            print(f"indexed in {time.perf_counter() - t0:.0f}s")
            rows = []
            thresholds = sorted({*(int(x) for x in args.sweep.split(",") if x), args.threshold or -1} - {-1})
            default_report = lib.dedup(tier="near", threshold=args.threshold)
            for th in thresholds:
                rep = lib.dedup(tier="near", threshold=th)
                p, r, _, _ = score([{m.path for m in g.members} for g in rep.groups], truth)
                rows.append((th, p, r))
        rep = default_report
        p, r, merged, missed = score([{m.path for m in g.members} for g in rep.groups], truth)
        print(f"\nnear tier at the default threshold ({rep.threshold:g} bits), embeddings used: {rep.embeddings_used}")
        print(f"  pairwise precision {p:.4f}  recall {r:.4f}  "
              f"({len(rep.groups)} groups, dedup took {rep.elapsed:.2f}s)")
        print(f"  candidates: {rep.candidates}, pairs passed: {rep.pairs}")
        print(f"  variants left out of their original's group: {dict(missed) or 'none'}")
        print(f"  distinct photos merged: {merged or 'none'}")
        print("\n  threshold  precision  recall")
        for th, pp, rr in rows:
            print(f"  {th:9d}  {pp:9.4f}  {rr:6.4f}")


if __name__ == "__main__":
    main()
