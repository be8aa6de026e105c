"""Commands that need no model must feel instant; a repeated `find` must not load the model.

    python bench/startup.py [--weights FILE]

Times, in fresh processes: `mcphotos --help`, `mcphotos status`, a first `find` (loads the
model to encode the text) and the same `find` again (answered from the text-embedding cache),
and reports which heavy modules each one imported (`python -X importtime`).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], env: dict[str, str], importtime: bool = False) -> tuple[float, set[str]]:
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), "-m", "mcphotos", *args]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    # importtime lines end in "|<indent>module"; nested imports are indented further.
    imported = {line.rsplit("|", 1)[-1].strip() for line in r.stderr.splitlines() if line.startswith("import time:")}
    heavy = {m for m in ("torch", "open_clip", "timm") if m in imported}
    return wall, heavy


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights
        if weights is None:
            sys.path.insert(0, str(ROOT / "bench"))
            import open_clip
            import torch

            weights = Path(tmp) / "s0.pt"
            torch.save(open_clip.create_model("MobileCLIP2-S0").state_dict(), weights)
        env = {**os.environ, "MCPHOTOS_HOME": str(Path(tmp) / "home")}
        pics = Path(tmp) / "pics"
        pics.mkdir()
        from PIL import Image

        for i in range(4):
            Image.new("RGB", (64, 48), (40 * i, 80, 120)).save(pics / f"{i}.png")
        w = ["--weights", str(weights)]
        subprocess.run([sys.executable, "-m", "mcphotos", "index", str(pics), "-q", *w], env=env, check=True, cwd=ROOT)
        rows = []
        for label, cmd in [("mcphotos --help", ["--help"]), ("mcphotos status", ["status", *w]),
                           ("mcphotos index (unchanged tree)", ["index", str(pics), "-q", *w])]:
            times = [run(cmd, env)[0] for _ in range(args.repeat)]
            rows.append((label, min(times), run(cmd, env, importtime=True)[1]))
        first = run(["find", "a red bicycle", *w], env, importtime=True)
        again = [run(["find", "a red bicycle", *w], env)[0] for _ in range(args.repeat)]
        again_heavy = run(["find", "a red bicycle", *w], env, importtime=True)[1]
        rows.append(("mcphotos find (first time: loads the model)", first[0], first[1]))
        rows.append(("mcphotos find (same query again: cached)", min(again), again_heavy))
        for label, t, heavy in rows:
            print(f"{label:48s} {t:6.2f} s   heavy imports: {', '.join(sorted(heavy)) or 'none'}")
        print(f"repeated find is {first[0] / min(again):.1f}x faster than the first")


if __name__ == "__main__":
    main()
