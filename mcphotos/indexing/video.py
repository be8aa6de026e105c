"""Videos: a few frames at fixed fractions of the duration, each ready for the model.

PyAV (FFmpeg) is an optional dependency, ``mcphotos[video]``; nothing here imports it at module
level. The decode is bounded: for each fraction it seeks to the keyframe at or before that
time and decodes from there until one frame comes out, reading at most ``MAX_PACKETS``
packets, so a 4-hour film costs its few frames, never a pass over the file. The frame's
own time (a keyframe's, so often a little before the fraction) is what is stored and shown.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from mcphotos.errors import ImageError
from mcphotos.indexing.imaging import (
    DEFAULT_MAX_PIXELS,
    DecodedImage,
    PreprocessSpec,
    layout_signature,
    phash64,
    preprocess,
)

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi"})
DEFAULT_FRACTIONS = (0.1, 0.5, 0.9)
VIDEO_EXTRA_HINT = "video support needs mcphotos[video] (pip install 'mcphotos[video]')"
MAX_PACKETS = 600  # per seek: a keyframe interval of 20 s at 30 fps; a broken index stops here


def is_video(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def video_support() -> bool:
    """Whether PyAV is installed (checked without importing it)."""
    try:
        return importlib.util.find_spec("av") is not None
    except (ImportError, ValueError):
        return False


@dataclass
class VideoFrame:
    time_s: float  # presentation time of the frame decoded
    image: DecodedImage


@dataclass
class DecodedVideo:
    frames: list[VideoFrame]  # distinct frames, in time order
    duration: float  # seconds
    width: int
    height: int
    taken_at: str | None  # container creation_time, as local naive ISO like EXIF times
    ended_at: str | None  # taken_at + duration

    def representative(self) -> int:
        """Index of the frame nearest the middle: the one vector that stands for the video where
        one per content hash is needed (tags, query by example, similar duplicates)."""
        mid = self.duration / 2
        return min(range(len(self.frames)), key=lambda i: abs(self.frames[i].time_s - mid))


def parse_fractions(text: str) -> tuple[float, ...]:
    """``"10,50,90"`` (percent) -> (0.1, 0.5, 0.9); a bad list raises ValueError."""
    values = tuple(float(p) / 100 for p in text.split(",") if p.strip())
    if not values or any(not 0 <= v <= 1 for v in values):
        raise ValueError("frame positions are percentages of the duration, 0-100, comma-separated")
    return tuple(sorted(set(values)))


def decode_video(path: str | BinaryIO, spec: PreprocessSpec, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                 max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedVideo:
    """The frames at ``fractions`` of the duration of the video at ``path`` (or in a seekable
    binary file); ImageError if unusable."""
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise ImageError(f"unreadable video: {_why(e)}") from None
    with container:
        if not container.streams.video:
            raise ImageError("no video stream")
        stream = container.streams.video[0]
        duration = _duration(container, stream)
        if duration <= 0:
            raise ImageError("the video has no duration (empty or truncated)")
        width, height = stream.codec_context.width, stream.codec_context.height
        if width * height > max_pixels:
            raise ImageError(f"{width}x{height} frames exceed the pixel limit")
        start = _start(stream)
        frames: dict[float, VideoFrame] = {}
        for f in fractions:
            got = _frame_at(container, stream, start + f * duration)
            if got is not None and round(got[0], 3) not in frames:
                frames[round(got[0], 3)] = VideoFrame(round(got[0] - start, 3), _prepare(got[1], spec))
        if not frames:
            raise ImageError("no frame could be decoded")
        taken = _creation_time(container.metadata)
        ended = None
        if taken is not None:
            from datetime import timedelta

            ended = (datetime.fromisoformat(taken) + timedelta(seconds=duration)).isoformat(timespec="seconds")
        rotated = any(f.image.width != width for f in frames.values())
        w, h = (height, width) if rotated else (width, height)
        return DecodedVideo(sorted(frames.values(), key=lambda fr: fr.time_s), duration, w, h, taken, ended)


def frame_image(path: str, time_s: float | None = None) -> Any:
    """The frame at ``time_s`` (default: the middle) as an upright PIL image (contact sheets), or None."""
    try:
        import av

        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            if time_s is None:
                time_s = _duration(container, stream) / 2
            got = _frame_at(container, stream, _start(stream) + time_s)
            return _upright(got[1]) if got else None
    except Exception:  # a sheet shows a grey cell for anything unreadable
        return None


def _frame_at(container: Any, stream: Any, t: float) -> tuple[float, Any] | None:
    """(time, frame) of the first frame decoded after seeking to the keyframe at or before ``t``."""
    import av

    try:
        container.seek(max(0, int(t / stream.time_base)), stream=stream, backward=True, any_frame=False)
    except av.FFmpegError:
        return None
    packets = 0
    try:
        for packet in container.demux(stream):
            packets += 1
            for frame in packet.decode():
                time = float(frame.pts * stream.time_base) if frame.pts is not None else t
                return time, frame
            if packets >= MAX_PACKETS:
                return None
        # The end: flush the decoder for a frame it still holds.
    except (av.FFmpegError, ValueError):
        return None
    return None


def _upright(frame: Any) -> Any:
    from PIL import Image

    img = frame.to_image()
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360  # the display matrix, counter-clockwise
    if rotation == 90:
        img = img.transpose(Image.Transpose.ROTATE_90)
    elif rotation == 180:
        img = img.transpose(Image.Transpose.ROTATE_180)
    elif rotation == 270:
        img = img.transpose(Image.Transpose.ROTATE_270)
    return img


def _prepare(frame: Any, spec: PreprocessSpec) -> DecodedImage:
    img = _upright(frame)
    try:
        colors, detail = layout_signature(img)
        ph: int | None = phash64(img)
    except Exception:
        ph, colors, detail = None, None, None
    return DecodedImage(pixels=preprocess(img, spec), width=img.size[0], height=img.size[1], taken_at=None,
                        phash=ph, colors=colors, detail=detail)


def _start(stream: Any) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def _duration(container: Any, stream: Any) -> float:
    import av

    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return float(container.duration / av.time_base)
    return 0.0


def _creation_time(metadata: dict[str, str]) -> str | None:
    """Container ``creation_time`` (UTC) as a naive local ISO time, as EXIF capture times are."""
    raw = metadata.get("creation_time") or metadata.get("com.apple.quicktime.creationdate")
    if not raw:
        return None
    try:
        t = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.year < 1971:  # 1904-01-01 or 1970-01-01: a camera that wrote zero
        return None
    if t.tzinfo is not None:
        t = t.astimezone().replace(tzinfo=None)
    return t.isoformat(timespec="seconds")


def _why(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__
