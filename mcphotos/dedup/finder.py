"""Groups of duplicate photos: exact copies, near-identical versions, similar shots.

Tiers (each includes the ones before it):

- ``exact``: files with the same content hash;
- ``near``: the same picture re-encoded, resized, converted, slightly cropped, rotated by EXIF or
  mildly re-coloured. Decided by the perceptual signatures (pHash within ``threshold`` bits and
  colour layouts that agree), so it works when the embeddings carry no meaning; where they do
  (see ``embeddings_informative``), the embedding also vetoes look-alikes and admits crops a
  little beyond the pHash threshold;
- ``similar``: another shot of the same scene: embedding cosine >= ``threshold``, a little
  lower for photos taken within ``BURST_SECONDS`` of each other (EXIF capture time).

Candidate pairs come from pHash band buckets, a kNN search over the colour layout and, for
embeddings, a kNN search with hnswlib; the pairs that pass are joined into connected components.
Nothing here compares all pairs, loads the model or imports torch.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from mcphotos.dedup import perceptual as pc
from mcphotos.dedup.catalog import Catalog, load_catalog
from mcphotos.dedup.choices import KeepPolicy, Role, Tier
from mcphotos.dedup.keeper import choose_keeper, parse_policy
from mcphotos.enums import parse_choice
from mcphotos.errors import UsageError
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.store.database import Store
from mcphotos.store.dismissals import pairs_among

if TYPE_CHECKING:
    from mcphotos.store.ann import AnnIndex

TIERS: tuple[Tier, ...] = tuple(Tier)  # by rank: exact, near, similar
DEFAULT_NEAR_BITS = 14  # bench/dedup_quality.py: recall and precision on real photos
NEAR_COLOR = 27.0  # colour-layout distance (grey levels) allowed for a near pair
DEFAULT_SIMILAR = 0.88  # cosine
BURST_SECONDS = 10.0
BURST_BONUS = 0.05  # a burst (taken within BURST_SECONDS) may be this much less similar
SIMILAR_NEIGHBOURS = 10
# With meaningful embeddings: a near pair must not look unrelated to the model, and a pair the
# model finds almost identical may be a few pHash bits farther (larger crops).
NEAR_VETO_COS = 0.6
NEAR_EMBED_COS = 0.97
NEAR_EMBED_EXTRA_BITS = 6


@dataclass
class Member:
    path: str
    hash: str
    role: Role
    tier: Tier | Literal[Role.KEEPER]  # relation to the keeper (the keeper itself: Role.KEEPER)
    size: int
    width: int | None
    height: int | None
    taken_at: str | None
    mtime_ns: int
    hamming: int | None = None  # pHash bits from the keeper
    color: float | None = None  # colour-layout distance from the keeper
    cosine: float | None = None  # embedding cosine with the keeper
    via: str | None = None  # joined through this member, not directly to the keeper


@dataclass
class Group:
    tier: Tier
    reason: str
    members: list[Member]  # keeper first

    @property
    def keeper(self) -> Member:
        return self.members[0]

    @property
    def duplicates(self) -> list[Member]:
        return self.members[1:]


@dataclass
class DedupReport:
    tier: Tier
    threshold: float | None
    keep: KeepPolicy
    groups: list[Group] = field(default_factory=list)
    files: int = 0
    images: int = 0
    candidates: dict[str, int] = field(default_factory=dict)  # pairs proposed, by source
    pairs: int = 0  # pairs that passed
    embeddings_used: bool = False
    embeddings_informative: bool = False  # do the embeddings tell these photos apart?
    backfilled: int = 0
    dismissed: int = 0  # pairs marked "not duplicates" that would otherwise share a group
    missing: int = 0  # files in the store that are gone from disk
    elapsed: float = 0.0

    @property
    def duplicate_count(self) -> int:
        return sum(len(g.duplicates) for g in self.groups)

    @property
    def reclaimable_bytes(self) -> int:
        return sum(m.size for g in self.groups for m in g.duplicates)


def parse_tier(tier: Tier | str) -> Tier:
    """``tier`` as a :class:`Tier`; UsageError for anything else."""
    return parse_choice(Tier, tier, "tier")


def check_options(tier: Tier | str, threshold: float | None, keep: KeepPolicy | str) -> float | None:
    """The threshold to use (the tier's default when None): None exactly for the exact tier."""
    tier, keep = parse_tier(tier), parse_policy(keep)
    if threshold is None:
        return None if tier is Tier.EXACT else (DEFAULT_NEAR_BITS if tier is Tier.NEAR else DEFAULT_SIMILAR)
    if tier is Tier.EXACT:
        raise UsageError("--threshold does not apply to --tier exact (identical bytes)")
    if tier is Tier.NEAR and not (0 <= threshold <= 64 and float(threshold).is_integer()):
        raise UsageError("for --tier near, --threshold is the pHash distance in bits: a whole number 0-64")
    if tier is Tier.SIMILAR and not (-1.0 <= threshold <= 1.0):
        raise UsageError("for --tier similar, --threshold is a cosine between -1 and 1")
    return threshold


def find_duplicates(store: Store, tier: Tier | str = Tier.NEAR, threshold: float | None = None,
                    roots: Sequence[str] | None = None, keep: KeepPolicy | str = KeepPolicy.LARGEST,
                    spec: PreprocessSpec | None = None, excluded: Sequence[str] = (),
                    exists: Callable[[str], bool] = os.path.exists, ann: AnnIndex | None = None) -> DedupReport:
    """Duplicate groups among the indexed photos (under ``roots``, if given).

    ``tier`` and ``keep`` take the enums' members or their string values.
    """
    started = time.monotonic()
    tier, keep = parse_tier(tier), parse_policy(keep)
    threshold = check_options(tier, threshold, keep)
    report = DedupReport(tier, threshold, keep)
    cat = load_catalog(store, roots, excluded, spec, backfill=tier is not Tier.EXACT)
    report.files, report.images, report.backfilled = len(cat.paths), cat.n, cat.backfilled
    edges_i, edges_j, edge_tier = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0, np.int8)]
    if threshold is not None and cat.n > 1:  # threshold is None exactly for the exact tier
        near_bits = int(threshold) if tier is Tier.NEAR else DEFAULT_NEAR_BITS
        informative = report.embeddings_informative = cat.embeddings_informative()
        report.embeddings_used = informative or tier is Tier.SIMILAR
        i, j = _near_candidates(cat, near_bits, informative, report)
        # Near pairs come from the perceptual searches (the embeddings only judge them); the
        # embedding kNN, the costly search, is for the similar tier.
        if tier is Tier.SIMILAR:
            ki, kj, kcos = cat.embedding_pairs(SIMILAR_NEIGHBOURS, ann)
            report.candidates["embedding kNN"] = len(ki)
            code = pc.unique_codes(np.concatenate([i * cat.n + j, ki * cat.n + kj]))
            i, j = code // cat.n, code % cat.n
        near = _near_pass(cat, i, j, near_bits, informative)
        edges_i.append(i[near])
        edges_j.append(j[near])
        edge_tier.append(np.full(int(near.sum()), Tier.NEAR.rank, np.int8))
        if tier is Tier.SIMILAR:
            # Similar pairs are the embedding neighbours (cosines from the kNN search) not already near.
            rest = ~np.isin(ki * cat.n + kj, i[near] * cat.n + j[near])
            sim = _similar_pass(cat, ki[rest], kj[rest], kcos[rest], float(threshold))
            edges_i.append(ki[rest][sim])
            edges_j.append(kj[rest][sim])
            edge_tier.append(np.full(int(sim.sum()), Tier.SIMILAR.rank, np.int8))
    ei, ej, et = np.concatenate(edges_i), np.concatenate(edges_j), np.concatenate(edge_tier)
    # A video's signatures and vector are one of its frames: it may look like a photo of that
    # moment, but it is never that photo's duplicate.
    same_kind = cat.videos[ei] == cat.videos[ej]
    ei, ej, et = ei[same_kind], ej[same_kind], et[same_kind]
    apart = _dismissed_rows(store, cat)
    if apart:
        ei, ej, et, component, report.dismissed = _keep_apart(cat, ei, ej, et, apart)
    else:
        component = pc.components(cat.n, ei, ej)
    report.pairs = len(ei)
    report.groups, report.missing = _build_groups(cat, component, ei, ej, et, keep, exists)
    report.elapsed = time.monotonic() - started
    return report


