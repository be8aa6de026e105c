"""How often ``--auto-cut`` cuts when nothing matches, and how often it finds planted matches.

    python bench/cutoff_rates.py [--trials 2000] [--seed 0]

Each trial draws a library of N unrelated photos whose scores for the query are Gaussian
(median 0.20, spread 0.01: the real-CLIP picture, where unrelated photos bunch within a few
hundredths), runs the product's own code on it (``background_stats`` over a sample of up to
``SAMPLE`` photos of that library, then ``gap_count`` over the top k + 1 = 21 scores), and
counts:

- **false cuts**: nothing matches, yet the cut kept fewer than the 21 ranked scores;
- **exact recovery**: j matches planted 0.05 to 0.10 above the median (uniformly drawn), and
  the cut kept exactly those j. "bunched" clips the unrelated scores to ±0.03 (no unrelated
  photo reaches a match); "Gaussian tail" leaves them unclipped, so in big libraries the top
  unrelated photos climb to +0.045 and some matches are no longer separable by score alone.

Pure numpy on the real cut-off functions; no model and no store. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mcphotos.search.cutoff import SAMPLE, background_stats, gap_count

K = 20
CENTER, SPREAD = 0.20, 0.01


def library(rng: np.random.Generator, n: int, matches: int, clip: bool) -> np.ndarray:
    scores = rng.normal(CENTER, SPREAD, n)
    if clip:
        scores = np.clip(scores, CENTER - 3 * SPREAD, CENTER + 3 * SPREAD)
    if matches:
        scores[:matches] = CENTER + rng.uniform(0.05, 0.10, matches)
    return scores


def kept(rng: np.random.Generator, scores: np.ndarray) -> int:
    """What the product keeps for these library scores (top k + 1 ranked, a sample for the background)."""
    n = len(scores)
    top = np.sort(scores[np.argpartition(-scores, K)[:K + 1]] if n > K + 1 else scores)[::-1]
    sample = scores[rng.choice(n, SAMPLE, replace=False)] if n > SAMPLE else scores
    return gap_count(top, K, background_stats(sample, population=n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--trials", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 2000, 100_000])
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()

    print(f"{args.trials} libraries per cell, unrelated scores N({CENTER}, {SPREAD}), k = {K}\n")
    print("| photos | false cuts, nothing matches |")
    print("|---:|---:|")
    for n in args.sizes:
        cuts = sum(kept(rng, library(rng, n, 0, clip=False)) < min(n, K + 1) for _ in range(args.trials))
        print(f"| {n:,} | {cuts / args.trials:.2%} ({cuts}/{args.trials}) |")

    for clip, title in ((True, "bunched within ±0.03"), (False, "Gaussian tail")):
        print(f"\nExact recovery of j matches 0.05-0.10 above the median, unrelated {title}:\n")
        print("| photos | j = 1 | j = 3 | j = 10 |")
        print("|---:|---:|---:|---:|")
        for n in args.sizes:
            cells = []
            for j in (1, 3, 10):
                hit = sum(kept(rng, library(rng, n, j, clip)) == j for _ in range(args.trials))
                cells.append(f"{hit / args.trials:.2%}")
            print(f"| {n:,} | " + " | ".join(cells) + " |")
    print(f"\n({time.perf_counter() - t0:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
