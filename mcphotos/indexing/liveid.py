"""Apple Live Photo content identifiers: the UUID that ties a still to its video when names differ.

The iPhone writes the same identifier into both halves: the still's Apple MakerNote (tag 0x0011,
``ContentIdentifier``, which exiftool also calls MediaGroupUUID) and the video's QuickTime metadata
(``com.apple.quicktime.content.identifier``, keys + ilst under ``moov/meta``; FFmpeg writes them
under ``moov/udta/meta``). Both readers read headers only, a bounded number of bytes, and return
None for anything unexpected: a file that is not what it seems simply has no identifier.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

QT_KEY = b"com.apple.quicktime.content.identifier"
MAX_MOOV = 16 << 20  # a Live Photo's moov is a few KB; a huge one is no Live Photo of ours
_MAKERNOTE = 0x927C
_EXIF_IFD = 0x8769
_APPLE_CONTENT_ID = 0x0011


def _atoms(data: bytes, start: int = 0, end: int | None = None) -> list[tuple[bytes, int, int]]:
    """(type, content start, content end) of the atoms in ``data[start:end]``."""
    end = len(data) if end is None else end
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos:pos + 8])
        head = 8
        if size == 1:
            if pos + 16 > end:
                break
            size = struct.unpack(">Q", data[pos + 8:pos + 16])[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            break
        out.append((kind, pos + head, pos + size))
        pos += size
    return out


def _read_moov(f: BinaryIO) -> bytes | None:
    """The moov atom's content, found by skipping the top-level atoms (mdat is never read)."""
    pos = 0
    while True:
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack(">I4s", head[:8])
        hlen = 8
        if size == 1 and len(head) == 16:
            size, hlen = struct.unpack(">Q", head[8:16])[0], 16
        if kind == b"moov":
            if size == 0 or size - hlen > MAX_MOOV:
                return None
            f.seek(pos + hlen)
            body = f.read(size - hlen)
            return body if len(body) == size - hlen else None
        if size < hlen:
            return None
        pos += size


def video_content_id(path: str) -> str | None:
    """The content identifier in a QuickTime/MP4 file's ``moov/meta`` (keys + ilst), if any."""
    try:
        with open(path, "rb") as f:
            moov = _read_moov(f)
    except OSError:
        return None
    if moov is None:
        return None
    top = _atoms(moov)
    # Apple writes moov/meta; other muxers (FFmpeg) moov/udta/meta.
    metas = [(s, e) for k, s, e in top if k == b"meta"]
    metas += [(s, e) for k, us, ue in top if k == b"udta" for k2, s, e in _atoms(moov, us, ue) if k2 == b"meta"]
    for start, end in metas:
        # QuickTime's meta has no version/flags; the ISO flavour has 4 bytes of them first.
        if moov[start + 4:start + 8] not in (b"hdlr", b"keys", b"ilst"):
            start += 4
        children = {k: (s, e) for k, s, e in _atoms(moov, start, end)}
        if b"keys" not in children or b"ilst" not in children:
            continue
        index = _key_index(moov, *children[b"keys"])
        if index is None:
            continue
        for item, s, e in _atoms(moov, *children[b"ilst"]):
            if struct.unpack(">I", item)[0] != index:
                continue
            for sub, ds, de in _atoms(moov, s, e):
                if sub == b"data" and de - ds > 8:
                    return moov[ds + 8:de].decode("utf-8", "replace").strip("\0 ") or None
    return None


def _key_index(data: bytes, start: int, end: int) -> int | None:
    """The 1-based index of :data:`QT_KEY` in a ``keys`` atom."""
    if end - start < 8:
        return None
    count = struct.unpack(">I", data[start + 4:start + 8])[0]
    pos = start + 8
    for i in range(1, count + 1):
        if pos + 8 > end:
            return None
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        if size < 8 or pos + size > end:
            return None
        if data[pos + 8:pos + size] == QT_KEY:
            return i
        pos += size
    return None


def makernote_content_id(note: bytes) -> str | None:
    """Tag 0x0011 of an Apple MakerNote (``Apple iOS\\0``, version, byte order, IFD at offset 14)."""
    if not note.startswith(b"Apple iOS\0") or len(note) < 16:
        return None
    order = {b"MM": ">", b"II": "<"}.get(note[12:14])
    if order is None:
        return None
    count = struct.unpack(order + "H", note[14:16])[0]
    for i in range(count):
        at = 16 + 12 * i
        if at + 12 > len(note):
            return None
        tag, typ, n, value = struct.unpack(order + "HHI4s", note[at:at + 12])
        if tag != _APPLE_CONTENT_ID or typ != 2:  # ASCII
            continue
        raw = value[:n] if n <= 4 else note[struct.unpack(order + "I", value)[0]:][:n]
        return raw.split(b"\0")[0].decode("ascii", "replace").strip() or None
    return None


def still_content_id(path: str) -> str | None:
    """The content identifier in a HEIC/JPEG's Apple MakerNote, if any (reads the header only)."""
    from PIL import Image

    from mcphotos.indexing.imaging import register_plugins

    try:
        with Image.open(path, formats=register_plugins()) as img:
            note = img.getexif().get_ifd(_EXIF_IFD).get(_MAKERNOTE)
    except Exception:  # unreadable or odd EXIF: no identifier
        return None
    return makernote_content_id(note) if isinstance(note, bytes) else None
