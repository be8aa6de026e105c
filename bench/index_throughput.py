"""Indexing throughput, side by side on the same files, in one run.

    python bench/index_throughput.py [--corpus DIR] [--weights FILE] [--batch-size 32]

Lines measured (MobileCLIP2-S0; random weights unless --weights: speed is the same):

- reference:  what a user writes from Apple's README: open_clip's own ``preprocess`` on
              ``Image.open(p).convert("RGB")``, then fp32 eager ``encode_image`` of the
              reparameterized model, batched at the same batch size, one process.
- mcphotos:   ``Library.index`` on a cold store, model already loaded (the pipeline), and the
              ``mcphotos index`` command end to end in a fresh process (startup + model load).
- model-only: the image tower on pre-made uint8 batches, in mcphotos' dtype and layout.
- decode-only: mcphotos' decode + preprocess alone, one process, CPU-seconds per image.

The work-conserving bound is 1 / (decode CPU-s per image / cores + model s per image): with
decode and inference overlapped and both cores always busy, nothing can go faster.

It also checks fidelity on the real photos: our preprocessing against open_clip's transform
(mean and worst absolute difference, in 1/255 units), and the fast path (bf16 autocast +
channels_last) against fp32 on a random MobileCLIP2-S0 whose BatchNorm statistics were
recalibrated on the photos (raw random weights map every photo to one direction).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mcphotos.indexing.imaging import EXTENSIONS  # noqa: E402


def corpus_files(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.suffix.lower() in EXTENSIONS and p.is_file())


def make_weights(tmp: Path, pixels: list[np.ndarray], batch: int) -> Path:
    """Random MobileCLIP2-S0 whose BatchNorm statistics come from the real photos.

    Raw random weights map every photo to one direction, which makes any fidelity figure
    meaningless; recalibrated statistics spread the embeddings out. This must happen before
    reparameterization folds the BatchNorms into the convolutions.
    """
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.create_model("MobileCLIP2-S0", pretrained=None)
    bns = [m for m in model.visual.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over all batches
    model.visual.train()
    arr = np.stack(pixels)
    with torch.no_grad():
        for i in range(0, len(arr), batch):
            model.visual(torch.from_numpy(arr[i:i + batch]).permute(0, 3, 1, 2).float() / 255.0)
    model.eval()
    path = tmp / "mobileclip2_s0_random_bn_recalibrated.pt"
    torch.save(model.state_dict(), path)
    return path


def bench_reference(files: list[Path], weights: Path, batch: int) -> tuple[float, np.ndarray]:
    import open_clip
    import torch
    from PIL import Image
    from timm.utils import reparameterize_model

    model, _, preprocess = open_clip.create_model_and_transforms("MobileCLIP2-S0", pretrained=str(weights))
    model = reparameterize_model(model.eval())
    out = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(files), batch):
            x = torch.stack([preprocess(Image.open(p).convert("RGB")) for p in files[i:i + batch]])
            f = model.encode_image(x)
            out.append((f / f.norm(dim=-1, keepdim=True)).numpy())
    return time.perf_counter() - t0, np.concatenate(out)


def bench_decode(files: list[Path], spec) -> tuple[float, float, list[np.ndarray]]:
    from mcphotos.indexing.imaging import decode_for_model

    pixels = []
    w0, c0 = time.perf_counter(), time.process_time()
    for p in files:
        pixels.append(decode_for_model(p.read_bytes(), spec).pixels)
    return time.perf_counter() - w0, time.process_time() - c0, pixels


def bench_model(engine, pixels: list[np.ndarray], batch: int) -> float:
    arr = np.stack(pixels)
    engine.encode_images(arr[:batch])  # warm-up: first bf16 call builds kernels
    t0 = time.perf_counter()
    for i in range(0, len(arr), batch):
        engine.encode_images(arr[i:i + batch])
    return time.perf_counter() - t0


def bench_pipeline(engine, corpus: Path, batch: int) -> float:
    from mcphotos.indexing.indexer import IndexOptions
    from mcphotos.library import Library

    with tempfile.TemporaryDirectory() as home:
        lib = Library(home=home, model="MobileCLIP2-S0", weights=str(engine.spec.weights),
                      engine_factory=lambda: engine, preprocess=engine.preprocess)
        t0 = time.perf_counter()
        report = lib.index([str(corpus)], options=IndexOptions(batch_size=batch))
        elapsed = time.perf_counter() - t0
        lib.close()
    assert report.failed == 0, report.skipped
    return elapsed


def bench_cli(corpus: Path, weights: Path, batch: int) -> float:
    with tempfile.TemporaryDirectory() as home:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mcphotos", "index", str(corpus), "--weights", str(weights),
                        "--batch-size", str(batch), "-q"], check=True, env={**os.environ, "MCPHOTOS_HOME": home})
        return time.perf_counter() - t0


def preprocess_fidelity(files: list[Path], engine) -> tuple[float, float]:
    from PIL import Image

    from mcphotos.indexing.imaging import decode_for_model
    from mcphotos.models.clip import reference_transform

    ref_t = reference_transform(engine)
    diffs = []
    for p in files:
        ours = decode_for_model(p.read_bytes(), engine.preprocess).pixels.astype(np.float64)
        ref = ref_t(Image.open(p).convert("RGB")).permute(1, 2, 0).numpy().astype(np.float64) * 255.0
        diffs.append(float(np.abs(ours - ref).mean()))
    return float(np.mean(diffs)), float(np.max(diffs))


def fidelity(engine, pixels: list[np.ndarray], batch: int) -> dict:
    arr = np.stack(pixels)
    prec = engine.precision
    feats = {}
    for mode in ("fp32", prec):
        engine.precision = mode
        feats[mode] = np.concatenate([engine.encode_images(arr[i:i + batch]) for i in range(0, len(arr), batch)])
    engine.precision = prec
    a, b = feats["fp32"], feats[prec]
    cos = np.sum(a * b, axis=1)
    sims_a, sims_b = a @ a.T, b @ b.T
    np.fill_diagonal(sims_a, -9)
    np.fill_diagonal(sims_b, -9)
    k = 5
    agree = np.mean([len(set(np.argsort(-sa)[:k]) & set(np.argsort(-sb)[:k])) / k
                     for sa, sb in zip(sims_a, sims_b, strict=True)])
    off = sims_a[sims_a > -9]
    return {"precision": prec, "min_cos": float(cos.min()), "mean_cos": float(cos.mean()),
            "top5_agreement": float(agree), "pairwise_cos_min": float(off.min()),
            "pairwise_cos_mean": float(off.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=ROOT.parent / "shared" / "photos")
    ap.add_argument("--weights", type=Path, help="MobileCLIP2-S0 checkpoint (default: random weights)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object too")
    args = ap.parse_args()
    files = corpus_files(args.corpus)
    if not files:
        sys.exit(f"no photos under {args.corpus}")
    n, cores = len(files), os.cpu_count() or 1
    tmp = Path(tempfile.mkdtemp())

    from mcphotos.models.clip import load_engine, preprocess_spec_for
    from mcphotos.models.registry import resolve_model

    dec_wall, dec_cpu, pixels = bench_decode(files, preprocess_spec_for(resolve_model("MobileCLIP2-S0")))
    weights = args.weights or make_weights(tmp, pixels, args.batch_size)
    engine = load_engine(resolve_model("MobileCLIP2-S0", weights=str(weights)))
    res: dict = {"photos": n, "cores": cores, "batch": args.batch_size,
                 "cpu": platform.processor() or platform.machine(), "precision": engine.precision}
    res["decode_cpu_s_per_img"] = dec_cpu / n
    res["decode_only_img_s"] = n / dec_wall
    model_s = bench_model(engine, pixels, args.batch_size)
    res["model_only_img_s"] = n / model_s
    res["bound_img_s"] = 1.0 / (dec_cpu / n / cores + model_s / n)
    pipe = bench_pipeline(engine, args.corpus, args.batch_size)
    res["mcphotos_img_s"] = n / pipe
    res["mcphotos_cli_wall_s"] = bench_cli(args.corpus, weights, args.batch_size)
    if not args.skip_reference:
        ref_s, _ = bench_reference(files, weights, args.batch_size)
        res["reference_img_s"] = n / ref_s
        res["mcphotos_vs_reference"] = res["mcphotos_img_s"] / res["reference_img_s"]
    res["mcphotos_vs_model_only"] = res["mcphotos_img_s"] / res["model_only_img_s"]
    res["efficiency_vs_bound"] = res["mcphotos_img_s"] / res["bound_img_s"]
    res["preprocess_mean_abs_diff_255"], res["preprocess_worst_abs_diff_255"] = preprocess_fidelity(files, engine)
    res["fast_path_fidelity"] = fidelity(engine, pixels, args.batch_size)

    print(f"corpus: {n} photos from {args.corpus}; {cores} cores; batch {args.batch_size}; {engine.precision}")
    for key, label in [("reference_img_s", "reference (open_clip preprocess + fp32 eager)"),
                       ("mcphotos_img_s", "mcphotos index (pipeline, model loaded)"),
                       ("model_only_img_s", "model-only (image tower, pre-made tensors)"),
                       ("decode_only_img_s", "decode-only (1 process)"),
                       ("bound_img_s", "work-conserving bound")]:
        if key in res:
            print(f"  {label:48s} {res[key]:7.2f} img/s")
    print(f"  decode CPU per image: {res['decode_cpu_s_per_img'] * 1000:.1f} ms")
    print(f"  mcphotos index CLI end to end (startup + model load + {n} photos): "
          f"{res['mcphotos_cli_wall_s']:.1f} s")
    if "mcphotos_vs_reference" in res:
        print(f"  mcphotos / reference:  {res['mcphotos_vs_reference']:.2f}x")
    print(f"  mcphotos / model-only: {res['mcphotos_vs_model_only']:.2f}")
    print(f"  efficiency vs work-conserving bound: {res['efficiency_vs_bound'] * 100:.0f}%")
    print(f"  preprocessing vs open_clip: mean {res['preprocess_mean_abs_diff_255']:.3f}/255, "
          f"worst photo {res['preprocess_worst_abs_diff_255']:.3f}/255")
    f = res["fast_path_fidelity"]
    print(f"  {f['precision']} fast path vs fp32 (BN-recalibrated random S0): min cos {f['min_cos']:.5f}, "
          f"mean {f['mean_cos']:.5f}, top-5 neighbour agreement {f['top5_agreement'] * 100:.1f}% "
          f"(pairwise cos {f['pairwise_cos_min']:.2f}..mean {f['pairwise_cos_mean']:.2f})")
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
