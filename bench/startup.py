"""Whole-process start-up and small-job times, torch and ONNX Runtime engines side by side.

    python bench/startup.py [--repeat 5] [--photos ../shared/photos] [--weights FILE] [--phone DIR]

Every figure is a fresh `python -m mcphotos ...` process, timed from the outside (wall clock)
with its peak memory sampled by psutil every 10 ms over the whole process tree (the command and
its decode workers), median of --repeat runs. Both engines run in the same invocation, the
same way, on the same store: `--engine torch` (what every command did before the prepared
runtime) and `--engine onnx` (what `auto` picks for these jobs once the model is prepared).

The store holds the photos of --photos, indexed with random MobileCLIP2-S0 weights (timing
does not depend on the weights' values). Rows:

- new-query find: a query never asked before (a different one each run);
- repeated find: the same query again (its text vector is cached: no model at all);
- find by an outside photo; `score` of one photo against a new caption;
- index of the folder with 1 new photo; index of all the photos into a cold store;
- tag of the photos with a new 100-label set (a fresh set each run: every prompt is new);
- with --phone DIR (bench/make_phone_corpus.py): index of DIR into a cold store.

Light commands (--help, status, an unchanged index) are timed once per engine-less row, and
which heavy modules (torch, open_clip, timm) each command imported is read from a separate,
untimed run through a `-c` wrapper.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open_clip", "timm")
WRAPPER = f"""
import atexit, os, runpy, sys
def _report():
    with open(os.environ["MCPHOTOS_BENCH_MODULES"], "w") as f:
        f.write(" ".join(m for m in {HEAVY!r} if m in sys.modules))
