"""The tags in the store: read the vectors to score, replace, delete and query stored tags.

Tags are stored per content hash and label set (the model is the store's own). Long lists of
hashes go to SQLite in chunks (:func:`mcphotos.store.sql.chunks`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mcphotos.errors import UsageError
from mcphotos.store.database import Store, blob_to_vector, decode_path, prefix_range
from mcphotos.store.sql import chunks


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


def live_files(store: Store, roots: Sequence[str] | None) -> dict[str, str]:
    """path -> hash of the indexed (ok) files under ``roots`` (everything when None)."""
    return {p: r.hash for p, r in store.files_under(roots).items() if r.status == "ok" and r.hash}


def vectors_for_hashes(store: Store, hashes: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The stored vectors of ``hashes`` (those that have one), in one float32 matrix."""
    found: list[str] = []
    rows: list[np.ndarray] = []
    for part, marks in chunks(hashes):
        for h, blob in store.conn.execute(f"SELECT hash, vector FROM images WHERE hash IN ({marks})", part):
            found.append(h)
            rows.append(blob_to_vector(blob))
    matrix = np.stack(rows) if rows else np.zeros((0, store.dim() or 0), dtype=np.float32)
    return found, matrix


def replace_tags(store: Store, label_set: str, hashes: Sequence[str],
                 decisions: Sequence[Sequence[tuple[str, float]]]) -> None:
    """Replace ``label_set``'s tags of ``hashes`` by ``decisions`` (label, score) per hash."""
    now = time.time()
    with store.transaction() as c:
        for part, marks in chunks(hashes):
            c.execute(f"DELETE FROM tags WHERE label_set = ? AND hash IN ({marks})", [label_set, *part])
        c.executemany("INSERT INTO tags(hash, label_set, label, score, tagged_at) VALUES(?, ?, ?, ?, ?)",
                      [(h, label_set, label, score, now)
                       for h, kept in zip(hashes, decisions, strict=True) for label, score in kept])


def delete_tags(store: Store, hashes: Sequence[str] | None, label_set: str | None = None,
                dry_run: bool = False) -> int:
    """Forget tags (of ``label_set`` only, if given) of ``hashes`` (all photos if None); how many."""
    verb = "SELECT COUNT(*)" if dry_run else "DELETE"
    where = ""
    args: list[str] = []
    if label_set is not None:
        where, args = " AND label_set = ?", [label_set]

    def run(c: sqlite3.Connection, sql: str, values: list[str]) -> int:
        cur = c.execute(sql, values)
        return int(cur.fetchone()[0]) if dry_run else cur.rowcount

    removed = 0
    with store.transaction() as c:
        if hashes is None:
            return run(c, f"{verb} FROM tags WHERE 1" + where, args)
        for part, marks in chunks(hashes):
            removed += run(c, f"{verb} FROM tags WHERE hash IN ({marks})" + where, [*part, *args])
    return removed


def tags_for_hashes(store: Store, hashes: Sequence[str], label_set: str | None = None) -> dict[str, list[Tag]]:
    """hash -> its stored tags (set, then best score first)."""
    out: dict[str, list[Tag]] = {}
    for part, marks in chunks(dict.fromkeys(hashes)):
        sql = f"SELECT hash, label_set, label, score FROM tags WHERE hash IN ({marks})"
        args = list(part)
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
    ids: set[int] = set()
    for part, marks in chunks(tag_scores(store, tags)):
        ids.update(r[0] for r in store.conn.execute(f"SELECT id FROM images WHERE hash IN ({marks})", part))
    return ids


def files_with_tags(store: Store, tags: Sequence[str], in_dir: str | None = None) -> list[tuple[str, str, float]]:
    """(path, hash, score) of the indexed files carrying every one of ``tags``, best first."""
    scores = tag_scores(store, tags)
    out: list[tuple[str, str, float]] = []
    for part, marks in chunks(scores):
        sql = f"SELECT path, hash FROM files WHERE status = 'ok' AND hash IN ({marks})"
        args: list[str | bytes] = list(part)
        if in_dir:
            lo, hi = prefix_range(in_dir)
            sql += " AND path >= ? AND path < ?"
            args += [lo, hi]
        out += [(decode_path(p), h, scores[h]) for p, h in store.conn.execute(sql, args)]
    out.sort(key=lambda r: (-r[2], r[0]))
    return out
