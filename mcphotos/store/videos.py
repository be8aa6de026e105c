"""Video rows in the store: per-frame vectors, duration and end time (migration 7).

A video's ``images`` row holds its representative frame; this module writes the facts only
videos have and reads every frame's vector for search.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from mcphotos.store.database import Store, blob_to_vector, vector_to_blob
from mcphotos.store.sql import chunks


@dataclass(frozen=True)
class VideoRecord:
    hash: str
    duration: float
    ended_at: str | None
    frames: tuple[tuple[float, np.ndarray], ...]  # (frame_s, unit vector)


def put_videos(store: Store, videos: Iterable[VideoRecord]) -> None:
    """After ``put_images`` of their representative rows. Call inside a transaction."""
    videos = list(videos)
    store.conn.executemany("UPDATE images SET duration = ?, ended_at = ? WHERE hash = ?",
                           [(v.duration, v.ended_at, v.hash) for v in videos])
    store.conn.executemany(
        "INSERT INTO video_frames(hash, frame_s, vector) VALUES(?, ?, ?) ON CONFLICT DO NOTHING",
        [(v.hash, t, vector_to_blob(vec)) for v in videos for t, vec in v.frames])


def video_hashes(store: Store, hashes: Sequence[str] | None = None) -> set[str]:
    """The content hashes that are videos (among ``hashes``, when given)."""
    if hashes is None:
        return {r[0] for r in store.conn.execute("SELECT hash FROM images WHERE duration IS NOT NULL")}
    out: set[str] = set()
    for part, marks in chunks(list(hashes)):
        out.update(r[0] for r in store.conn.execute(
            f"SELECT hash FROM images WHERE duration IS NOT NULL AND hash IN ({marks})", part))
    return out


def frame_vectors(store: Store, hashes: Sequence[str] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(hash per frame, frame_s per frame, vectors) of every stored frame, or those of ``hashes``."""
    rows: list[tuple[str, float, bytes]] = []
    sql = "SELECT hash, frame_s, vector FROM video_frames"
    if hashes is None:
        rows = store.conn.execute(sql).fetchall()
    else:
        for part, marks in chunks(list(hashes)):
            rows += store.conn.execute(f"{sql} WHERE hash IN ({marks})", part).fetchall()
    if not rows:
        return [], np.zeros(0), np.zeros((0, 0), dtype=np.float32)
    return ([r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float64),
            np.stack([blob_to_vector(r[2]) for r in rows]))