# -- pair tests ----------------------------------------------------------------------------------


def _near_candidates(cat: Catalog, near_bits: int, informative: bool, report: DedupReport
                     ) -> tuple[np.ndarray, np.ndarray]:
    usable = np.flatnonzero(cat.has_signature)
    bi, bj = pc.band_pairs(cat.phash[usable], max_bits=near_bits + (NEAR_EMBED_EXTRA_BITS if informative else 0))
    bi, bj = usable[bi], usable[bj]
    report.candidates["pHash bands"] = len(bi)
    li, lj = pc.knn_pairs(pc.coarse_layout(cat.layouts[usable]), pc.LAYOUT_NEIGHBOURS) \
        if len(usable) > 1 else (np.zeros(0, np.int64), np.zeros(0, np.int64))
    li, lj = usable[li], usable[lj]
    report.candidates["colour-layout kNN"] = len(li)
    code = pc.unique_codes(np.concatenate([bi * cat.n + bj, li * cat.n + lj]))
    return code // cat.n, code % cat.n


def pair_scores(cat: Catalog, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pHash bits, colour distance, both flat) of pairs of catalog rows."""
    h = pc.as_unsigned(cat.phash)
    ham = pc.hamming(h[i], h[j]).astype(np.int64)
    col = pc.color_distance(cat.layouts[i], cat.layouts[j])
    return ham, col, pc.is_flat(cat.detail[i]) & pc.is_flat(cat.detail[j])


def _near_pass(cat: Catalog, i: np.ndarray, j: np.ndarray, bits: int, informative: bool) -> np.ndarray:
    if len(i) == 0:
        return np.zeros(0, dtype=bool)
    # Cheapest test first: only pairs within reach of a pHash rule (or both flat) go further.
    h = pc.as_unsigned(cat.phash)
    flat_i, flat_j = pc.is_flat(cat.detail[i]), pc.is_flat(cat.detail[j])
    reach = bits + (NEAR_EMBED_EXTRA_BITS if informative else 0)
    keep = np.flatnonzero((pc.hamming(h[i], h[j]) <= reach) | (flat_i & flat_j))
    ok = np.zeros(len(i), dtype=bool)
    ok[keep] = _near_pass_close(cat, i[keep], j[keep], bits, informative)
    return ok


def _near_pass_close(cat: Catalog, i: np.ndarray, j: np.ndarray, bits: int, informative: bool) -> np.ndarray:
    ham, col, both_flat = pair_scores(cat, i, j)
    textured = ~pc.is_flat(cat.detail[i]) & ~pc.is_flat(cat.detail[j])
    signed = cat.has_signature[i] & cat.has_signature[j]
    colour_ok = np.nan_to_num(col, nan=np.inf) <= NEAR_COLOR
    ok = signed & colour_ok & ((textured & (ham <= bits)) | both_flat)
    if informative and cat.vectors_available():
        stretch = signed & colour_ok & textured & (ham <= bits + NEAR_EMBED_EXTRA_BITS)
        ask = np.flatnonzero(ok | stretch)  # the model is consulted only where its answer matters
        cos = np.full(len(i), -1.0, dtype=np.float32)
        cos[ask] = cat.cosines(i[ask], j[ask])
        ok = (ok & (cos >= NEAR_VETO_COS)) | (stretch & (cos >= NEAR_EMBED_COS))
    return ok


def _similar_pass(cat: Catalog, i: np.ndarray, j: np.ndarray, cos: np.ndarray, threshold: float) -> np.ndarray:
    if len(i) == 0:
        return np.zeros(0, dtype=bool)
    t = cat.taken_ts
    gap = np.abs(t[i] - t[j])  # NaN when either has no capture time: never a burst
    burst = np.nan_to_num(gap, nan=np.inf) <= BURST_SECONDS
    return (cos >= threshold) | (burst & (cos >= threshold - BURST_BONUS))


# -- groups --------------------------------------------------------------------------------------


def _dismissed_rows(store: Store, cat: Catalog) -> list[tuple[int, int]]:
    """The catalog rows of the pairs dismissed as "not duplicates" (both in scope)."""
    pairs = pairs_among(store, cat.hashes)
    if not pairs:
        return []
    row = {h: r for r, h in enumerate(cat.hashes)}
    return [(row[a], row[b]) for a, b in pairs]


def _keep_apart(cat: Catalog, ei: np.ndarray, ej: np.ndarray, et: np.ndarray, apart: list[tuple[int, int]]
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The edges and components with every dismissed pair in different groups.

    A dismissed pair's own edge is dropped, and no chain of other edges may join them either:
    with A-B dismissed and C near both, C stays with the one it is closer to (edges are joined
    closest first: exact, then near by pHash bits, then similar by cosine) and the other leaves
    the group. Returns the edges that lie inside a group, the component of each row, and how
    many dismissed pairs would have shared a group without the dismissal.
    """
    n = cat.n
    plain = pc.components(n, ei, ej)
    honoured = sum(1 for a, b in apart if plain[a] == plain[b])
    codes = {min(a, b) * n + max(a, b) for a, b in apart}
    own = np.isin(np.minimum(ei, ej) * n + np.maximum(ei, ej), np.fromiter(codes, np.int64, len(codes)))
    ei, ej, et = ei[~own], ej[~own], et[~own]
    ham, _col, _flat = pair_scores(cat, ei, ej)
    closeness = ham.astype(np.float64)
    similar = et == Tier.SIMILAR.rank
    if similar.any() and cat.vectors_available():
        closeness[similar] = -cat.cosines(ei[similar], ej[similar])
    order = np.lexsort((ej, ei, closeness, et))  # stable: the same store always gives the same groups
    ei, ej, et = ei[order], ej[order], et[order]
    roots = pc.components_apart(n, ei, ej, apart)
    inside = roots[ei] == roots[ej]
    return ei[inside], ej[inside], et[inside], roots, honoured


