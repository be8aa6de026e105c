"""Perceptual signatures and the candidate searches over them, in numpy (no model, no torch).

Two signatures are stored per content hash (computed by ``imaging.decode_for_model``):

- ``phash``: 64-bit DCT hash of the grey image; robust to re-encoding, resizing, format changes,
  rotation (it is taken upright) and colour changes. A small crop moves it by up to ~20 bits.
- ``colors``: the 4x4 YCbCr layout (48 bytes); robust to everything above including crops, and
  the one that tells a dark-mode variant from its light original, which the grey pHash cannot.

Candidate pairs come from buckets over pHash bands (multi-index hashing: every pair within
``BAND_RADIUS_BITS`` bits is found, guaranteed) and from a kNN search over the coarse colour
layout (what finds crops). Neither compares all pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, overload

import numpy as np

from mcphotos.indexing.imaging import FLAT_DETAIL

BANDS = 4  # 16-bit bands of the 64-bit pHash
BAND_BITS = 16
# Probing every key within 1 bit of each band: a pair within 2*BANDS-1 = 7 bits has at least one
# band within 1 bit of the other's (pigeonhole), so it is always found.
BAND_RADIUS_BITS = 2 * BANDS - 1
LAYOUT_NEIGHBOURS = 8  # kNN over the colour layout: enough to reach every variant in the bench

_M1 = np.uint64(0xFFFF)


def as_unsigned(phashes: np.ndarray) -> np.ndarray:
    """Signed int64 pHashes (as SQLite stores them) viewed as uint64."""
    return np.ascontiguousarray(phashes, dtype=np.int64).view(np.uint64)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance of two uint64 arrays (element-wise)."""
    x = np.bitwise_xor(a, b)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int16)
    # numpy < 2.0: popcount by bytes
    bytes_ = x.view(np.uint8).reshape(*x.shape, 8)
    return np.unpackbits(bytes_, axis=-1).sum(axis=-1).astype(np.int16)


def layout_array(colors: Sequence[bytes | None]) -> np.ndarray:
    """(n, 16, 3) float32 colour layouts; rows of a missing layout are NaN."""
    out = np.full((len(colors), 16, 3), np.nan, dtype=np.float32)
    for i, c in enumerate(colors):
        if c is not None and len(c) == 48:
            out[i] = np.frombuffer(c, dtype=np.uint8).reshape(16, 3)
    return out


def color_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Largest per-cell mean |ΔYCbCr| between layouts (..., 16, 3): one changed region is enough.

    A mild colour change (brightness +10 %, saturation +20 %, a warm cast) stays under ~20 grey
    levels in every cell; a dark-mode variant's background cells move by 35 and more.
    """
    return np.abs(a - b).mean(axis=-1).max(axis=-1)


def coarse_layout(layouts: np.ndarray) -> np.ndarray:
    """(n, 12) mean colour of the 2x2 quadrants: the low-dimensional key for the kNN search."""
    grid = layouts.reshape(-1, 2, 2, 2, 2, 3)  # rows: (qy, y, qx, x, c)
    return np.ascontiguousarray(grid.mean(axis=(2, 4)).reshape(-1, 12), dtype=np.float32)


def is_flat(detail: np.ndarray) -> np.ndarray:
    return np.nan_to_num(detail, nan=np.inf) < FLAT_DETAIL


# -- candidate searches --------------------------------------------------------------------------


def band_pairs(hashes: np.ndarray, max_bits: int, radius: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) whose pHashes are within ``max_bits``, found through band buckets.

    Every pair within ``BANDS * (radius + 1) - 1`` bits is found; farther pairs (up to ``max_bits``)
    only when some band happens to match that closely. Work is ~ N * probes + collisions, never N².
    """
    h = as_unsigned(hashes)
    n = len(h)
    found_i: list[np.ndarray] = []
    found_j: list[np.ndarray] = []
    masks = [np.uint64(0)] + ([np.uint64(1 << b) for b in range(BAND_BITS)] if radius >= 1 else [])
    for band in range(BANDS):
        keys = ((h >> np.uint64(band * BAND_BITS)) & _M1).astype(np.int64)
        # 16-bit keys: a counting sort gives each key's slice of ``order`` by direct lookup.
        order = np.argsort(keys, kind="stable")
        counts_of = np.bincount(keys, minlength=1 << BAND_BITS)
        start_of = np.cumsum(counts_of) - counts_of
        for mask in masks:
            probe = keys ^ int(mask)
            lo = start_of[probe]
            counts = counts_of[probe]
            total = int(counts.sum())
            if total == 0:
                continue
            i = np.repeat(np.arange(n), counts)
            starts = np.repeat(lo, counts)
            offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
            j = order[starts + offsets]
            keep = i < j
            i, j = i[keep], j[keep]
            keep = hamming(h[i], h[j]) <= max_bits
            found_i.append(i[keep])
            found_j.append(j[keep])
    return _unique_pairs(found_i, found_j, n)


