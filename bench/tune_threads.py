"""Which split of the cores indexes fastest? torch threads x decode workers x OpenMP wait policy.

    python bench/tune_threads.py [--corpus DIR]

Each variant runs in a fresh process (OMP_WAIT_POLICY is read when torch starts) and times
``Library.index`` on a cold store with the model already loaded, on the same files.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from startup import random_s0  # bench/startup.py

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, tempfile, time
sys.path.insert(0, {root!r})
import torch
from mcphotos.models.registry import resolve_model
from mcphotos.models.clip import load_engine
from mcphotos.indexing.indexer import IndexOptions
from mcphotos.library import Library
threads, workers, corpus, weights = {threads}, {workers}, {corpus!r}, {weights!r}
torch.set_num_threads(threads)
engine = load_engine(resolve_model("MobileCLIP2-S0", weights=weights))
import numpy as np
engine.encode_images(np.zeros((4, 256, 256, 3), np.uint8))
with tempfile.TemporaryDirectory() as home:
    lib = Library(home=home, model="MobileCLIP2-S0", weights=weights, engine_factory=lambda: engine,
                  preprocess=engine.preprocess)
    t0 = time.perf_counter()
    r = lib.index([corpus], options=IndexOptions(workers=workers))
    dt = time.perf_counter() - t0
print(json.dumps({{"n": r.new, "s": dt}}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--weights", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or random_s0(Path(tmp) / "s0.pt")
        cores = os.cpu_count() or 1
        for policy in ("", "PASSIVE"):
            for threads in sorted({1, cores}):
                for workers in sorted({1, cores}):
                    env = {**os.environ}
                    env.pop("OMP_WAIT_POLICY", None)
                    if policy:
                        env["OMP_WAIT_POLICY"] = policy
                    code = CHILD.format(root=str(ROOT), threads=threads, workers=workers,
                                        corpus=str(args.corpus), weights=str(weights))
                    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                    if out.returncode:
                        print(out.stderr[-500:])
                        continue
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    print(f"OMP_WAIT_POLICY={policy or 'default':8s} torch threads {threads}  decode workers "
                          f"{workers}:  {res['n'] / res['s']:6.2f} img/s")


if __name__ == "__main__":
    main()
