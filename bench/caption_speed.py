"""Time `mcphotos caption` per photo on this machine's CPU for the default CoCa architecture.

coca_ViT-L-14 (the architecture of every MobileCLIP2 CoCa) with random weights runs the same
compute as the real checkpoint. Every caption is forced to the full length (no early end),
so the numbers are the cost of a --max-tokens caption. Usage:

    PYTHONPATH=. python bench/caption_speed.py [--tokens 20] [--threads N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import open_clip
import torch

from mcphotos.models.coca import ARCH
from mcphotos.models.cocagen import Captioner, Decoding


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=20)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    model = open_clip.create_model(ARCH, pretrained=None)
    with torch.no_grad():
        proj = model.text_decoder.text_projection  # left as torch.empty by open_clip
        proj.normal_(std=proj.shape[0] ** -0.5)
    cap = Captioner.from_model(model, open_clip.get_tokenizer(ARCH), "cpu", "fp32")
    print(f"built {ARCH} (random weights) in {time.perf_counter() - t0:.1f}s, {torch.get_num_threads()} threads")
    pixels = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    n = args.tokens
    runs = [
        ("greedy", Decoding(method="greedy", max_tokens=n, min_tokens=n - 1)),
        ("beam, width 4, 1 caption", Decoding(method="beam", candidates=1, max_tokens=n, min_tokens=n - 1)),
        ("top-p, 5 candidates", Decoding(method="top-p", candidates=5, max_tokens=n, min_tokens=n - 1)),
    ]
    with torch.inference_mode():
        x = torch.zeros(1, 3, 224, 224)
        t0 = time.perf_counter()
        model._encode_image(x)
        print(f"image encoder alone: {time.perf_counter() - t0:.2f}s")
    for name, d in runs:
        t0 = time.perf_counter()
        out = cap.generate(pixels, d)
        dt = time.perf_counter() - t0
        print(f"{name:28s} {n} tokens: {dt:6.2f}s per photo ({len(out)} captions)")


if __name__ == "__main__":
    main()
