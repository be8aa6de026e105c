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
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mcphotos.errors import UsageError
from mcphotos.sidecars.xmp import SidecarChange
from mcphotos.store.database import Store, blob_to_vector, decode_path, encode_path, prefix_range
from mcphotos.tagging.labels import TEMPLATES, LabelSet

# Generic words that describe any photo, embedded through the same templates as labels so that
# the templates' own pull cancels out between a label and the background.
BACKGROUND_WORDS: tuple[str, ...] = ("thing", "object", "scene", "place", "picture", "view")

MODES = ("multi", "single")
DEFAULT_THRESHOLD = 0.5
DEFAULT_TOP_K = 5
DEFAULT_MIN_PROB = 0.5
BLOCK = 8192  # images scored per matrix product: bounded memory for any library size
TEXT_BATCH = 256  # prompts per text-encoder call

TextEncoder = Callable[[Sequence[str]], np.ndarray]


@dataclass(frozen=True)
class TagOptions:
    mode: str = "multi"
    threshold: float = DEFAULT_THRESHOLD   # multi-label: keep labels with p >= threshold
    top_k: int | None = DEFAULT_TOP_K      # multi-label: at most this many per photo
    min_prob: float = DEFAULT_MIN_PROB     # single-label: keep the top label if p >= min_prob

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise UsageError(f"unknown tagging mode {self.mode!r}", "use multi or single")
        for name, value in (("threshold", self.threshold), ("min-prob", self.min_prob)):
            if not 0.0 <= value <= 1.0:
                raise UsageError(f"--{name} must be between 0 and 1, not {value}")
        if self.top_k is not None and self.top_k < 1:
            raise UsageError(f"--top-k must be at least 1, not {self.top_k}")


@dataclass(frozen=True)
class Tag:
    label: str
    score: float
    label_set: str = ""


@dataclass(frozen=True)
class PhotoTags:
    path: str
    hash: str
    tags: tuple[Tag, ...]


@dataclass
class TagReport:
    label_set: str
    mode: str
    photos: list[PhotoTags] = field(default_factory=list)
    images: int = 0            # distinct contents scored
    tagged_images: int = 0     # of which got at least one tag
    prompts: int = 0           # prompt texts used (labels + background)
    encoded_prompts: int = 0   # of which were not cached and went through the text encoder
    elapsed: float = 0.0
    stored: bool = True        # False in a dry run


# -- the math -----------------------------------------------------------------------------------------

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


def decide(probs: np.ndarray, options: TagOptions) -> list[list[tuple[int, float]]]:
    """Per image, the kept (label index, probability) pairs, best first."""
    out: list[list[tuple[int, float]]] = []
    if options.mode == "single":
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
                 options: TagOptions) -> tuple[list[list[tuple[int, float]]], int]:
    """Tag decisions for each row of ``vectors``, and how many prompt texts were used."""
    texts, per_label, per_background = prompt_plan(label_set)
    prompt_vectors = encode(texts)
    labels = average_prompts(prompt_vectors, per_label)
    background = average_prompts(prompt_vectors, per_background)
    decisions: list[list[tuple[int, float]]] = []
    for start in range(0, len(vectors), BLOCK):
        block = vectors[start:start + BLOCK]
        if options.mode == "single":
            probs = single_label_probs(block, labels, scale)
        else:
            probs = multi_label_probs(block, labels, background, scale)
        decisions += decide(probs, options)
    return decisions, len(texts)


# -- storage ------------------------------------------------------------------------------------------

def live_files(store: Store, roots: Sequence[str] | None) -> dict[str, str]:
    """path -> hash of the indexed (ok) files under ``roots`` (everything when None)."""
    return {p: r.hash for p, r in store.files_under(roots).items() if r.status == "ok" and r.hash}


