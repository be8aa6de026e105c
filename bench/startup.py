"""Commands that need no model must feel instant; a repeated `find` must not load the model.

    python bench/startup.py [--repeat 5] [--weights FILE]

Times whole fresh processes, `python -m mcphotos ...`, all measured the same way (no
`-X importtime`, no wrapper): `mcphotos --help`, `mcphotos status`, `mcphotos index` of an
unchanged tree, a first `find` (loads the model to encode the text; each repeat gets a fresh
copy of the store, so every one is a real first time) and the same `find` again (answered
from the text-embedding cache). Each figure is the median over --repeat runs, and the ratio
is median(first find) / median(repeated find), both from this run.

Which heavy modules (torch, open_clip, timm) a command imports is found in a separate,
untimed run of the same command through a `-c` wrapper that lists them from `sys.modules`
at exit.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open_clip", "timm")

# Runs `python -m mcphotos ARGS` and, at exit (after typer's SystemExit), writes the heavy
# modules found in sys.modules to the file named by $MCPHOTOS_BENCH_MODULES.
WRAPPER = f"""
import atexit, os, runpy, sys
def _report():
    with open(os.environ["MCPHOTOS_BENCH_MODULES"], "w") as f:
        f.write(" ".join(m for m in {HEAVY!r} if m in sys.modules))
atexit.register(_report)
sys.argv = ["mcphotos", *sys.argv[1:]]
runpy.run_module("mcphotos", run_name="__main__", alter_sys=True)
"""


def timed(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mcphotos", *args], env=env, check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def heavy_imports(args: list[str], env: dict[str, str], tmp: Path) -> list[str]:
    out = tmp / "modules.txt"
    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-c", WRAPPER, *args], env={**env, "MCPHOTOS_BENCH_MODULES": str(out)},
                   check=True, capture_output=True, cwd=ROOT)
    return out.read_text().split()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        weights = args.weights
        if weights is None:
            import open_clip
            import torch

            weights = tmp / "s0.pt"
            torch.save(open_clip.create_model("MobileCLIP2-S0").state_dict(), weights)
        indexed = tmp / "indexed"  # a store with the photos indexed and no text embedding cached
        env = {**os.environ, "MCPHOTOS_HOME": str(indexed)}
        pics = tmp / "pics"
        pics.mkdir()
        from PIL import Image

        for i in range(4):
            Image.new("RGB", (64, 48), (40 * i, 80, 120)).save(pics / f"{i}.png")
        w = ["--weights", str(weights)]
        subprocess.run([sys.executable, "-m", "mcphotos", "index", str(pics), "-q", *w], env=env, check=True, cwd=ROOT)
        find = ["find", "a red bicycle", *w]

        def fresh_home(name: str) -> dict[str, str]:
            home = tmp / name
            shutil.copytree(indexed, home)
            return {**os.environ, "MCPHOTOS_HOME": str(home)}

        rows = []
        for label, cmd in [("mcphotos --help", ["--help"]), ("mcphotos status", ["status", *w]),
                           ("mcphotos index (unchanged tree)", ["index", str(pics), "-q", *w])]:
            times = [timed(cmd, env) for _ in range(args.repeat)]
            rows.append((label, times, heavy_imports(cmd, env, tmp)))
        first = [timed(find, fresh_home(f"first{i}")) for i in range(args.repeat)]
        first_heavy = heavy_imports(find, fresh_home("first-imports"), tmp)
        cached = fresh_home("cached")
        timed(find, cached)  # the first find in this store caches the text embedding
        again = [timed(find, cached) for _ in range(args.repeat)]
        rows.append(("mcphotos find (first time: loads the model)", first, first_heavy))
        rows.append(("mcphotos find (same query again: cached)", again, heavy_imports(find, cached, tmp)))
        print(f"median of {args.repeat} fresh processes each; heavy imports from a separate untimed run")
        for label, times, heavy in rows:
            print(f"{label:48s} {statistics.median(times):6.2f} s  (runs {', '.join(f'{t:.2f}' for t in times)})"
                  f"   heavy imports: {', '.join(heavy) or 'none'}")
        print(f"repeated find is {statistics.median(first) / statistics.median(again):.1f}x faster than the first "
              f"(median / median)")


if __name__ == "__main__":
    main()
