"""The math of zero-shot tagging: prompt embeddings per label, probabilities, and the decision.

Pure numpy: nothing here reads the store or loads a model (the text encoder is passed in). The
formulas are in the docstring of :mod:`mcphotos.tagging.tagger`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mcphotos.enums import StrEnum, parse_choice
from mcphotos.errors import UsageError
from mcphotos.tagging.labels import TEMPLATES, LabelSet

# Generic words that describe any photo, embedded through the same templates as labels so that
# the templates' own pull cancels out between a label and the background.
BACKGROUND_WORDS: tuple[str, ...] = ("thing", "object", "scene", "place", "picture", "view")


class TagMode(StrEnum):
    """Multi-label: each label against the background; single-label: one label per photo."""

    MULTI = "multi"
    SINGLE = "single"


MODES: tuple[TagMode, ...] = tuple(TagMode)
DEFAULT_THRESHOLD = 0.5
DEFAULT_TOP_K = 5
DEFAULT_MIN_PROB = 0.5
TEXT_WEIGHT = 0.5  # how much one "text:" word found in a photo's text counts (see text_evidence)
BLOCK = 8192  # images scored per matrix product: bounded memory for any library size

TextEncoder = Callable[[Sequence[str]], np.ndarray]
Decision = list[tuple[int, float]]  # per image: the kept (label index, probability) pairs, best first


@dataclass(frozen=True, init=False)
class TagOptions:
    mode: TagMode
    threshold: float   # multi-label: keep labels with p >= threshold
    top_k: int | None  # multi-label: at most this many per photo
    min_prob: float    # single-label: keep the top label if p >= min_prob

    def __init__(self, mode: TagMode | str = TagMode.MULTI, threshold: float = DEFAULT_THRESHOLD,
                 top_k: int | None = DEFAULT_TOP_K, min_prob: float = DEFAULT_MIN_PROB) -> None:
        """``mode`` takes a :class:`TagMode` or its value ("multi", "single")."""
        object.__setattr__(self, "mode", parse_choice(TagMode, mode, "tagging mode"))
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "top_k", top_k)
        object.__setattr__(self, "min_prob", min_prob)
        for name, value in (("threshold", threshold), ("min-prob", min_prob)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"--{name} must be between 0 and 1, not {value}")
        if top_k is not None and top_k < 1:
            raise UsageError(f"--top-k must be at least 1, not {top_k}")


def prompt_plan(label_set: LabelSet) -> tuple[list[str], list[list[int]], list[list[int]]]:
    """All prompt texts (deduplicated) and, per label and per background word, their indices."""
    texts: dict[str, int] = {}

    def idx(items: list[str]) -> list[int]:
        return [texts.setdefault(t, len(texts)) for t in items]

    per_label = [idx(label.prompt_texts()) for label in label_set.labels]
    if label_set.background:  # the set's own background: each prompt one competitor
        per_background = [idx([p]) for p in label_set.background]
    else:
        per_background = [idx([t.replace("{}", w) for t in TEMPLATES]) for w in BACKGROUND_WORDS]
    return list(texts), per_label, per_background


def average_prompts(prompt_vectors: np.ndarray, groups: list[list[int]]) -> np.ndarray:
    """One unit vector per group: the mean of its prompts' embeddings, renormalized."""
    out = np.stack([prompt_vectors[g].mean(axis=0) for g in groups]).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)


def multi_label_probs(images: np.ndarray, labels: np.ndarray, background: np.ndarray, scale: float) -> np.ndarray:
    """p[i, j]: softmax of label j against the background prompts alone, for image i."""
    z = scale * (images @ labels.T)                                   # (N, L)
    zb = scale * (images @ background.T)                              # (N, B)
    m = zb.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(zb - m).sum(axis=1, keepdims=True))     # log Σ_j exp(z_bj)
    return (1.0 / (1.0 + np.exp(np.clip(lse - z, -60, 60)))).astype(np.float32)  # = σ(z - lse)


def single_label_probs(images: np.ndarray, labels: np.ndarray, scale: float) -> np.ndarray:
    z = scale * (images @ labels.T)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def text_evidence(probs: np.ndarray, found: np.ndarray, weight: float = TEXT_WEIGHT) -> np.ndarray:
    """Raise each label by the "text:" words found in the photo's text, as independent evidence.

    With ``n = found[i, j]`` of label j's words in photo i's recognized text (noisy-OR)::

        p' = 1 - (1 - p) · (1 - weight)^n

    No word found leaves p as it is; one word lifts any p to at least 0.5 (the default threshold),
    two to 0.75, and a label the image already supports rises further. In single-label mode the
    raised scores are compared as they are (they no longer sum to one).
    """
    if not found.any():
        return probs
    return (1.0 - (1.0 - probs) * np.power(1.0 - weight, found)).astype(np.float32)


def decide(probs: np.ndarray, options: TagOptions) -> list[Decision]:
    """Per image, the kept (label index, probability) pairs, best first."""
    out: list[Decision] = []
    if options.mode is TagMode.SINGLE:
        best = probs.argmax(axis=1)
        for i, j in enumerate(best):
            p = float(probs[i, j])
            out.append([(int(j), p)] if p >= options.min_prob else [])
        return out
    k = min(options.top_k or probs.shape[1], probs.shape[1])
    for row in probs:
        keep = np.flatnonzero(row >= options.threshold)
        keep = keep[np.argsort(-row[keep], kind="stable")][:k]
        out.append([(int(j), float(row[j])) for j in keep])
    return out


def score_images(vectors: np.ndarray, label_set: LabelSet, encode: TextEncoder, scale: float,
                 options: TagOptions, found_words: np.ndarray | None = None) -> tuple[list[Decision], int]:
    """Tag decisions for each row of ``vectors``, and how many prompt texts were used.

    ``found_words[i, j]``: how many of label j's "text:" words photo i's text holds (text_evidence).
    """
    texts, per_label, per_background = prompt_plan(label_set)
    prompt_vectors = encode(texts)
    labels = average_prompts(prompt_vectors, per_label)
    background = average_prompts(prompt_vectors, per_background)
    decisions: list[Decision] = []
    for start in range(0, len(vectors), BLOCK):
        block = vectors[start:start + BLOCK]
        if options.mode is TagMode.SINGLE:
            probs = single_label_probs(block, labels, scale)
        else:
            probs = multi_label_probs(block, labels, background, scale)
        if found_words is not None:
            probs = text_evidence(probs, found_words[start:start + BLOCK])
        decisions += decide(probs, options)
    return decisions, len(texts)