@overload
def knn_pairs(vectors: np.ndarray, k: int, space: str = ..., with_distances: Literal[False] = ...
              ) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def knn_pairs(vectors: np.ndarray, k: int, space: str = ..., *, with_distances: Literal[True]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def knn_pairs(vectors: np.ndarray, k: int, space: str = "l2", with_distances: bool = False
              ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i < j) where one is among the other's ``k`` nearest neighbours (hnswlib), and with
    ``with_distances`` their distances (for ``ip``: 1 - cosine)."""
    import hnswlib

    n, dim = vectors.shape
    k = min(k, n - 1)
    if k <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return (empty, empty, np.zeros(0, dtype=np.float32)) if with_distances else (empty, empty)
    data = np.ascontiguousarray(vectors, dtype=np.float32)
    labels = np.arange(n)
    if n <= 256:
        index = hnswlib.BFIndex(space=space, dim=dim)  # tiny sets: exact and free of HNSW's edge cases
        index.init_index(max_elements=n)
        index.add_items(data, labels)
        nn, dist = index.knn_query(data, k=k + 1)
    else:
        # Light parameters: a candidate search, where components make up for a missed neighbour
        # (recall of the true 8 nearest colour layouts: 0.998 in bench/dedup_scale.py's data).
        index = hnswlib.Index(space=space, dim=dim)
        index.init_index(max_elements=n, ef_construction=24, M=8)
        index.set_num_threads(_threads())
        index.add_items(data, labels)
        index.set_ef(max(16, 2 * (k + 1)))
        nn, dist = index.knn_query(data, k=k + 1, num_threads=_threads())
    return pairs_from_neighbours(nn.astype(np.int64), n, dist if with_distances else None)


@overload
def pairs_from_neighbours(nn: np.ndarray, n: int, dist: None = None) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def pairs_from_neighbours(nn: np.ndarray, n: int, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
def pairs_from_neighbours(nn: np.ndarray, n: int, dist: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray] | tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, k) neighbour rows (labels, -1 for none) to unique pairs i < j, self-pairs dropped.

    With ``dist`` (hnswlib's distances, same shape), also each pair's distance.
    """
    i = np.repeat(np.arange(len(nn)), nn.shape[1])
    j = nn.reshape(-1)
    keep = (j >= 0) & (j != i)
    i, j = i[keep], j[keep]
    lo, hi = np.minimum(i, j), np.maximum(i, j)
    if dist is None:
        return _unique_pairs([lo], [hi], n)
    code = lo.astype(np.int64) * n + hi
    order = np.argsort(code, kind="stable")
    code, d = code[order], dist.reshape(-1)[keep][order]
    first = np.ones(len(code), dtype=bool)
    first[1:] = code[1:] != code[:-1]
    code, d = code[first], d[first]
    return code // n, code % n, d


def _unique_pairs(found_i: list[np.ndarray], found_j: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    if not found_i:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    i = np.concatenate(found_i).astype(np.int64)
    j = np.concatenate(found_j).astype(np.int64)
    code = unique_codes(i * n + j)
    return code // n, code % n


def unique_codes(codes: np.ndarray) -> np.ndarray:
    """Sorted distinct int64 pair codes (a sort and a diff: faster than np.unique's hashing here)."""
    if len(codes) == 0:
        return codes
    codes = np.sort(codes)
    keep = np.empty(len(codes), dtype=bool)
    keep[0] = True
    np.not_equal(codes[1:], codes[:-1], out=keep[1:])
    return codes[keep]


def _threads() -> int:
    import os

    return max(1, min(4, os.cpu_count() or 1))


# -- connected components ------------------------------------------------------------------------


def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Union-find over edges (i, j): the root label of each of ``n`` nodes."""
    parent = np.arange(n)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(x) for x in range(n)], dtype=np.int64)



def components_apart(n: int, i: np.ndarray, j: np.ndarray, apart: Sequence[tuple[int, int]]) -> np.ndarray:
    """Union-find over edges taken in the order given, never joining two nodes of a pair in ``apart``.

    An edge whose union would put an ``apart`` pair into one component is skipped: with A-B
    dismissed and C near both, C joins whichever of A and B comes first in the edge order (the
    caller sorts the closest first) and the other stays out. Only the nodes named in ``apart``
    carry sets, so this costs about what :func:`components` does.
    """
    parent = np.arange(n)
    forbid: dict[int, set[int]] = {}  # root -> nodes its component must never hold
    marked: dict[int, set[int]] = {}  # root -> its nodes that appear in some apart pair
    for a, b in apart:
        forbid.setdefault(a, set()).add(b)
        forbid.setdefault(b, set()).add(a)
        marked.setdefault(a, {a})
        marked.setdefault(b, {b})

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in zip(i.tolist(), j.tolist(), strict=True):
        ra, rb = find(a), find(b)
        if ra == rb:
            continue
        fa, fb = forbid.get(ra, set()), forbid.get(rb, set())
        if fa & marked.get(rb, set()) or fb & marked.get(ra, set()):
            continue
        keep, gone = min(ra, rb), max(ra, rb)
        parent[gone] = keep
        if gone in forbid:
            forbid.setdefault(keep, set()).update(forbid.pop(gone))
        if gone in marked:
            marked.setdefault(keep, set()).update(marked.pop(gone))
    return np.array([find(x) for x in range(n)], dtype=np.int64)
