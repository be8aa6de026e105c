"""Streaming content hash: the identity of a photo, independent of its name or place."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

# BLAKE2b is faster than SHA-256 in pure software and is in the standard library;
# 160 bits make accidental collisions irrelevant for a personal library.
HASH_NAME = "blake2b-160"
_CHUNK = 1 << 20


def new_hasher() -> hashlib.blake2b:
    return hashlib.blake2b(digest_size=20)


def hash_bytes(data: bytes) -> str:
    h = new_hasher()
    h.update(data)
    return h.hexdigest()


def hash_stream(f: BinaryIO) -> str:
    h = new_hasher()
    while chunk := f.read(_CHUNK):
        h.update(chunk)
    return h.hexdigest()


def hash_file(path: str | os.PathLike[str] | bytes) -> str:
    with open(path, "rb") as f:
        return hash_stream(f)
