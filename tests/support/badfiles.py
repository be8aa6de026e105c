"""A zoo of bad, odd and hostile inputs, generated on the spot.

``make_zoo(root)`` writes every case into ``root`` and returns {name: Case}. A case either
must index fine (``ok=True``) or must fail with exactly one ``skipping PATH: reason`` line
(``ok=False``). Cases whose outcome is not a file under ``root`` (a FIFO, a directory named
like a photo) are marked ``kind="walk"``.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from mcphotos.indexing.imaging import register_plugins

register_plugins()  # HEIF save support for the fixtures


@dataclass
class Case:
    path: Path
    ok: bool  # True: must be indexed; False: must be skipped with one line
    reason: str = ""  # a fragment the skip reason must contain (lower case)
    kind: str = "file"


def _rgb(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    arr = np.stack([(xx * 255 // w), (yy * 255 // h), rng.integers(0, 255, (h, w))], axis=-1)
    return Image.fromarray(arr.astype("uint8"), "RGB")


def _bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    b = io.BytesIO()
    img.save(b, fmt, **kw)
    return b.getvalue()


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header declaring 10 gigapixels, with a tiny body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def malformed_exif_jpeg(seed: int) -> bytes:
    data = _bytes(_rgb(seed), "JPEG")
    # An APP1 'Exif' segment whose TIFF header and IFD offsets point nowhere.
    bad = b"Exif\x00\x00MM\x00\x2a\xff\xff\xff\xf0garbage"
    seg = b"\xff\xe1" + struct.pack(">H", len(bad) + 2) + bad
    return data[:2] + seg + data[2:]


def make_zoo(root: Path) -> dict[str, Case]:
    root.mkdir(parents=True, exist_ok=True)
    cases: dict[str, Case] = {}

    def put(name: str, data: bytes, ok: bool, reason: str = "") -> None:
        p = root / name
        p.write_bytes(data)
        cases[name] = Case(p, ok, reason)

    jpeg = _bytes(_rgb(1), "JPEG", quality=90)
    png = _bytes(_rgb(2), "PNG")
    put("empty.jpg", b"", False, "empty")
    put("text.jpg", b"hello, I am not a photo\n" * 20, False, "not a supported image")
    put("png-named.jpg", png, True)
    put("truncated.jpg", jpeg[: len(jpeg) // 2], False, "decode")
    put("truncated.png", png[: len(png) // 2], False, "")
    put("bomb.png", bomb_png(), False, "too large")
    put("cmyk.jpg", _bytes(_rgb(3).convert("CMYK"), "JPEG"), True)
    grey16 = Image.fromarray((np.linspace(0, 65535, 96 * 72).reshape(72, 96)).astype(np.uint16))
    put("grey16.png", _bytes(grey16, "PNG"), True)
    pal = _rgb(4).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    put("palette-transparent.png", _bytes(pal, "PNG", transparency=0), True)
    frames = [_rgb(10 + i) for i in range(3)]
    put("animated.gif", _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:]), True)
    put("animated.webp", _bytes(frames[0], "WEBP", save_all=True, append_images=frames[1:]), True)
    put("bad-exif.jpg", malformed_exif_jpeg(5), True)
    put("photo.heic", _bytes(_rgb(6), "HEIF"), True)
    heic = _bytes(_rgb(7), "HEIF")
    put("corrupt.heic", heic[:40] + b"\x00" * 64, False, "")
    put("photo.avif", _bytes(_rgb(8), "AVIF"), True)
    put("eps-named.jpg", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", False,
        "not a supported image")
    put("svg-named.png", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', False,
        "not a supported image")
    put("truncated.webp", _bytes(_rgb(9), "WEBP")[:60], False, "")
    put("truncated.tiff", _bytes(_rgb(11), "TIFF")[:200], False, "")
    put("bad-header.bmp", b"BM" + b"\xff" * 60, False, "")
    put("garbage-after.jpg", jpeg + os.urandom(512), True)
    put("UPPERCASE.JPEG", _bytes(_rgb(12), "JPEG"), True)
    put("tiny-1x1.png", _bytes(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"), True)
    put("panorama.jpg", _bytes(_rgb(13, (1200, 60)), "JPEG"), True)
    put("rgba.webp", _bytes(_rgb(14).convert("RGBA"), "WEBP"), True)
    # Names that are hard to print or pipe.
    weird = os.fsdecode(b"caf\xe9 non-utf8.jpg")
    (root / weird).write_bytes(_bytes(_rgb(15), "JPEG"))
    cases["non-utf8"] = Case(root / weird, True)
    (root / "new\nline.png").write_bytes(_bytes(_rgb(16), "PNG"))
    cases["newline"] = Case(root / "new\nline.png", True)
    # Things that are not regular files.
    (root / "dir.jpg").mkdir()
    cases["dir.jpg"] = Case(root / "dir.jpg", True, kind="walk")
    os.mkfifo(root / "fifo.jpg")
    cases["fifo.jpg"] = Case(root / "fifo.jpg", False, "not a regular file")
    os.symlink("loop.jpg", root / "loop.jpg")
    cases["loop.jpg"] = Case(root / "loop.jpg", False, "")
    os.symlink(root / "does-not-exist.jpg", root / "dangling.jpg")
    cases["dangling.jpg"] = Case(root / "dangling.jpg", False, "dangling")
    (root / "sub").mkdir()
    os.symlink("..", root / "sub" / "up")  # a directory loop
    cases["dirloop"] = Case(root / "sub" / "up", True, kind="walk")
    return cases
