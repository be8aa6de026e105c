"""Each step of opening the ONNX runtime for a text query, and what each load-time choice saves.

    python bench/runtime_load.py [--repeat 5] [--weights FILE]

Exports random MobileCLIP2-S0 (or --weights) once, then times each step in fresh processes
(median of --repeat), all on the same files:

- `import onnxruntime`; the tokenizer (`tokenizers` + tokenizer.json), with and without ftfy;
- opening the text tower three ways: the plain `torch.onnx.export` file with ONNX Runtime's
  optimizations at open (what a naive runtime does), the prepared graph (optimized at export)
  with its weights inline, and the prepared graph with its weights in a memory-mapped file
  (what mcphotos ships); each with the first query's encode and the process's peak RSS;
- opening the store, and opening the store while the tokenizer and the session load in a
  background thread (what `find` does).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

STEP = r"""
import json, sys, time
t0 = time.perf_counter()
mode, folder = sys.argv[1], sys.argv[2]
out = {}
def mark(name, since):
    out[name] = time.perf_counter() - since
    return time.perf_counter()
t = time.perf_counter()
import onnxruntime as ort
t = mark("import onnxruntime", t)
import numpy as np
from mcphotos.models.onnxengine import session_options
from mcphotos.models.tokenizer import ClipTokenizer
tok = ClipTokenizer.from_file(folder + "/tokenizer.json", 77)
t = mark("tokenizer.json load", t)
ids = tok(["a red bicycle"])
t = mark("tokenize, plain ASCII (no ftfy)", t)
tok(["café crème"])
t = mark("tokenize, first non-ASCII (imports ftfy)", t)
so = session_options()
path = {"plain": "/text.plain.onnx", "inline": "/text.inline.onnx", "mmap": "/text.onnx"}[mode]
if mode == "plain":
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
s = ort.InferenceSession(folder + path, so, providers=["CPUExecutionProvider"])
t = mark("open text session", t)
s.run(None, {"tokens": ids})
t = mark("first encode", t)
out["total"] = time.perf_counter() - t0
# VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec.
hwm = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0]
out["peak MB"] = int(hwm.split()[1]) / 1024
print(json.dumps(out))
"""

STORE = r"""
import json, sys, time
t0 = time.perf_counter()
parallel, folder, store_dir = sys.argv[1] == "parallel", sys.argv[2], sys.argv[3]
from pathlib import Path
from mcphotos.models.onnxengine import OnnxEngine
from mcphotos.models.runtime import read_manifest
import sqlite3
m = read_manifest(Path(folder))
engine = OnnxEngine(Path(folder), m)
if parallel:
    engine.prefetch("text")
with sqlite3.connect(store_dir + "/store.db") as db:
    db.execute("SELECT count(*) FROM images").fetchone()
time.sleep(0.1)  # stands for the rest of a find's work before it needs the text vector
engine.encode_texts(["a red bicycle"])
print(json.dumps({"store + tokenizer + session + encode": time.perf_counter() - t0}))
"""


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import onnx
    import open_clip
    import torch

    with tempfile.TemporaryDirectory() as tmp_:
        tmp = Path(tmp_)
        weights = args.weights
        if weights is None:
            weights = tmp / "s0.pt"
            torch.save(open_clip.create_model("MobileCLIP2-S0").state_dict(), weights)
        env = {**os.environ, "MCPHOTOS_HOME": str(tmp / "home")}
        subprocess.run([sys.executable, "-m", "mcphotos", "models", "prepare", "--json", "--weights", str(weights)],
                       env=env, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        (store,) = (tmp / "home" / "models").iterdir()
        folder = store / "runtime"
        (store / "store.db").touch()
        subprocess.run([sys.executable, "-c", "import sqlite3,sys; db=sqlite3.connect(sys.argv[1]); "
                        "db.execute('CREATE TABLE IF NOT EXISTS images (id INTEGER)'); db.commit()",
                        str(store / "store.db")], check=True)
        # The same optimized graph with its weights inline, and the plain export, for comparison.
        model = onnx.load(str(folder / "text.onnx"))
        onnx.save(model, str(folder / "text.inline.onnx"))
        from mcphotos.models.clip import load_engine
        from mcphotos.models.export import _torch_modules  # the exporter's own tower wrapper
        from mcphotos.models.registry import resolve_model

        engine = load_engine(resolve_model("MobileCLIP2-S0", weights=str(weights)), precision="fp32")
        _, text = _torch_modules(engine)
        tokens = torch.zeros((2, 77), dtype=torch.long)
        with torch.enable_grad():
            torch.onnx.export(text, (tokens,), str(folder / "text.plain.onnx"), input_names=["tokens"],
                              output_names=["embedding"], dynamic_axes={"tokens": {0: "n"}}, opset_version=17,
                              dynamo=False)
        print(f"median of {args.repeat} fresh processes; seconds unless noted")
        for mode, label in [("plain", "plain export, optimized at open"), ("inline", "prepared, weights inline"),
                            ("mmap", "prepared, weights memory-mapped (shipped)")]:
            runs = [run(STEP, mode, str(folder)) for _ in range(args.repeat)]
            print(f"\n{label}:")
            for key in runs[0]:
                print(f"  {key:42s} {statistics.median(r[key] for r in runs):8.3f}")
        for mode in ("serial", "parallel"):
            runs = [run(STORE, mode, str(folder), str(store)) for _ in range(args.repeat)]
            key = next(iter(runs[0]))
            print(f"{mode:8s} {key}: {statistics.median(r[key] for r in runs):.3f}")


if __name__ == "__main__":
    main()
