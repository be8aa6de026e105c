"""Zero-shot tagging: score stored image embeddings against a label set, keep and store the tags.

The math (``s`` is the model's logit scale, every vector is L2-normalized):

- A label's embedding ``t`` is the mean of its prompts' text embeddings, renormalized (its own
  prompts, or the template ensemble of labels.py).
- **Multi-label** (default): each label competes only with a fixed set of background embeddings
  ``b_1..b_m`` (the same templates filled with generic words: "thing", "object", "scene", ...)::

      p(label | x) = exp(s·x·t) / (exp(s·x·t) + Σ_j exp(s·x·b_j))

  A photo matching nothing stays closer to the generic backgrounds than to any label and gets no
  tag. The score depends on the photo, the label and the fixed backgrounds only - never on which
  other labels share the set - so scores are comparable across label sets (a set that declares
  its own ``@background`` prompts is comparable with sets sharing them). A label is kept when
  ``p ≥ threshold``; at most ``top_k`` labels per photo, best first.
- **Single-label**: softmax over the set's labels, ``p_i = exp(s·x·t_i) / Σ_k exp(s·x·t_k)``; the top
  label is kept when ``p ≥ min_prob``.

Tags are stored per content hash and label set (the model is the store's own); re-running a set
replaces that set's tags of the photos it scored.

The math and the decision live in :mod:`mcphotos.tagging.scoring`, the stored tags in
:mod:`mcphotos.tagging.tagstore`; this module runs them over a library and keeps their public
names importable from here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcphotos.sidecars.xmp import SidecarChange
from mcphotos.sidecars.xmpdoc import SidecarStyle
from mcphotos.store.database import Store
from mcphotos.tagging.labels import LabelSet
from mcphotos.tagging.scoring import (
    BACKGROUND_WORDS,
    BLOCK,
    DEFAULT_MIN_PROB,
    DEFAULT_THRESHOLD,
    DEFAULT_TOP_K,
    MODES,
    Decision,
    TagMode,
    TagOptions,
    TextEncoder,
    average_prompts,
    decide,
    multi_label_probs,
    prompt_plan,
    score_images,
    single_label_probs,
)
from mcphotos.tagging.tagstore import (
    PhotoTags,
    Tag,
    delete_tags,
    files_with_tags,
    image_ids_with_tags,
    live_files,
    replace_tags,
    tag_scores,
    tags_for_hashes,
    vectors_for_hashes,
)

__all__ = [
    "BACKGROUND_WORDS", "BLOCK", "DEFAULT_MIN_PROB", "DEFAULT_THRESHOLD", "DEFAULT_TOP_K", "MODES", "TEXT_BATCH",
    "Decision", "PhotoTags", "Tag", "TagMode", "TagOptions", "TagReport", "TextEncoder", "UntagReport",
    "average_prompts", "decide", "delete_tags", "files_with_tags", "image_ids_with_tags", "live_files",
    "multi_label_probs", "prompt_plan", "replace_tags", "run_tagging", "score_images", "single_label_probs",
    "stored_tags", "sync_sidecars", "tag_scores", "tags_for_hashes", "untag", "vectors_for_hashes",
]

TEXT_BATCH = 256  # prompts per text-encoder call


@dataclass
class TagReport:
    label_set: str
    mode: TagMode
    photos: list[PhotoTags] = field(default_factory=list)
    images: int = 0            # distinct contents scored
    tagged_images: int = 0     # of which got at least one tag
    prompts: int = 0           # prompt texts used (labels + background)
    encoded_prompts: int = 0   # of which were not cached and went through the text encoder
    elapsed: float = 0.0
    stored: bool = True        # False in a dry run


def run_tagging(store: Store, label_set: LabelSet, roots: Sequence[str] | None, encode: TextEncoder,
                logit_scale: Callable[[], float], options: TagOptions, dry_run: bool = False,
                exists: Callable[[str], bool] = os.path.exists,
                on_status: Callable[[str], None] | None = None) -> TagReport:
    """Tag the indexed photos under ``roots`` (all when None) with ``label_set`` and store the tags.

    ``on_status`` hears about the one slow step, encoding prompts never seen before.
    """
    start = time.perf_counter()
    files = {p: h for p, h in live_files(store, roots).items() if exists(p)}
    hashes, vectors = vectors_for_hashes(store, sorted(set(files.values())))
    report = TagReport(label_set.name, options.mode, stored=not dry_run)
    texts, _, _ = prompt_plan(label_set)
    report.prompts = len(texts)
    report.encoded_prompts = len(texts) - len(store.cached_texts(texts))
    if not hashes:
        report.elapsed = time.perf_counter() - start
        return report
    if report.encoded_prompts and on_status is not None:
        on_status(f"encoding {report.encoded_prompts} new prompts of {label_set.name} (cached for next time)")

    def encode_in_chunks(items: Sequence[str]) -> np.ndarray:
        # Bounded memory for big sets: the text tower's attention grows with the batch.
        return np.concatenate([encode(items[i:i + TEXT_BATCH]) for i in range(0, len(items), TEXT_BATCH)])

    decisions, _ = score_images(vectors, label_set, encode_in_chunks, logit_scale(), options,
                                found_words(store, label_set, hashes))
    names = [label.name for label in label_set.labels]
    kept = [[(names[j], round(p, 6)) for j, p in d] for d in decisions]
    if not dry_run:
        replace_tags(store, label_set.name, hashes, kept)
    by_hash = {h: tuple(Tag(label, p, label_set.name) for label, p in k) for h, k in zip(hashes, kept, strict=True)}
    report.photos = [PhotoTags(p, h, by_hash[h]) for p, h in sorted(files.items()) if h in by_hash]
    report.images = len(hashes)
    report.tagged_images = sum(1 for k in kept if k)
    report.elapsed = time.perf_counter() - start
    return report


def found_words(store: Store, label_set: LabelSet, hashes: Sequence[str]) -> np.ndarray | None:
    """(photos x labels) counts of each label's "text:" words in each photo's recognized text, or
    None when no label has any (or nothing was read yet). SQL only: no OCR engine is loaded."""
    if not any(label.words for label in label_set.labels):
        return None
    from mcphotos.ocr.textstore import hashes_with_words

    words = [w for label in label_set.labels for w in label.words]
    having = hashes_with_words(store, words, among=hashes)
    row = {h: i for i, h in enumerate(hashes)}
    out = np.zeros((len(hashes), len(label_set.labels)), dtype=np.float32)
    for j, label in enumerate(label_set.labels):
        for w in dict.fromkeys(label.words):
            for h in having[w]:
                out[row[h], j] += 1
    return out if out.any() else None


def sync_sidecars(store: Store, files: Sequence[tuple[str, str]], style: SidecarStyle | str = SidecarStyle.DARKTABLE,
                  dry_run: bool = False, keep: Callable[[Tag], bool] | None = None,
                  extra: dict[str, Sequence[Tag]] | None = None) -> list[SidecarChange]:
    """Make each photo's sidecar carry exactly its stored tags (all sets) under the mcphotos root.

    ``keep`` filters the stored tags and ``extra`` (hash -> tags) adds some: what a dry run needs to
    show the sidecars as they would be, before the store changes.
    """
    from mcphotos.sidecars.xmp import parse_style, update_sidecar

    style = parse_style(style)
    stored = tags_for_hashes(store, [h for _, h in files])
    changes: list[SidecarChange] = []
    for path, h in files:
        tags = [t for t in stored.get(h, []) if keep is None or keep(t)] + list((extra or {}).get(h, ()))
        labels = list(dict.fromkeys(t.label for t in tags))
        changes += update_sidecar(path, machine_tags=labels, style=style, dry_run=dry_run)
    return changes


def stored_tags(store: Store, roots: Sequence[str], label_set: str | None = None
                ) -> tuple[list[PhotoTags], list[str]]:
    """The stored tags of the indexed photos at or under ``roots``, and the roots with none indexed."""
    files: dict[str, str] = {}
    missing: list[str] = []
    for root in roots:
        found = live_files(store, [root])
        if not found:
            missing.append(root)
        files.update(found)
    tags = tags_for_hashes(store, list(files.values()), label_set)
    return [PhotoTags(p, h, tuple(tags.get(h, []))) for p, h in sorted(files.items())], missing


@dataclass
class UntagReport:
    photos: int
    removed: int
    sidecars: list[SidecarChange]
    dry_run: bool


def untag(store: Store, roots: Sequence[str] | None, label_set: str | None = None, xmp: bool = False,
          style: SidecarStyle | str = SidecarStyle.DARKTABLE, dry_run: bool = False) -> UntagReport:
    """Forget the tags (of one set, or all) of the photos under ``roots`` (all when None).

    ``xmp``: also bring their sidecars in line: only mcphotos' own keywords are removed.
    """
    files = live_files(store, roots)
    hashes = None if roots is None else sorted(set(files.values()))
    removed = delete_tags(store, hashes, label_set, dry_run)
    changes: list[SidecarChange] = []
    if xmp:
        present = [(p, h) for p, h in sorted(files.items()) if os.path.exists(p)]

        def kept(t: Tag) -> bool:
            return not dry_run or (label_set is not None and t.label_set != label_set)

        changes = sync_sidecars(store, present, style, dry_run, kept)
    return UntagReport(len(files), removed, changes, dry_run)
