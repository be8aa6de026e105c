"""How soon `mcphotos serve` answers: whole process, from exec to the first answered request.

    python bench/serve_ready.py [--repeat 7] [--n 10000] [--weights FILE] [--work DIR]

The store is bench/serve_search.py's (N synthetic 512-d vectors with the ANN cache, for
MobileCLIP2-S0 with random weights and its prepared ONNX runtime). Each run is a fresh
`python -m mcphotos serve --no-browser --port 0` process, timed from the outside:

- URL line: until the first line of stdout (uvicorn accepts connections from then on);
- first answer: until an authenticated `GET /api/status` has been answered (the target);
- first new query: until a `GET /api/search` of a text never asked before has been answered
  (the text tower opens in the background from start-up, so this waits for whatever is left).

Medians of --repeat runs. Each run also checks, from /proc/PID/maps, that the server process
never mapped libtorch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve_search import ROOT, new_queries, prepared_store


def one_run(env: dict[str, str], weights: Path, query: str) -> tuple[float, float, float, bool]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "mcphotos", "serve", "--no-browser", "--port", "0",
                             "--weights", str(weights)], env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        t_url = time.perf_counter() - t0
        base, token = url.split("/?token=")
        headers = {"Authorization": f"Bearer {token}"}
        with urllib.request.urlopen(urllib.request.Request(base + "/api/status", headers=headers)) as r:
            json.loads(r.read())
        t_status = time.perf_counter() - t0
        q = urllib.parse.urlencode({"q": query, "k": 60})
        with urllib.request.urlopen(urllib.request.Request(f"{base}/api/search?{q}", headers=headers)) as r:
            assert json.loads(r.read())["hits"]
        t_query = time.perf_counter() - t0
        torch = "libtorch" in Path(f"/proc/{proc.pid}/maps").read_text() if Path("/proc").is_dir() else False
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return t_url, t_status, t_query, torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--work", type=Path, help="as bench/serve_search.py --work: reuse a prepared store")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        weights, env = prepared_store(args.work or Path(tmp), args.n, args.weights)
        queries = new_queries(args.repeat + 1, int(time.time()))
        one_run(env, weights, queries[-1])  # untimed: the page cache holds the files from now on
        runs = [one_run(env, weights, queries[i]) for i in range(args.repeat)]
    print(f"\n`mcphotos serve` over {args.n} photos, MobileCLIP2-S0 "
          f"({'--weights' if args.weights else 'random weights'}), prepared ONNX runtime; {os.cpu_count()} cores; "
          f"median of {args.repeat} fresh processes\n")
    print("| from exec to | median | min | max |")
    print("|---|---:|---:|---:|")
    for i, name in enumerate(("the URL line on stdout", "the first answered request (`/api/status`)",
                              "the first answered new text query")):
        xs = [r[i] for r in runs]
        print(f"| {name} | {statistics.median(xs):.2f} s | {min(xs):.2f} s | {max(xs):.2f} s |")
    print(f"\nlibtorch mapped by the server: {'YES' if any(r[3] for r in runs) else 'never'}")


if __name__ == "__main__":
    main()