atexit.register(_report)
sys.argv = ["mcphotos", *sys.argv[1:]]
runpy.run_module("mcphotos", run_name="__main__", alter_sys=True)
"""
WORDS = ("zebra", "violin", "lighthouse", "tractor", "cactus", "harbour", "glacier", "pagoda", "saxophone",
         "bonfire", "canyon", "meerkat", "tram", "orchid", "kayak", "windmill", "pelican", "waterfall")


def random_s0(path: Path) -> Path:
    """A MobileCLIP2-S0 checkpoint with random weights at ``path`` (timings do not depend on the
    values; pretrained weights cannot be downloaded here). Returns ``path``."""
    import open_clip
    import torch

    torch.save(open_clip.create_model("MobileCLIP2-S0").state_dict(), path)
    return path


def measure(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak MiB of the process tree) of one fresh `python -m mcphotos ARGS`."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mcphotos", *args], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        try:
            p = psutil.Process(proc.pid)
        except psutil.Error:
            return
        while not stop.is_set():
            total = 0
            try:
                for q in [p, *p.children(recursive=True)]:
                    try:
                        total += q.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            peak = max(peak, total)
            stop.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    wall = time.perf_counter() - t0
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"mcphotos {' '.join(args)} failed ({proc.returncode}): {err.decode()[-2000:]}")
    return wall, peak / 2**20


def heavy_imports(args: list[str], env: dict[str, str], tmp: Path) -> str:
    out = tmp / "modules.txt"
    out.unlink(missing_ok=True)
    subprocess.run([sys.executable, "-c", WRAPPER, *args], env={**env, "MCPHOTOS_BENCH_MODULES": str(out)},
                   check=True, capture_output=True, cwd=ROOT)
    return ", ".join(out.read_text().split()) or "none"


def clone_home(template: Path, dest: Path, with_store: bool = True) -> Path:
    """A copy of ``template``'s store (or an empty one) sharing its prepared runtime by symlink."""
    (store,) = (template / "models").iterdir()
    target = dest / "models" / store.name
    target.mkdir(parents=True)
    if with_store:
        for name in ("store.db", "ann.bin", "ann.json"):
            for f in store.glob(name + "*"):
                shutil.copy2(f, target / f.name)
    os.symlink(store / "runtime", target / "runtime")
    return dest


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--phone", type=Path, help="also index this folder (e.g. 200 phone-size JPEGs) cold")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--only", help="only the rows whose label contains this text (e.g. index)")
    args = ap.parse_args()
    photos = args.photos.resolve()
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        weights = args.weights or random_s0(tmp / "s0.pt")
        w = ["--weights", str(weights)]
        template = tmp / "template"
        base_env = {**os.environ, "MCPHOTOS_HOME": str(template)}
        subprocess.run([sys.executable, "-m", "mcphotos", "index", str(photos), "-q", "--engine", "torch", *w],
                       env=base_env, check=True, cwd=ROOT)
        subprocess.run([sys.executable, "-m", "mcphotos", "models", "prepare", "--json", *w],
                       env=base_env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        outside = tmp / "outside.jpg"
        from PIL import Image

        Image.open(sorted(photos.iterdir())[0]).convert("RGB").rotate(90, expand=True).save(outside, quality=90)
        extra = tmp / "one-new"
        extra.mkdir()
        Image.open(sorted(photos.iterdir())[1]).convert("RGB").resize((1600, 1200)).save(extra / "new.jpg")
        counter = iter(range(10**6))

        def env_for(home: Path) -> dict[str, str]:
            return {**os.environ, "MCPHOTOS_HOME": str(home)}

        def new_words() -> str:
            i = next(counter)
            return f"a {WORDS[i % len(WORDS)]} near a {WORDS[(i * 7 + 3) % len(WORDS)]}, take {i}"

        def label_file() -> Path:
            i = next(counter)
            path = tmp / f"labels-{i}.txt"
            path.write_text("\n".join(f"{WORDS[k % len(WORDS)]} {k} v{i}" for k in range(100)) + "\n")
            return path

        shared = clone_home(template, tmp / "shared-home")
        repeated = ["find", "a lighthouse at dusk", *w]
        measure(repeated, env_for(shared))  # caches that text vector

        def fresh(kind: str) -> Path:
            return clone_home(template, tmp / f"h{next(counter)}", with_store=(kind != "cold"))

        # (label, build(engine) -> (args, env))
        jobs = [
            ("find, a new query", lambda e: (["find", new_words(), *w, "--engine", e], env_for(shared))),
            ("find, the same query again", lambda e: ([*repeated, "--engine", e], env_for(shared))),
            ("find --image, an outside photo", lambda e: (["find", "--image", str(outside), *w, "--engine", e],
                                                          env_for(shared))),
            ("score, one photo", lambda e: (["score", str(outside), new_words(), *w, "--engine", e],
                                            env_for(shared))),
            ("index, 1 new photo", lambda e: (["index", str(photos), str(extra), "-q", *w, "--engine", e],
                                              env_for(fresh("store")))),
            (f"index, {sum(p.is_file() and not p.name.startswith('.') for p in photos.iterdir())} files, cold store",
             lambda e: (["index", str(photos), "-q", *w, "--engine", e], env_for(fresh("cold")))),
            ("tag, a new 100-label set", lambda e: (["tag", "--labels", str(label_file()), "-q", *w, "--engine", e],
                                                    env_for(shared))),
        ]
        if args.phone:
            n = len(list(args.phone.iterdir()))
            jobs.append((f"index, {n} phone JPEGs, cold store",
                         lambda e: (["index", str(args.phone.resolve()), "-q", *w, "--engine", e],
                                    env_for(fresh("cold")))))
        print(f"whole process, median of {args.repeat} fresh runs; peak = process tree RSS (psutil, 10 ms)")
        print(f"{'command':38s} {'torch s':>8s} {'peak MB':>8s} {'onnx s':>8s} {'peak MB':>8s} {'speed-up':>8s}"
              f"  heavy imports (onnx)")
        for label, build in jobs:
            if args.only and args.only not in label:
                continue
            res: dict[str, list[tuple[float, float]]] = {"torch": [], "onnx": []}
            for _ in range(args.repeat):
                for engine in ("torch", "onnx"):  # interleaved, so both see the same machine
                    res[engine].append(measure(*build(engine)))
            heavy = heavy_imports(*build("onnx"), tmp)
            t = {e: statistics.median(x for x, _ in r) for e, r in res.items()}
            m = {e: statistics.median(y for _, y in r) for e, r in res.items()}
            print(f"{label:38s} {t['torch']:8.2f} {m['torch']:8.0f} {t['onnx']:8.2f} {m['onnx']:8.0f} "
                  f"{t['torch'] / t['onnx']:7.2f}x  {heavy}", flush=True)
        for label, cmd in [] if args.only else [("mcphotos --help", ["--help"]), ("mcphotos status", ["status", *w]),
                           ("index, unchanged tree", ["index", str(photos), "-q", *w])]:
            runs = [measure(cmd, env_for(shared)) for _ in range(args.repeat)]
            print(f"{label:38s} {statistics.median(x for x, _ in runs):8.2f} s, peak "
                  f"{statistics.median(y for _, y in runs):.0f} MB; heavy imports: "
                  f"{heavy_imports(cmd, env_for(shared), tmp)}")


if __name__ == "__main__":
    main()
