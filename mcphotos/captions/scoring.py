"""Image-text agreement: cosine similarity, CLIPScore, and rankings of several captions.

- ``cosine``: the dot product of the L2-normalized MobileCLIP2 embeddings, in [-1, 1].
- ``clipscore``: Hessel et al. 2021, ``2.5 * max(cosine, 0)``, so numbers compare with the
  literature (which reports it x100).
- ``probability`` (rankings only): softmax over the captions of ``logit_scale * cosine``,
  the model's own temperature, i.e. the zero-shot classification the model was trained for.

A photo whose content hash is in the store reuses its stored embedding; any other photo is
decoded and embedded on the fly (and not added to the store: scoring never changes the index).
Caption embeddings go through the store's text cache, and the logit scale is remembered in
the store's meta table, so a repeated question is answered without loading the model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from mcphotos.errors import ImageError, UsageError
from mcphotos.vectors import PhotoVector, Vectors

CLIPSCORE_WEIGHT = 2.5
BATCH = 32  # pairs per model call in batch mode


def clip_score(cosine: float) -> float:
    """CLIPScore (Hessel et al. 2021): ``w * max(cos, 0)`` with ``w = 2.5``."""
    return CLIPSCORE_WEIGHT * max(float(cosine), 0.0)


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


@dataclass(frozen=True)
class PairScore:
    path: str
    caption: str
    cosine: float
    clipscore: float
    hash: str
    source: str | None = None  # where the caption came from (--from-metadata), else None

    def record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cosine": round(self.cosine, 6), "clipscore": round(self.clipscore, 6),
                               "path": self.path, "caption": self.caption, "hash": self.hash}
        if self.source is not None:
            out["source"] = self.source
        return out


@dataclass(frozen=True)
class RankedCaption:
    rank: int  # 1 = best
    caption: str
    cosine: float
    clipscore: float
    probability: float

    def record(self, path: str) -> dict[str, Any]:
        return {"rank": self.rank, "probability": round(self.probability, 6), "cosine": round(self.cosine, 6),
                "clipscore": round(self.clipscore, 6), "caption": self.caption, "path": path}


@dataclass(frozen=True)
class PairError:
    """A pair that could not be scored (unreadable photo): reported, never fatal to a batch."""

    path: str
    caption: str
    reason: str


class Scorer:
    """Scores photos against captions: vectors from :class:`mcphotos.vectors.Vectors`."""

    def __init__(self, vectors: Vectors) -> None:
        self.vectors = vectors

    def photo_vectors(self, paths: Sequence[str]) -> dict[str, PhotoVector | PairError]:
        """Embedding of each photo: from the store by content hash, else computed now."""
        return {p: v if isinstance(v, PhotoVector) else PairError(p, "", v.reason)
                for p, v in self.vectors.photos(paths).items()}

    def text_vectors(self, captions: Sequence[str]) -> np.ndarray:
        return self.vectors.texts(list(captions))

    def logit_scale(self) -> float:
        return self.vectors.logit_scale()

    # -- questions ----------------------------------------------------------------------------

    def score(self, path: str, caption: str) -> PairScore:
        """One photo against one caption; raises :class:`ImageError` if the photo is unreadable."""
        result = next(iter(self.score_pairs([(path, caption)])))
        if isinstance(result, PairError):
            raise ImageError(f"cannot read {path}: {result.reason}")
        return result

    def rank(self, path: str, captions: Sequence[str]) -> list[RankedCaption]:
        """Several captions for one photo, best first, with softmax probabilities."""
        if not captions:
            raise UsageError("give at least one caption")
        photo = self.photo_vectors([path])[path]
        if isinstance(photo, PairError):
            raise ImageError(f"cannot read {path}: {photo.reason}")
        cosines = self.text_vectors(captions) @ photo.vector
        probs = softmax(self.logit_scale() * cosines)
        order = sorted(range(len(captions)), key=lambda i: -float(cosines[i]))
        return [RankedCaption(rank + 1, captions[i], float(cosines[i]), clip_score(cosines[i]), float(probs[i]))
                for rank, i in enumerate(order)]

    def score_pairs(self, pairs: Iterable[tuple[str, str] | tuple[str, str, str | None]],
                    batch: int = BATCH) -> Iterator[PairScore | PairError]:
        """Stream scores for (path, caption[, source]) pairs, in input order, ``batch`` at a time."""
        chunk: list[tuple[str, str, str | None]] = []
        for pair in pairs:
            path, caption = pair[0], pair[1]
            source = pair[2] if len(pair) > 2 else None  # type: ignore[misc]
            chunk.append((path, caption, source))
            if len(chunk) >= batch:
                yield from self._score_chunk(chunk)
                chunk = []
        if chunk:
            yield from self._score_chunk(chunk)

    def _score_chunk(self, chunk: list[tuple[str, str, str | None]]) -> Iterator[PairScore | PairError]:
        photos = self.photo_vectors([p for p, _, _ in chunk])
        readable = [(p, c, s) for p, c, s in chunk if isinstance(photos[p], PhotoVector)]
        texts = self.text_vectors([c for _, c, _ in readable]) if readable else None
        row = 0
        for path, caption, source in chunk:
            photo = photos[path]
            if isinstance(photo, PairError):
                yield PairError(path, caption, photo.reason)
                continue
            assert texts is not None
            cos = float(texts[row] @ photo.vector)
            row += 1
            yield PairScore(path, caption, cos, clip_score(cos), photo.hash, source)


# -- batch input ------------------------------------------------------------------------------


def read_pairs(stream: IO[str], name: str = "<stdin>") -> Iterator[tuple[str, str]]:
    """(path, caption) pairs from TSV (``PATH<TAB>CAPTION``) or JSON Lines (``{"path", "caption"}``).

    The format is recognized per line: a line starting with ``{`` is JSON. Empty lines and
    a ``path<TAB>caption`` header are skipped. Relative paths are taken from the current
    directory, like every other path on the command line.
    """
    for number, raw in enumerate(stream, 1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError as e:
                raise UsageError(f"{name} line {number}: invalid JSON ({e})") from None
            path = obj.get("path", obj.get("image")) if isinstance(obj, dict) else None
            caption = obj.get("caption", obj.get("text")) if isinstance(obj, dict) else None
            if not isinstance(path, str) or not isinstance(caption, str):
                raise UsageError(f'{name} line {number}: expected {{"path": ..., "caption": ...}}')
        else:
            path, tab, caption = line.partition("\t")
            if not tab:
                raise UsageError(f"{name} line {number}: expected PATH<TAB>CAPTION or a JSON object")
            if number == 1 and path.strip().lower() == "path" and caption.strip().lower() == "caption":
                continue
        if not caption.strip():
            raise UsageError(f"{name} line {number}: empty caption")
        yield os.path.expanduser(path), caption


def check_metric(metric: str) -> str:
    if metric not in ("cosine", "clipscore"):
        raise UsageError(f"unknown metric '{metric}'", "use cosine or clipscore")
    return metric


def below(result: PairScore | RankedCaption, threshold: float, metric: str = "cosine") -> bool:
    value = result.cosine if metric == "cosine" else result.clipscore
    return value < threshold


__all__ = [
    "CLIPSCORE_WEIGHT", "PairError", "PairScore", "RankedCaption", "Scorer", "below",
    "check_metric", "clip_score", "read_pairs", "softmax",
]
