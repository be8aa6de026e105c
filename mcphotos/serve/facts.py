"""What the pages show about a photo, read from the store by content hash (SQL only, no model)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from mcphotos.store.database import Store, decode_path
from mcphotos.store.sql import chunks

# Format names by extension: what a person recognizes, without opening the file.
_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".png": "PNG", ".webp": "WebP", ".gif": "GIF",
            ".tif": "TIFF", ".tiff": "TIFF", ".bmp": "BMP", ".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF",
            ".mpo": "MPO", ".dng": "DNG", ".cr2": "CR2", ".cr3": "CR3", ".nef": "NEF", ".arw": "ARW",
            ".raf": "RAF", ".orf": "ORF", ".rw2": "RW2", ".pef": "PEF", ".srw": "SRW", ".mp4": "MP4",
            ".mov": "MOV", ".m4v": "M4V", ".webm": "WebM", ".mkv": "MKV", ".avi": "AVI"}


def file_format(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return _FORMATS.get(ext, ext.lstrip(".").upper() or "?")


@dataclass(frozen=True)
class PhotoFacts:
    hash: str
    paths: tuple[str, ...]  # the ok files showing it, sorted
    width: int | None
    height: int | None
    taken: str | None
    size: int | None  # of the first path
    duration: float | None = None  # a video's length (None for photos)


def photo_facts(store: Store, hashes: Sequence[str]) -> dict[str, PhotoFacts]:
    """Facts per indexed hash; hashes the store does not have are left out."""
    rows: dict[str, tuple] = {}
    files: dict[str, list[tuple[str, int]]] = {}
    for part, marks in chunks(list(dict.fromkeys(hashes))):
        q = f"SELECT hash, width, height, taken_at, duration FROM images WHERE hash IN ({marks})"
        for r in store.conn.execute(q, part):
            rows[r[0]] = r
        q = f"SELECT hash, path, size FROM files WHERE status = 'ok' AND hash IN ({marks})"
        for h, p, size in store.conn.execute(q, part):
            files.setdefault(h, []).append((decode_path(p), size))
    out: dict[str, PhotoFacts] = {}
    for h, r in rows.items():
        found = sorted(files.get(h, []))
        out[h] = PhotoFacts(h, tuple(p for p, _ in found), r[1], r[2], r[3], found[0][1] if found else None, r[4])
    return out


def existing_path(facts: PhotoFacts) -> str | None:
    """The first of the photo's indexed paths that is still a file."""
    return next((p for p in facts.paths if os.path.isfile(p)), None)


def best_caption(store: Store, digest: str) -> str | None:
    """The stored caption ranked first by this store's model, the newest if several captioners wrote one."""
    row = store.conn.execute("SELECT text FROM captions WHERE hash = ? ORDER BY rank, created_at DESC LIMIT 1",
                             (digest,)).fetchone()
    return row[0] if row else None

