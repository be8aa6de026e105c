"""10,000 photos: peak memory while indexing, and the time to re-index the unchanged tree.

    python bench/scale_10k.py [--n 10000] [--weights FILE] [--interval 0.05] [--repeat 5]

Generates N distinct small JPEGs (640x480, so decoding is cheap and the run measures the
pipeline, not the corpus), indexes them with MobileCLIP2-S0 (random weights unless
--weights; same compute), then re-indexes the unchanged tree (median of --repeat fresh processes).

`mcphotos index` runs its decoders in spawned worker processes, so memory is reported two ways:

- peak of the SUM of RSS over the whole process tree (the mcphotos process and all its
  descendants, found again at every sample), sampled with psutil every --interval seconds.
  Pages shared between processes (libraries, mostly) count once per process, so this is an
  upper bound on the memory the tree occupies;
- `/usr/bin/time -v`'s "Maximum resident set size": the largest max RSS of any single
  process of the tree (the kernel's per-process high-water mark), not a sum.

Needs psutil (`pip install -e '.[bench]'`).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
from PIL import Image
from startup import random_s0  # bench/startup.py

ROOT = Path(__file__).resolve().parents[1]


def make_corpus(root: Path, n: int) -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    for i in range(n):
        d = root / f"{i // 500:03d}"
        d.mkdir(parents=True, exist_ok=True)
        img = np.roll(base, i * 7, axis=1) ^ np.uint8(i % 251)
        Image.fromarray(img).save(d / f"img{i:05d}.jpg", quality=80)


PROC_CHILDREN = Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists()


def descendants(pid: int) -> list[int]:
    """All descendants of `pid`: on Linux from /proc/PID/task/TID/children (cheap: no scan of
    every process on the machine), elsewhere psutil's recursive children()."""
    if not PROC_CHILDREN:
        try:
            return [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = list(Path(f"/proc/{p}/task").iterdir())
        except OSError:
            continue  # the process is gone
        for task in tasks:  # a child is listed under the thread that started it
            try:
                kids = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue  # the thread is gone
            out += kids
            todo += kids
    return out


class TreeMemory(threading.Thread):
    """Samples the summed RSS of the descendants of `pid` every `interval` seconds until `stop`."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.stop = threading.Event()
        self.peak_rss = self.peak_procs = self.samples = 0
        self.busy = 0.0  # seconds the sampler itself spent sampling

    def run(self) -> None:
        while not self.stop.is_set():
            t0 = time.perf_counter()
            rss = procs = 0
            for pid in descendants(self.pid):  # /usr/bin/time's child: mcphotos, and its workers
                try:
                    rss += psutil.Process(pid).memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue  # a worker that exited between the listing and the read
                procs += 1
            self.samples += 1
            if rss > self.peak_rss:
                self.peak_rss, self.peak_procs = rss, procs
            dt = time.perf_counter() - t0
            self.busy += dt
            self.stop.wait(max(0.0, self.interval - dt))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    ap.add_argument("--repeat", type=int, default=5, help="re-index runs of the unchanged tree")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        weights = args.weights or random_s0(t / "s0.pt")
        t0 = time.perf_counter()
        make_corpus(t / "pics", args.n)
        print(f"generated {args.n} photos in {time.perf_counter() - t0:.1f}s")
        env = {**os.environ, "MCPHOTOS_HOME": str(t / "home")}
        cmd = [sys.executable, "-m", "mcphotos", "index", str(t / "pics"), "--weights", str(weights)]
        t0 = time.perf_counter()
        with tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(["/usr/bin/time", "-v", *cmd], env=env, stdout=subprocess.DEVNULL, stderr=err,
                                    cwd=ROOT)
            mem = TreeMemory(proc.pid, args.interval)
            mem.start()
            rc = proc.wait()
            wall = time.perf_counter() - t0
            mem.stop.set()
            mem.join()
            err.seek(0)
            stderr = err.read()
        if rc != 0:
            sys.exit(stderr[-2000:])
        rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1))
        summary = [ln for ln in stderr.splitlines() if ln.startswith("indexed")]
        print(f"cold index of {args.n}: {wall:.1f}s ({args.n / wall:.1f} img/s end to end)")
        print("  " + (summary[0] if summary else ""))
        print(f"peak of the summed RSS over the process tree: {mem.peak_rss / 2**20:.0f} MiB "
              f"({mem.peak_procs} processes at that sample; {mem.samples} samples every {args.interval}s, "
              f"sampler busy {mem.busy:.1f}s)")
        print(f"largest single-process max RSS (/usr/bin/time -v): {rss_kb / 1024:.0f} MiB")
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([*cmd, "-q"], env=env, check=True, cwd=ROOT)
            times.append(time.perf_counter() - t0)
        print(f"re-index of the unchanged tree: median {statistics.median(times):.2f}s of {args.repeat} fresh "
              f"processes, runs {', '.join(f'{x:.2f}' for x in times)}")


if __name__ == "__main__":
    main()