def vectors_for_hashes(store: Store, hashes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The stored vectors of ``hashes`` (those that have one), in one float32 matrix."""
    found: list[str] = []
    rows: list[np.ndarray] = []
    hashes = list(hashes)
    for i in range(0, len(hashes), 500):
        part = hashes[i:i + 500]
        sql = "SELECT hash, vector FROM images WHERE hash IN (%s)" % ",".join("?" * len(part))
        for h, blob in store.conn.execute(sql, part):
            found.append(h)
            rows.append(blob_to_vector(blob))
    matrix = np.stack(rows) if rows else np.zeros((0, store.dim() or 0), dtype=np.float32)
    return found, matrix


def replace_tags(store: Store, label_set: str, hashes: Sequence[str],
                 decisions: Sequence[Sequence[tuple[str, float]]]) -> None:
    """Replace ``label_set``'s tags of ``hashes`` by ``decisions`` (label, score) per hash."""
    now = time.time()
    with store.transaction() as c:
        for i in range(0, len(hashes), 500):
            part = list(hashes[i:i + 500])
            c.execute("DELETE FROM tags WHERE label_set = ? AND hash IN (%s)" % ",".join("?" * len(part)),
                      [label_set, *part])
        c.executemany("INSERT INTO tags(hash, label_set, label, score, tagged_at) VALUES(?, ?, ?, ?, ?)",
                      [(h, label_set, label, score, now)
                       for h, kept in zip(hashes, decisions, strict=True) for label, score in kept])


def delete_tags(store: Store, hashes: Sequence[str] | None, label_set: str | None = None,
                dry_run: bool = False) -> int:
    """Forget tags (of ``label_set`` only, if given) of ``hashes`` (all photos if None); how many."""
    verb = "SELECT COUNT(*)" if dry_run else "DELETE"
    where, args = ("", [])
    if label_set is not None:
        where, args = " AND label_set = ?", [label_set]

    def run(c: sqlite3.Connection, sql: str, values: list) -> int:
        cur = c.execute(sql, values)
        return int(cur.fetchone()[0]) if dry_run else cur.rowcount

    removed = 0
    with store.transaction() as c:
        if hashes is None:
            return run(c, f"{verb} FROM tags WHERE 1" + where, args)
        hashes = list(hashes)
        for i in range(0, len(hashes), 500):
            part = hashes[i:i + 500]
            sql = f"{verb} FROM tags WHERE hash IN (%s)" % ",".join("?" * len(part)) + where
            removed += run(c, sql, [*part, *args])
    return removed


def tags_for_hashes(store: Store, hashes: Sequence[str], label_set: str | None = None) -> dict[str, list[Tag]]:
    """hash -> its stored tags (set, then best score first)."""
    out: dict[str, list[Tag]] = {}
    hashes = list(dict.fromkeys(hashes))
    for i in range(0, len(hashes), 500):
        part = hashes[i:i + 500]
        sql = "SELECT hash, label_set, label, score FROM tags WHERE hash IN (%s)" % ",".join("?" * len(part))
        args: list = list(part)
        if label_set is not None:
            sql += " AND label_set = ?"
            args.append(label_set)
        for h, ls, label, score in store.conn.execute(sql, args):
            out.setdefault(h, []).append(Tag(label, float(score), ls))
    for tags in out.values():
        tags.sort(key=lambda t: (t.label_set, -t.score, t.label))
    return out


def _tag_condition(tag: str) -> tuple[str, list[str]]:
    """SQL matching ``tag`` as whole levels of a label: 'dog' matches 'animals/dog', 'animals' too."""
    t = "/".join(level.strip() for level in tag.strip().strip("/").split("/"))
    if not t:
        raise UsageError("--tag needs a label, e.g. --tag dog or --tag animals/dog")
    esc = t.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    sql = ("(label = ? COLLATE NOCASE OR label LIKE ? ESCAPE '\\' OR label LIKE ? ESCAPE '\\' "
           "OR label LIKE ? ESCAPE '\\')")
    return sql, [t, f"%/{esc}", f"{esc}/%", f"%/{esc}/%"]


def tag_scores(store: Store, tags: Sequence[str]) -> dict[str, float]:
    """hash -> score of the photos carrying every one of ``tags`` (the weakest of the matches)."""
    result: dict[str, float] | None = None
    for tag in tags:
        cond, args = _tag_condition(tag)
        rows = store.conn.execute(f"SELECT hash, MAX(score) FROM tags WHERE {cond} GROUP BY hash", args)
        scores = {h: float(s) for h, s in rows}
        result = scores if result is None else {h: min(s, scores[h]) for h, s in result.items() if h in scores}
    return result or {}


def image_ids_with_tags(store: Store, tags: Sequence[str]) -> set[int]:
    """The image ids carrying every one of ``tags``: the candidates of ``find --tag``."""
    hashes = list(tag_scores(store, tags))
    ids: set[int] = set()
    for i in range(0, len(hashes), 500):
        part = hashes[i:i + 500]
        sql = "SELECT id FROM images WHERE hash IN (%s)" % ",".join("?" * len(part))
        ids.update(r[0] for r in store.conn.execute(sql, part))
    return ids


def files_with_tags(store: Store, tags: Sequence[str], in_dir: str | None = None) -> list[tuple[str, str, float]]:
    """(path, hash, score) of the indexed files carrying every one of ``tags``, best first."""
    scores = tag_scores(store, tags)
    out: list[tuple[str, str, float]] = []
    hashes = list(scores)
    for i in range(0, len(hashes), 500):
        part = hashes[i:i + 500]
        sql = "SELECT path, hash FROM files WHERE status = 'ok' AND hash IN (%s)" % ",".join("?" * len(part))
        args: list = list(part)
        if in_dir:
            lo, hi = prefix_range(in_dir)
            sql += " AND path >= ? AND path < ?"
            args += [lo, hi]
        out += [(decode_path(p), h, scores[h]) for p, h in store.conn.execute(sql, args)]
    out.sort(key=lambda r: (-r[2], r[0]))
    return out


def hash_of_file(store: Store, path: str) -> str | None:
    row = store.conn.execute("SELECT hash FROM files WHERE path = ? AND status = 'ok'",
                             (encode_path(path),)).fetchone()
    return row[0] if row else None


# -- a whole run --------------------------------------------------------------------------------------

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

    decisions, _ = score_images(vectors, label_set, encode_in_chunks, logit_scale(), options)
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


def sync_sidecars(store: Store, files: Sequence[tuple[str, str]], style: str = "darktable",
                  dry_run: bool = False, keep: Callable[[Tag], bool] | None = None,
                  extra: dict[str, Sequence[Tag]] | None = None) -> list[SidecarChange]:
    """Make each photo's sidecar carry exactly its stored tags (all sets) under the mcphotos root.

    ``keep`` filters the stored tags and ``extra`` (hash -> tags) adds some: what a dry run needs to
    show the sidecars as they would be, before the store changes.
    """
    from mcphotos.sidecars.xmp import update_sidecar

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
          style: str = "darktable", dry_run: bool = False) -> UntagReport:
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
