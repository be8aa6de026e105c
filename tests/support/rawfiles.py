"""Real DNG files built on the spot, for LibRaw (through rawpy) to decode. No mocks.

``make_dng`` writes a little-endian TIFF/DNG by hand: IFD0 is the RAW itself (an RGGB Bayer
mosaic of a picture, 16-bit, uncompressed, with the DNG colour tags LibRaw needs) and a SubIFD
holds the embedded JPEG preview, the way cameras and Adobe's converter lay them out. Writing
the bytes ourselves keeps the fixture independent of any TIFF library's choices.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

_SHORT, _LONG, _RATIONAL, _SRATIONAL, _ASCII, _BYTE = 3, 4, 5, 10, 2, 1
_SIZES = {_BYTE: 1, _ASCII: 1, _SHORT: 2, _LONG: 4, _RATIONAL: 8, _SRATIONAL: 8}


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth, colourful picture (gradients and a few blobs), distinct per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 128 + 110 * np.sin(xx / (width / (2 + seed % 3)) + rng.uniform(0, 6))
    g = 128 + 110 * np.cos(yy / (height / (2 + seed % 4)) + rng.uniform(0, 6))
    b = 128 + 110 * np.sin((xx + yy) / ((width + height) / 5) + rng.uniform(0, 6))
    return Image.fromarray(np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8), "RGB")


def bayer(img: Image.Image, white: int = 4095) -> np.ndarray:
    """An RGGB mosaic (uint16, ``white`` = full scale) of an RGB picture, linearised (gamma 2.2)."""
    lin = (np.asarray(img, dtype=np.float32) / 255.0) ** 2.2
    h, w, _ = lin.shape
    cfa = np.empty((h, w), np.float32)
    cfa[0::2, 0::2] = lin[0::2, 0::2, 0]
    cfa[0::2, 1::2] = lin[0::2, 1::2, 1]
    cfa[1::2, 0::2] = lin[1::2, 0::2, 1]
    cfa[1::2, 1::2] = lin[1::2, 1::2, 2]
    return np.clip(cfa * white, 0, white).astype("<u2")


def _entry(tag: int, typ: int, values: list | bytes | str) -> tuple[int, int, int, bytes]:
    if typ == _ASCII:
        assert isinstance(values, str)
        data = values.encode("ascii") + b"\0"
        count = len(data)
    elif typ == _BYTE:
        data = bytes(values)  # type: ignore[arg-type]
        count = len(data)
    elif typ in (_RATIONAL, _SRATIONAL):
        fmt = "<ii" if typ == _SRATIONAL else "<II"
        data = b"".join(struct.pack(fmt, n, d) for n, d in values)  # type: ignore[misc]
        count = len(values)
    else:
        fmt = "<H" if typ == _SHORT else "<I"
        data = b"".join(struct.pack(fmt, v) for v in values)  # type: ignore[union-attr]
        count = len(values)
    return tag, typ, count, data


class _Tiff:
    """Collects blobs and IFDs, then lays them out: header, blobs, IFDs (each with its far values)."""

    def __init__(self) -> None:
        self.buf = bytearray(b"II*\0\0\0\0\0")

    def blob(self, data: bytes) -> int:
        if len(self.buf) % 2:
            self.buf += b"\0"
        offset = len(self.buf)
        self.buf += data
        return offset

    def ifd(self, entries: list[tuple[int, int, int, bytes]]) -> int:
        entries = sorted(entries)
        if len(self.buf) % 2:
            self.buf += b"\0"
        start = len(self.buf)
        far = start + 2 + 12 * len(entries) + 4
        table = bytearray(struct.pack("<H", len(entries)))
        tail = bytearray()
        for tag, typ, count, data in entries:
            if len(data) <= 4:
                table += struct.pack("<HHI", tag, typ, count) + data.ljust(4, b"\0")
            else:
                table += struct.pack("<HHII", tag, typ, count, far + len(tail))
                tail += data
                if len(tail) % 2:
                    tail += b"\0"
        table += b"\0\0\0\0"  # next IFD: none
        self.buf += table + tail
        return start

    def finish(self, first_ifd: int) -> bytes:
        self.buf[4:8] = struct.pack("<I", first_ifd)
        return bytes(self.buf)


def preview_jpeg(path: Path) -> bytes:
    """The JPEG preview ``make_dng`` embedded in ``path`` (found by its SOI..EOI markers)."""
    data = path.read_bytes()
    start = data.index(b"\xff\xd8\xff")
    return data[start:data.index(b"\xff\xd9", start) + 2]


def make_dng(path: Path, size: tuple[int, int] = (320, 240), preview: tuple[int, int] | None = (160, 120),
             seed: int = 0, taken: str = "2023:07:14 09:30:05", orientation: int = 1,
             preview_seed: int | None = None) -> Path:
    """Write a DNG of ``size`` pixels (even numbers) with an embedded JPEG preview of ``preview``.

    ``taken`` goes into the TIFF DateTime tag, which LibRaw reports as the capture time.
    ``orientation`` is the TIFF Orientation tag (LibRaw's ``flip``). ``preview_seed`` makes the
    preview show another picture than the sensor data, so a test can tell which one was decoded.
    """
    w, h = size
    img = scene(w, h, seed)
    shown = img if preview_seed is None else scene(w, h, preview_seed)
    cfa = bayer(img)
    t = _Tiff()
    raw_at = t.blob(cfa.tobytes())
    sub_entries: list[tuple[int, int, int, bytes]] = []
    if preview is not None:
        buf = io.BytesIO()
        shown.resize(preview, Image.Resampling.BILINEAR).save(buf, "JPEG", quality=92)
        jpeg = buf.getvalue()
        jpeg_at = t.blob(jpeg)
        pw, ph = preview
        sub_entries = [
            _entry(254, _LONG, [1]),  # NewSubFileType: reduced-resolution preview
            _entry(256, _LONG, [pw]), _entry(257, _LONG, [ph]),
            _entry(258, _SHORT, [8, 8, 8]), _entry(259, _SHORT, [7]),  # JPEG
            _entry(262, _SHORT, [6]), _entry(277, _SHORT, [3]),  # YCbCr, 3 samples
            _entry(273, _LONG, [jpeg_at]), _entry(278, _LONG, [ph]), _entry(279, _LONG, [len(jpeg)]),
            _entry(513, _LONG, [jpeg_at]), _entry(514, _LONG, [len(jpeg)]),  # JPEGInterchangeFormat
        ]
    sub_at = t.ifd(sub_entries) if sub_entries else None
    entries = [
        _entry(254, _LONG, [0]),  # the main image
        _entry(256, _LONG, [w]), _entry(257, _LONG, [h]),
        _entry(258, _SHORT, [16]), _entry(259, _SHORT, [1]),  # uncompressed
        _entry(262, _SHORT, [32803]),  # CFA
        _entry(271, _ASCII, "mcphotos"), _entry(272, _ASCII, "test camera"),
        _entry(273, _LONG, [raw_at]), _entry(274, _SHORT, [orientation]),
        _entry(277, _SHORT, [1]), _entry(278, _LONG, [h]), _entry(279, _LONG, [cfa.nbytes]),
        _entry(284, _SHORT, [1]), _entry(306, _ASCII, taken),
        _entry(33421, _SHORT, [2, 2]), _entry(33422, _BYTE, [0, 1, 1, 2]),  # CFA repeat and RGGB
        _entry(50706, _BYTE, [1, 4, 0, 0]), _entry(50707, _BYTE, [1, 1, 0, 0]),  # DNG version 1.4
        _entry(50708, _ASCII, "mcphotos test camera"),
        _entry(50710, _BYTE, [0, 1, 2]), _entry(50711, _SHORT, [1]),  # CFA plane colours, layout
        _entry(50714, _LONG, [0]), _entry(50717, _LONG, [4095]),  # black and white level
        # ColorMatrix1 (XYZ -> camera) of a camera whose raw RGB is sRGB-linear, D65 illuminant
        _entry(50721, _SRATIONAL, [(v, 10000) for v in
                                   (32406, -15372, -4986, -9689, 18758, 415, 557, -2040, 10570)]),
        _entry(50728, _RATIONAL, [(1, 1), (1, 1), (1, 1)]),  # AsShotNeutral: no white-balance shift
        _entry(50778, _SHORT, [21]),  # CalibrationIlluminant1: D65
    ]
    if sub_at is not None:
        entries.append(_entry(330, _LONG, [sub_at]))  # SubIFDs
    first = t.ifd(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(t.finish(first))
    return path