def _build_groups(cat: Catalog, roots: np.ndarray, ei: np.ndarray, ej: np.ndarray, et: np.ndarray,
                  keep: KeepPolicy, exists: Callable[[str], bool]) -> tuple[list[Group], int]:
    by_root: dict[int, list[int]] = {}
    for img in range(cat.n):
        by_root.setdefault(int(roots[img]), []).append(img)
    adjacency: dict[int, list[tuple[int, int]]] = {}
    for a, b, t in zip(ei.tolist(), ej.tolist(), et.tolist(), strict=True):
        adjacency.setdefault(a, []).append((b, t))
        adjacency.setdefault(b, []).append((a, t))
    groups: list[Group] = []
    missing = 0
    grouped = [img for images in by_root.values() if sum(len(cat.files_of[k]) for k in images) > 1
               for img in images]
    if cat.vectors_available() and grouped:
        cat.prefetch(grouped)
    plans: list[tuple[int, list[int], str]] = []
    for images in by_root.values():
        files = [f for img in images for f in cat.files_of[img]]
        if len(files) < 2:
            continue
        present = [f for f in files if exists(cat.paths[f])]
        missing += len(files) - len(present)
        if len(present) < 2:
            continue
        keeper_file, reason = choose_keeper(cat, present, keep)
        order = [keeper_file, *sorted((f for f in present if f != keeper_file), key=lambda f: cat.paths[f])]
        plans.append((keeper_file, order, reason))
    # Every member's scores against its keeper, in one vectorized pass.
    a = np.array([int(cat.file_image[p[0]]) for p in plans for _ in p[1]], dtype=np.int64)
    b = np.array([int(cat.file_image[f]) for p in plans for f in p[1]], dtype=np.int64)
    ham, col, _ = pair_scores(cat, a, b)
    cos = cat.cosines(a, b) if cat.vectors_available() and len(a) else None
    start = 0
    for _keeper, order, reason in plans:
        end = start + len(order)
        scores = (ham[start:end], col[start:end], None if cos is None else cos[start:end])
        groups.append(_group(cat, order, reason, adjacency, scores))
        start = end
    groups.sort(key=lambda g: (-len(g.members), g.keeper.path))
    return groups, missing


