"""Tagging throughput: N stored photos against a 100-label set, excluding model load.

    python bench/tag_throughput.py                  # 10,000 photos, MobileCLIP2-S0 with random weights
    python bench/tag_throughput.py --weights mobileclip2_s0.pt --photos 50000

The store is filled with synthetic unit vectors (and one empty file per photo, so the run sees
real paths); the label set is the first 100 labels of the shipped sets, with their own prompts
or the template ensemble. Random weights run exactly the compute of trained ones.

Reported: model load; the first tagging run (it encodes the prompts, then caches them in the
store); a second run in a fresh Library (all prompts cached: no model load at all).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcphotos.library import Library
from mcphotos.store.database import FileRecord, ImageRecord
from mcphotos.tagging.labels import LabelSet, load_label_file, shipped_sets
from mcphotos.tagging.tagger import TagOptions


def hundred_labels() -> LabelSet:
    labels = [lb for s in shipped_sets() for lb in load_label_file(s.path).labels][:100]
    return LabelSet("bench100", "shipped sets", tuple(labels))


def random_checkpoint(model: str, path: Path) -> Path:
    import open_clip
    import torch

    torch.manual_seed(0)
    torch.save(open_clip.create_model(model, pretrained=None).state_dict(), path)
    return path


def fill_store(lib: Library, n: int, dim: int, photos_dir: Path) -> None:
    rng = np.random.default_rng(0)
    store = lib.store()
    store.update_model_identity(dim=dim)
    photos_dir.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, 2000):
        count = min(2000, n - start)
        vecs = rng.normal(size=(count, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        files = []
        for i in range(count):
            p = photos_dir / f"p{start + i:06d}.jpg"
            p.touch()
            files.append(FileRecord(str(p), 0, 0, f"{start + i:064x}", "ok"))
        with store.transaction():
            store.put_images(ImageRecord(f.hash or "", v) for f, v in zip(files, vecs, strict=True))
            store.put_files(files)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=int, default=10_000)
    ap.add_argument("--model", default="MobileCLIP2-S0")
    ap.add_argument("--weights", help="checkpoint (default: random weights of --model)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    label_set = hundred_labels()
    with tempfile.TemporaryDirectory() as tmp:
        tmpdir = Path(tmp)
        weights = args.weights or str(random_checkpoint(args.model, tmpdir / "random.pt"))
        lib = Library(home=tmpdir / "home", model=args.model, weights=weights)
        t0 = time.perf_counter()
        engine = lib.engine()
        load = time.perf_counter() - t0
        fill_store(lib, args.photos, engine.dim, tmpdir / "photos")

        t0 = time.perf_counter()
        first = lib.tag(label_set, options=TagOptions())
        first_s = time.perf_counter() - t0
        lib.close()

        fresh = Library(home=tmpdir / "home", model=args.model, weights=weights)
        t0 = time.perf_counter()
        second = fresh.tag(label_set, options=TagOptions())
        second_s = time.perf_counter() - t0
        single = fresh.tag(label_set, options=TagOptions(mode="single"))
        loaded = fresh._engine is not None
        fresh.close()

    print(f"{args.photos} photos x {len(label_set)} labels ({first.prompts} prompts), model {args.model}"
          f"{'' if args.weights else ' (random weights)'}")
    print(f"model load:                          {load:6.2f} s (excluded below)")
    print(f"first run, encoding {first.encoded_prompts:4d} prompts:     {first_s:6.2f} s")
    print(f"re-run, prompts cached (no model):   {second_s:6.2f} s  (model loaded: {loaded}; "
          f"{second.encoded_prompts} prompts encoded)")
    print(f"single-label re-run:                 {single.elapsed:6.2f} s")
    print(f"photos tagged: {len(second.photos)}")


if __name__ == "__main__":
    main()
