"""`index` through the local pipeline vs `index --ray` on a local Ray runtime, side by side.

    PYTHONPATH=. python bench/ray_index.py [--n 96] [--repeat 3] [--size 640x480]

One corpus of ``--n`` JPEGs (tests/support/photos.py), MobileCLIP2-S0 with random weights (the
same compute as the pretrained model), the same engine on both sides: the prepared ONNX Runtime
runtime (``mcphotos models prepare`` once; each run's fresh store gets a copy), so the ratio is
the pipeline's overhead, not an engine's. Each run is a whole process on a cold store:

- local: ``mcphotos index DIR --engine onnx`` (decode workers + ONNX Runtime in the process);
- ray:   ``mcphotos index DIR --ray``: a local Ray runtime sized to the machine (its start-up
  included, as a user pays it), decode as Ray tasks, one ONNX actor, results streamed back;
- ray, runtime up: the Ray pipeline in one process after a first run, so the Ray runtime's start-up
  is out of the figure (a cluster is already running); each run still starts its actor pool and
  loads the model once per actor.

Medians of ``--repeat`` runs; local and ray alternate within each repeat.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_corpus(folder: Path, n: int, size: tuple[int, int]) -> None:
    from tests.support.photos import photo

    for i in range(n):
        photo(folder / f"IMG_{i:04d}.jpg", seed=i, size=size, fmt="JPEG")


def run_cli(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mcphotos", *args], check=True, env=env, cwd=ROOT,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def fresh_home(work: Path, name: str, runtime: Path, slug: str) -> Path:
    home = work / name
    shutil.rmtree(home, ignore_errors=True)
    shutil.copytree(runtime, home / "models" / slug / "runtime")
    return home


def warm_ray(corpus: Path, weights: Path, work: Path, runtime: Path, slug: str, repeat: int) -> float:
    """Seconds per run of the Ray pipeline with the Ray runtime already started."""
    from mcphotos.distributed.pipeline import RayOptions
    from mcphotos.library import Library

    times = []
    for i in range(repeat + 1):
        home = fresh_home(work, f"warm{i}", runtime, slug)
        with Library(home=home, weights=str(weights)) as lib:
            t0 = time.perf_counter()
            lib.index([str(corpus)], ray=RayOptions(batch_size=64))
            if i:  # the first run starts Ray and is not counted
                times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=96)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--size", default="640x480")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="mcphotos-bench-ray-"))
    try:
        from tests.support.photos import save_random_checkpoint

        corpus = work / "corpus"
        make_corpus(corpus, args.n, (w, h))
        weights = save_random_checkpoint("MobileCLIP2-S0", work / "s0.pt")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        prep = work / "prep"
        run_cli(["models", "prepare", "--weights", str(weights), "--store", str(prep)], env)
        (store,) = (prep / "models").iterdir()
        runtime, slug = store / "runtime", store.name
        local, ray = [], []
        for i in range(args.repeat):
            home = fresh_home(work, f"local{i}", runtime, slug)
            local.append(run_cli(["index", str(corpus), "--store", str(home), "--weights", str(weights),
                                  "--engine", "onnx", "-q"], env))
            home = fresh_home(work, f"ray{i}", runtime, slug)
            ray.append(run_cli(["index", str(corpus), "--store", str(home), "--weights", str(weights),
                                "--ray", "-q"], env))
        warm = warm_ray(corpus, weights, work, runtime, slug, args.repeat)
        lm, rm = statistics.median(local), statistics.median(ray)
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"{args.n} JPEGs {w}x{h}, MobileCLIP2-S0 (random weights), ONNX Runtime on both sides, "
              f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), load {load:.1f}")
        print("| pipeline | wall s (median) | img/s | vs local |")
        print("|---|---:|---:|---:|")
        for name, t in (("local (`index --engine onnx`)", lm), ("`index --ray`, whole process", rm),
                        ("`index --ray`, Ray runtime already up", warm)):
            print(f"| {name} | {t:.1f} | {args.n / t:.1f} | {t / lm:.2f}x |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
