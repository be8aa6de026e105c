"""10,000 photos: peak memory while indexing, and the time to re-index the unchanged tree.

    python bench/scale_10k.py [--n 10000] [--weights FILE]

Generates N distinct small JPEGs (640x480, so decoding is cheap and the run measures the
pipeline, not the corpus), indexes them with MobileCLIP2-S0 under `/usr/bin/time -v`
(random weights unless --weights; same compute), then re-indexes the unchanged tree.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def make_corpus(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for i in range(n):
        d = root / f"{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        img = np.roll(base, i * 7, axis=1) ^ np.uint8(i % 251)
        Image.fromarray(img).save(d / f"img{i:05d}.jpg", quality=80)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--weights", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        weights = args.weights
        if weights is None:
            import open_clip
            import torch

            weights = t / "s0.pt"
            torch.save(open_clip.create_model("MobileCLIP2-S0").state_dict(), weights)
        t0 = time.perf_counter()
        make_corpus(t / "pics", args.n)
        print(f"generated {args.n} photos in {time.perf_counter() - t0:.1f}s")
        env = {**os.environ, "MCPHOTOS_HOME": str(t / "home")}
        cmd = [sys.executable, "-m", "mcphotos", "index", str(t / "pics"), "--weights", str(weights)]
        t0 = time.perf_counter()
        r = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            sys.exit(r.stderr[-2000:])
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))
        summary = [ln for ln in r.stderr.splitlines() if ln.startswith("indexed")]
        print(f"cold index of {args.n}: {wall:.1f}s ({args.n / wall:.1f} img/s end to end); "
              f"peak RSS {rss_kb / 1024:.0f} MiB (main process, /usr/bin/time -v)")
        print("  " + (summary[0] if summary else ""))
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            subprocess.run([*cmd, "-q"], env=env, check=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
        print(f"re-index of the unchanged tree: best {min(times):.2f}s, runs {', '.join(f'{x:.2f}' for x in times)}")


if __name__ == "__main__":
    main()
