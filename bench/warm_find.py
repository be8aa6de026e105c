"""Whole-process `mcphotos find` of a new query, with and without a warm server, side by side.

    python bench/warm_find.py [--repeat 9] [--photos ../shared/photos] [--weights FILE] [--home DIR]

The store holds the photos of --photos indexed with random MobileCLIP2-S0 weights (timing does
not depend on the weights' values) and its prepared ONNX runtime. `mcphotos serve --no-browser`
runs for that store (its warm socket in a fresh XDG_RUNTIME_DIR); each row is a fresh
`python -m mcphotos find "<words never asked>" -k 5`, timed from outside with the peak memory
of its process tree, alternately through the server and with MCPHOTOS_NO_WARM=1 (its own ONNX
Runtime engine, search index and store). Runs alternate, so both see the same machine load.

It also checks that both give the same results (a new query through the server, then the same
query, forgotten from the text cache, without it) and reports the server's request counts.
Bytecode is written (PYTHONDONTWRITEBYTECODE unset) and one untimed run of each kind goes
first, as an installed mcphotos runs from compiled modules.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from startup import ROOT, WORDS, measure, random_s0  # bench/startup.py: one fresh process, timed, with its peak


def run(args: list[str], env: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-m", "mcphotos", *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--photos", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--home", type=Path, help="an existing home indexed with --weights (else one is made)")
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        weights = args.weights or random_s0(tmp / "s0.pt")
        w = ["--weights", str(weights)]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        home = args.home or tmp / "home"
        env["MCPHOTOS_HOME"] = str(home)
        env["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="mcb", dir="/tmp")
        if args.home is None:
            run(["index", str(args.photos.resolve()), "-q", *w], env)
            run(["models", "prepare", "--json", *w], env)
        status = json.loads(run(["status", "--json", *w], env))
        assert status["runtime"], "the ONNX runtime should be prepared"
        local_env = {**env, "MCPHOTOS_NO_WARM": "1"}
        server = subprocess.Popen([sys.executable, "-m", "mcphotos", "serve", "--no-browser", "--port", "0", *w],
                                  env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert server.stdout is not None
        t0 = time.perf_counter()
        assert server.stdout.readline().startswith("http://")
        while not (status := json.loads(run(["status", "--json", *w], env)))["server"]:
            time.sleep(0.05)  # the warm socket follows the URL line
        ready_s = time.perf_counter() - t0
        salt = secrets.token_hex(3)  # never asked before, in this store or any earlier run on it
        words = iter(f"{a} {b} {salt}{n}" for n, (a, b) in enumerate(zip(WORDS * 50, WORDS[3:] * 50, strict=False)))

        def find(query: str, e: dict[str, str]) -> tuple[float, float]:
            return measure(["find", query, "-k", "5", *w], e)

        find(next(words), env), find(next(words), local_env)  # untimed: compile and cache bytecode
        warm, local, floor = [], [], []
        for _ in range(args.repeat):
            warm.append(find(next(words), env))
            local.append(find(next(words), local_env))
            floor.append(measure(["--help"], env))  # what any command costs before it does anything
        # Same results: a new query through the server, then again without it once forgotten.
        query = next(words)
        through = run(["find", query, "-k", "20", "--json", *w], env)
        db = Path(status["store"]) / "store.db"
        with sqlite3.connect(db) as conn:
            conn.execute("DELETE FROM text_cache WHERE text = ?", (query,))
        alone = run(["find", query, "-k", "20", "--json", *w], local_env)
        counts = json.loads(run(["status", "--json", *w], env))["server"]["requests"]
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    uptime = os.getloadavg()
    print(f"store: {status['files']} photos, MobileCLIP2-S0 (random weights), onnx runtime prepared; "
          f"{os.cpu_count()} cores, load average {uptime[0]:.1f}; `mcphotos serve`: its warm socket answered "
          f"{ready_s:.2f} s after it started (polled with `mcphotos status`)")
    print(f"server requests: {counts}; results identical: {through == alone} "
          f"({len(through.splitlines())} hits compared)")
    print()
    print("| `find \"<new words>\" -k 5`, whole process | runs (s) | median | peak |")
    print("|---|---|---:|---:|")
    for label, rows in (("through the warm server", warm), ("its own engine (`MCPHOTOS_NO_WARM=1`)", local),
                        ("for scale: `mcphotos --help` (interpreter, typer, the CLI's imports)", floor)):
        times = ", ".join(f"{t:.2f}" for t, _ in rows)
        print(f"| {label} | {times} | **{statistics.median(t for t, _ in rows):.3f} s** | "
              f"{statistics.median(p for _, p in rows):.0f} MB |")
    ratio = statistics.median(t for t, _ in local) / statistics.median(t for t, _ in warm)
    print(f"\nspeed-up: {ratio:.1f}x")


if __name__ == "__main__":
    main()
