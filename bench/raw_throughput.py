"""RAW indexing throughput: the embedded preview vs a half-size demosaic, side by side in one run.

    PYTHONPATH=. python bench/raw_throughput.py [--n 12] [--megapixels 12] [--preview 1620] [--batch-size 16]

Builds two folders of DNGs with the same sensor data (``--megapixels``, an RGGB mosaic, 16-bit,
uncompressed, as tests/support/rawfiles.py writes them): in ``preview/`` each carries a JPEG preview
whose long side is ``--preview`` px (cameras embed 1620 px (Nikon) up to full size (Canon)); in
``demosaic/`` the preview is 160 px, below twice the model input, so mcphotos demosaics instead.

Measured on both folders:

- decode-only: ``raw.decode_raw_for_model`` in this process, median ms per file (wall);
- index: ``Library.index`` on a cold store with MobileCLIP2-S0 (random weights: the same compute
  as the pretrained model) already loaded, in img/s, the whole pipeline (hash, decode workers, model).

Whole-run figures, medians of ``--repeat`` runs; the two corpora alternate within each repeat.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.rawfiles import make_dng  # noqa: E402


def build(folder: Path, n: int, size: tuple[int, int], preview: tuple[int, int]) -> list[Path]:
    return [make_dng(folder / f"IMG_{i:04d}.dng", size=size, preview=preview, seed=i) for i in range(n)]


def decode_ms(files: list[Path], spec) -> float:
    from mcphotos.indexing.raw import decode_raw_for_model

    times = []
    for p in files:
        data = p.read_bytes()
        t0 = time.perf_counter()
        decode_raw_for_model(data, spec)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def index_img_s(engine, weights: Path, folder: Path, n: int, batch: int) -> float:
    from mcphotos.indexing.indexer import IndexOptions
    from mcphotos.library import Library

    with tempfile.TemporaryDirectory() as home:
        lib = Library(home=home, model="MobileCLIP2-S0", weights=str(weights),
                      engine_factory=lambda: engine, preprocess=engine.preprocess)
        t0 = time.perf_counter()
        report = lib.index([str(folder)], options=IndexOptions(batch_size=batch))
        elapsed = time.perf_counter() - t0
        lib.close()
    assert report.failed == 0 and report.new == n, report.skipped
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=12, help="DNGs per folder")
    ap.add_argument("--megapixels", type=float, default=12.0)
    ap.add_argument("--preview", type=int, default=1620, help="long side of the big preview, px")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import open_clip
    import torch

    from mcphotos.models.clip import load_engine
    from mcphotos.models.registry import resolve_model

    w = int((args.megapixels * 1e6 * 4 / 3) ** 0.5) // 2 * 2
    h = w * 3 // 4 // 2 * 2
    pw = args.preview
    tmp = Path(tempfile.mkdtemp(prefix="mcphotos-raw-bench-"))
    t0 = time.perf_counter()
    big = build(tmp / "preview", args.n, (w, h), (pw, pw * 3 // 4))
    small = build(tmp / "demosaic", args.n, (w, h), (160, 120))
    size_mb = sum(p.stat().st_size for p in big) / len(big) / 1e6
    print(f"built 2 x {args.n} DNGs of {w}x{h} ({size_mb:.0f} MB each) in {time.perf_counter() - t0:.0f}s, in {tmp}")

    torch.manual_seed(0)
    weights = tmp / "s0-random.pt"
    torch.save(open_clip.create_model("MobileCLIP2-S0", pretrained=None).state_dict(), weights)
    engine = load_engine(resolve_model("MobileCLIP2-S0", weights=str(weights)))
    spec = engine.preprocess
    runs: dict[str, list[float]] = {k: [] for k in ("dec_preview", "dec_demosaic", "idx_preview", "idx_demosaic")}
    for _ in range(args.repeat):
        runs["dec_preview"].append(decode_ms(big, spec))
        runs["dec_demosaic"].append(decode_ms(small, spec))
        runs["idx_preview"].append(index_img_s(engine, weights, tmp / "preview", args.n, args.batch_size))
        runs["idx_demosaic"].append(index_img_s(engine, weights, tmp / "demosaic", args.n, args.batch_size))
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, {engine.precision}, "
          f"batch {args.batch_size}, median of {args.repeat}")
    print(f"  decode-only, preview {pw}px:      {med['dec_preview']:8.1f} ms/file")
    print(f"  decode-only, half-size demosaic: {med['dec_demosaic']:8.1f} ms/file   "
          f"({med['dec_demosaic'] / med['dec_preview']:.1f}x the preview's)")
    print(f"  index, preview:                  {med['idx_preview']:8.2f} img/s")
    print(f"  index, demosaic:                 {med['idx_demosaic']:8.2f} img/s   "
          f"(preview is {med['idx_preview'] / med['idx_demosaic']:.1f}x faster)")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
