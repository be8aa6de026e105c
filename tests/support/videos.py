"""Short real videos made with PyAV (FFmpeg): tiny frames, a few seconds, fast to write."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

# Codec per container: what each format carries in the wild (and PyAV's wheels can encode).
CODECS = {".mp4": "libx264", ".mov": "libx264", ".m4v": "libx264", ".mkv": "libx264", ".webm": "libvpx",
          ".avi": "mpeg4"}


def make_video(path: Path, scenes: Sequence[np.ndarray | tuple[int, int, int]], seconds_per_scene: float = 1.0,
               fps: int = 10, size: tuple[int, int] = (64, 48), creation_time: str | None = None,
               gop: int | None = None) -> Path:
    """A video showing each of ``scenes`` (an RGB colour or an (h, w, 3) uint8 image) in turn.

    ``gop`` is the keyframe interval in frames (default: one keyframe per scene), so a seek
    to any time lands on the scene shown then.
    """
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    per = max(1, round(seconds_per_scene * fps))
    with av.open(str(path), "w") as out:
        if creation_time:
            out.metadata["creation_time"] = creation_time
        stream = out.add_stream(CODECS[path.suffix.lower()], rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.codec_context.gop_size = gop or per
        if path.suffix.lower() != ".avi":
            stream.codec_context.time_base = Fraction(1, fps)
        i = 0
        for scene in scenes:
            img = scene if isinstance(scene, np.ndarray) else np.full((h, w, 3), scene, dtype=np.uint8)
            for _ in range(per):
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img, dtype=np.uint8), format="rgb24")
                frame.pts = i
                i += 1
                for packet in stream.encode(frame):
                    out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path
