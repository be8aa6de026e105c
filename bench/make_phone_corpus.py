"""Generate a corpus shaped like phone photos: 12 MP (4032x3024) baseline JPEGs at quality 90.

    python bench/make_phone_corpus.py OUT_DIR [--n 32]

Smooth gradients plus sensor-like noise, so each file compresses and decodes like a real
photo of that size (2-4 MB). Used with `bench/index_throughput.py --corpus OUT_DIR`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--n", type=int, default=32)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    h, w = 3024, 4032
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(args.n):
        rng = np.random.default_rng(i)
        f = rng.uniform(200, 900, 3)
        img = np.stack([128 + 90 * np.sin(xx / f[0] + i), 128 + 90 * np.cos(yy / f[1] - i),
                        128 + 90 * np.sin((xx + yy) / f[2])], axis=-1)
        img += rng.normal(0, 6, img.shape).astype(np.float32)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(args.out / f"IMG_{i:04d}.jpg", quality=90)


if __name__ == "__main__":
    main()