def _group(cat: Catalog, order: list[int], reason: str, adjacency: dict[int, list[tuple[int, int]]],
           scores: tuple[np.ndarray, np.ndarray, np.ndarray | None]) -> Group:
    k_img = int(cat.file_image[order[0]])
    # Breadth-first from the keeper: each image's tier is the loosest edge on its path.
    label: dict[int, tuple[int, int | None]] = {k_img: (0, None)}
    queue = [k_img]
    while queue:
        a = queue.pop(0)
        for b, t in adjacency.get(a, []):
            if b not in label:
                label[b] = (max(label[a][0], t), a)
                queue.append(b)
    imgs = cat.file_image[np.array(order)]
    ham, col, cos = scores
    members = []
    loosest = Tier.EXACT
    for n, f in enumerate(order):
        img = int(imgs[n])
        m = _member(cat, f, Role.KEEPER if n == 0 else Role.DUPLICATE)
        if n > 0:
            rank, parent = label.get(img, (0, None))
            tier = TIERS[rank] if img != k_img else Tier.EXACT
            m.tier = tier
            loosest = max(loosest, tier, key=lambda t: t.rank)
            if cat.has_signature[k_img] and cat.has_signature[img]:
                m.hamming, m.color = int(ham[n]), round(float(col[n]), 1)
            if cos is not None:
                m.cosine = round(float(cos[n]), 4)
            if parent is not None and parent != k_img:
                m.via = cat.paths[cat.files_of[parent][0]]
        members.append(m)
    return Group(loosest, reason, members)


def _member(cat: Catalog, f: int, role: Role) -> Member:
    img = int(cat.file_image[f])
    tier: Tier | Literal[Role.KEEPER] = Role.KEEPER if role is Role.KEEPER else Tier.EXACT
    return Member(cat.paths[f], cat.hashes[img], role, tier,
                  int(cat.sizes[f]), cat.widths[img], cat.heights[img], cat.taken_at[img], int(cat.mtimes[f]))
