"""The vectors of photos and texts, for every feature that needs one outside indexing.

A photo's vector comes from the store when it has the photo (matched by path with unchanged
size and mtime, else by content hash), and is computed with the model otherwise, which is
loaded only then. Text vectors go through the store's text cache, and the model's logit
scale is remembered in the store, so a repeated question needs no model at all. Search,
scoring, captions and export all take this one service instead of the whole library.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcphotos.errors import ImageError
from mcphotos.indexing.hashing import hash_bytes
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.models.encoder import Encoder
from mcphotos.search.nearest import text_vectors
from mcphotos.store.database import Store

EMBED_BATCH = 16  # photos per model call
LOGIT_SCALE_META = "logit_scale"


@dataclass(frozen=True)
class PhotoVector:
    path: str  # as given
    hash: str
    vector: np.ndarray
    from_store: bool  # True when no model was needed


@dataclass(frozen=True)
class Unreadable:
    path: str
    reason: str
    missing: bool = False  # no such file (as opposed to a file that does not decode)


def read_photo(path: str) -> bytes:
    """The bytes of the photo at ``path``; :class:`ImageError` with a short reason otherwise."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except IsADirectoryError:
        raise ImageError("is a directory") from None
    except FileNotFoundError:
        raise ImageError("no such file") from None
    except OSError as e:
        raise ImageError(e.strerror or str(e)) from None


class Vectors:
    def __init__(self, store: Store | None, encoder: Callable[[], Encoder],
                 preprocess: Callable[[], PreprocessSpec]) -> None:
        self.store = store  # None: no store yet, everything is computed
        self._encoder = encoder
        self._preprocess = preprocess

    def photos(self, paths: Sequence[str]) -> dict[str, PhotoVector | Unreadable]:
        """Each photo's unit vector, keyed by the path as given, or why it has none."""
        out: dict[str, PhotoVector | Unreadable] = {}
        pending: list[tuple[str, str, bytes, str]] = []
        for given in dict.fromkeys(paths):
            path = os.path.abspath(os.path.expanduser(given))
            digest = self._known_hash(path)
            data = b""
            if digest is None:
                try:
                    data = read_photo(path)
                except ImageError as e:
                    out[given] = Unreadable(given, e.message, missing=not os.path.isfile(path))
                    continue
                digest = hash_bytes(data)
            stored = self.store.vector_for_hash(digest) if self.store is not None else None
            if stored is not None:
                out[given] = PhotoVector(given, digest, stored, True)
            else:
                pending.append((given, digest, data or Path(path).read_bytes(), path))
        if pending:
            from mcphotos.indexing.raw import decode_file_for_model  # Pillow and the decoders: only to decode
        for start in range(0, len(pending), EMBED_BATCH):
            batch, pixels = [], []
            for given, digest, data, path in pending[start:start + EMBED_BATCH]:
                try:
                    pixels.append(decode_file_for_model(path, data, self._preprocess()).pixels)
                    batch.append((given, digest))
                except ImageError as e:
                    out[given] = Unreadable(given, e.message)
            if batch:
                vecs = self._encoder().encode_images(np.stack(pixels))
                for (given, digest), v in zip(batch, vecs, strict=True):
                    out[given] = PhotoVector(given, digest, np.asarray(v, dtype=np.float32), False)
        return {p: out[p] for p in dict.fromkeys(paths)}

    def _known_hash(self, path: str) -> str | None:
        """The stored content hash of ``path`` when the file is unchanged since it was indexed."""
        if self.store is None:
            return None
        rec = self.store.get_file(path)
        if rec is None or rec.status != "ok" or not rec.hash:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        return rec.hash if (rec.size, rec.mtime_ns) == (st.st_size, st.st_mtime_ns) else None

    def texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts``, from the store's text cache when seen before."""
        encode = lambda ts: self._encoder().encode_texts(ts)  # noqa: E731
        if self.store is None:
            return encode(list(texts)) if texts else np.zeros((0, 0), dtype=np.float32)
        return text_vectors(self.store, texts, encode)

    def logit_scale(self) -> float:
        """The model's softmax temperature, remembered in the store so cached prompts need no model."""
        raw = self.store.get_meta(LOGIT_SCALE_META) if self.store is not None else None
        if raw is not None:
            return float(raw)
        scale = float(self._encoder().logit_scale)
        if self.store is not None:
            try:
                with self.store.transaction():
                    self.store.set_meta(LOGIT_SCALE_META, repr(scale))
            except Exception:  # a busy or read-only store only costs a model load next time
                pass
        return scale
