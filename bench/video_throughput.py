"""Video indexing throughput: frames embedded per second, and what a longer video costs.

    python bench/video_throughput.py [--videos 12] [--seconds 20] [--size 1280x720] [--frames 10,50,90]

Makes ``--videos`` H.264 MP4s with PyAV (moving noise over gradients, a keyframe every 2 s, 30 fps),
then measures, side by side in one run:

- decode-only: ``decode_video`` (seek to the keyframe at each fraction, decode one frame, preprocess),
  one process, frames/s and ms per video;
- mcphotos: ``Library.index`` of the folder on a cold store with MobileCLIP2-S0 (random weights: the
  compute is the pretrained model's), model already loaded: frames/s and videos/s;
- length: decode-only of one video ``--long-factor`` times longer, to show the cost does not grow
  with the duration (the decode reads a few keyframes, never the whole file).
Each figure is the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_video(path: Path, seconds: float, size: tuple[int, int], fps: int = 30, seed: int = 0) -> Path:
    import av

    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // w), (yy * 255 // h), ((xx + yy) * 127 // (w + h))], axis=-1).astype(np.int16)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = 2 * fps
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"preset": "ultrafast"}
        for i in range(int(seconds * fps)):
            shift = np.roll(base, i * 4, axis=1)
            noise = rng.integers(-20, 20, (-(-h // 8), -(-w // 8), 1), dtype=np.int16).repeat(8, 0).repeat(8, 1)
            noise = noise[:h, :w]
            img = np.clip(shift + noise, 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def random_weights(path: Path) -> Path:
    """A MobileCLIP2-S0 checkpoint with random weights: the same compute as the pretrained one."""
    import open_clip
    import torch

    torch.manual_seed(0)
    torch.save(open_clip.create_model("MobileCLIP2-S0", pretrained=None).state_dict(), path)
    return path


def decode_all(files: list[Path], fractions: tuple[float, ...]) -> tuple[float, int]:
    from mcphotos.indexing.video import decode_video
    from mcphotos.models.clip import preprocess_spec_for
    from mcphotos.models.registry import resolve_model

    spec = preprocess_spec_for(resolve_model("MobileCLIP2-S0"))
    t = time.perf_counter()
    frames = sum(len(decode_video(str(f), spec, fractions).frames) for f in files)
    return time.perf_counter() - t, frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--frames", default="10,50,90", help="percent of the duration")
    ap.add_argument("--long-factor", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from mcphotos.indexing.indexer import IndexOptions
    from mcphotos.indexing.video import parse_fractions
    from mcphotos.library import Library
    from mcphotos.models.clip import load_engine
    from mcphotos.models.registry import resolve_model

    fractions = parse_fractions(args.frames)
    w, h = (int(x) for x in args.size.split("x"))
    tmp = Path(tempfile.mkdtemp(prefix="mcphotos-bench-video-"))
    try:
        corpus = tmp / "videos"
        corpus.mkdir()
        t = time.perf_counter()
        files = [make_video(corpus / f"v{i:02d}.mp4", args.seconds, (w, h), seed=i) for i in range(args.videos)]
        long_file = make_video(tmp / "long.mp4", args.seconds * args.long_factor, (w, h), seed=99)
        made = time.perf_counter() - t
        decode = [decode_all(files, fractions) for _ in range(args.repeat)]
        long = [decode_all([long_file], fractions)[0] for _ in range(args.repeat)]
        weights = random_weights(tmp / "s0.pt")
        engine = load_engine(resolve_model("MobileCLIP2-S0", weights=str(weights)))
        index_s, frames = [], 0
        for r in range(args.repeat):
            lib = Library(home=tmp / f"home{r}", model="MobileCLIP2-S0", weights=str(weights),
                          engine_factory=lambda: engine)
            t = time.perf_counter()
            rep = lib.index([str(corpus)], options=IndexOptions(frames=fractions))
            index_s.append(time.perf_counter() - t)
            frames = lib.store().conn.execute("SELECT COUNT(*) FROM video_frames").fetchone()[0]
            assert rep.new == args.videos, rep
            lib.close()
        dec_s = statistics.median(d[0] for d in decode)
        dec_frames = decode[0][1]
        res = {
            "videos": args.videos, "seconds_each": args.seconds, "size": args.size, "frames_per_video": len(fractions),
            "corpus_mb": round(sum(f.stat().st_size for f in files) / 1e6, 1), "made_in_s": round(made, 1),
            "decode_only_frames_per_s": round(dec_frames / dec_s, 1),
            "decode_only_ms_per_video": round(1000 * dec_s / args.videos, 1),
            "index_frames_per_s": round(frames / statistics.median(index_s), 1),
            "index_videos_per_s": round(args.videos / statistics.median(index_s), 2),
            "long_video_s": args.seconds * args.long_factor,
            "long_video_mb": round(long_file.stat().st_size / 1e6, 1),
            "long_video_decode_ms": round(1000 * statistics.median(long), 1),
        }
        print(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
