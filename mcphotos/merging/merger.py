"""Merge another store's (or an export's) vectors into this one, by content hash.

A vector is a function of the file's bytes, the model and the preprocessing: where the
content hash, the model identity and the preprocessing agree, a vector computed on another
machine is the vector this one would compute. So merging is inserting the hashes this store
lacks, with what is stored beside them (size and capture time, perceptual signatures, video
frames, tags, captions), and never touching the hashes it has:

- a different model identity, hash function, dimension or preprocessing is refused, naming both;
- a hash already here whose vector agrees (cosine >= ``MIN_COSINE``) counts as *present*; its
  missing perceptual signatures are filled in, and tags/captions this store lacks are added;
- a hash already here whose vector disagrees counts as *conflicting*: this store's row is kept,
  and nothing of the source's about that hash is imported;
- each batch is one transaction, the writer lock is held throughout, and a second merge of the
  same source changes nothing (tags and captions are added per label set / captioner and
  method only where this store has none, so a set is never half one store's, half the other's).

Files (paths) are not merged: the source's paths name another machine's disks. ``index`` then
finds the merged vectors by content hash and embeds nothing it already has.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from mcphotos.errors import Interrupted, McPhotosError
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.merging.sources import MergeSource, SourceImage
from mcphotos.store.database import ImageRecord, Store, blob_to_vector
from mcphotos.store.dismissals import insert_rows
from mcphotos.store.sql import chunks
from mcphotos.store.videos import VideoRecord, put_videos

# bf16 keeps 8 bits of mantissa: an embedding computed in bf16 or fp16 (a GPU box) stays within
# a cosine of 0.99 of the fp32 one. Same bytes with a vector further off is not the same model.
MIN_COSINE = 0.99
BATCH = 1000

ProgressCallback = Callable[[int, int], None]
log = logging.getLogger(__name__)


class MergeRefused(McPhotosError):
    """The source's vectors were made by another model, hash or preprocessing."""


@dataclass
class MergeReport:
    source: str
    kind: str  # "store" or "export"
    new: int = 0  # hashes this store lacked, inserted
    present: int = 0  # hashes already here with an agreeing vector
    conflicting: int = 0  # hashes already here with a vector beyond MIN_COSINE: this store's kept
    invalid: int = 0  # source rows with a vector that is not finite, zero, or of the wrong length
    tags: int = 0  # tag rows added
    captions: int = 0  # caption rows added
    signatures: int = 0  # present rows whose missing perceptual signatures were filled in
    dismissed: int = 0  # pairs marked "not duplicates" added
    elapsed: float = 0.0

    @property
    def seen(self) -> int:
        return self.new + self.present + self.conflicting + self.invalid


def _describe(identity: dict) -> str:
    return f"{identity.get('name')} ({identity.get('source')}, hash {identity.get('hash')}, dim {identity.get('dim')})"


def _describe_pre(pre: dict) -> str:
    spec = PreprocessSpec.from_dict(pre)
    return (f"{spec.size[0]}x{spec.size[1]} {spec.interpolation} {spec.resize_mode}, "
            f"mean {[round(m, 4) for m in spec.mean]}, std {[round(s, 4) for s in spec.std]}")


def check_compatible(store: Store, source: MergeSource, identity: dict,
                     target_preprocess: Callable[[], dict | None]) -> None:
    """Refuse a source whose vectors this store cannot hold as its own; adopt its dim/preprocessing
    when this store has none yet."""
    theirs = source.identity()
    if theirs is None:
        if source.count() == 0:
            return
        raise MergeRefused(f"{source.path} does not record which model made its vectors")
    ours = dict(identity, dim=store.dim())
    for key in ("name", "source", "hash"):
        if theirs.get(key) != ours.get(key):
            raise MergeRefused(f"{source.path} holds vectors of {_describe(theirs)}; this store holds "
                               f"{_describe(ours)}", "merge into the store of the same model (--model/--weights)")
    if ours["dim"] is not None and theirs.get("dim") is not None and int(theirs["dim"]) != ours["dim"]:
        raise MergeRefused(f"{source.path} holds vectors of {_describe(theirs)}; this store holds {_describe(ours)}")
    pre_theirs = source.preprocess()
    pre_ours = json.loads(raw) if (raw := store.get_meta("preprocess")) else None
    if pre_ours is None and store.image_count() > 0:
        pre_ours = target_preprocess()
    if pre_theirs is None:
        if source.count() > 0:
            log.warning("%s does not record its preprocessing; assuming it is this store's", source.path)
    elif pre_ours is not None and PreprocessSpec.from_dict(pre_theirs) != PreprocessSpec.from_dict(pre_ours):
        raise MergeRefused(f"{source.path} was embedded with preprocessing {_describe_pre(pre_theirs)}; this store "
                           f"with {_describe_pre(pre_ours)}", "vectors of different preprocessing do not compare")
    if ours["dim"] is None and theirs.get("dim") is not None:
        store.update_model_identity(dim=int(theirs["dim"]))
    if store.get_meta("preprocess") is None and (pre_ours or pre_theirs) is not None:
        with store.transaction():
            store.set_meta("preprocess", json.dumps(pre_ours or pre_theirs))


def merge_into(store: Store, source: MergeSource, identity: dict, target_preprocess: Callable[[], dict | None],
               batch_size: int = BATCH, on_progress: ProgressCallback | None = None) -> MergeReport:
    """Merge ``source`` into ``store`` (see the module docstring). Takes the writer lock."""
    started = time.monotonic()
    report = MergeReport(str(source.path), source.kind)
    with store.writer_lock():
        check_compatible(store, source, identity, target_preprocess)
        dim = store.dim()
        total = source.count()
        try:
            for batch in source.batches(batch_size):
                _merge_batch(store, source, batch, dim, report)
                if on_progress is not None:
                    on_progress(report.seen, total)
            # A person's "not duplicates" decisions are about contents, so they hold here too.
            with store.transaction():
                report.dismissed = insert_rows(store, source.dismissed())
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: kept {report.new} new vectors committed so far",
                              "run the same merge again to finish it") from None
    report.elapsed = time.monotonic() - started
    return report


def _valid(v: np.ndarray, dim: int | None) -> bool:
    return v.ndim == 1 and (dim is None or len(v) == dim) and bool(np.all(np.isfinite(v))) and bool(np.any(v))


def _agree(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    cos = float(np.dot(a, b) / max(float(np.linalg.norm(a) * np.linalg.norm(b)), 1e-12))
    return cos >= MIN_COSINE


def _merge_batch(store: Store, source: MergeSource, batch: list[SourceImage], dim: int | None,
                 report: MergeReport) -> None:
    conn = store.conn
    valid = [im for im in batch if _valid(im.vector, dim)]
    report.invalid += len(batch) - len(valid)
    with store.transaction():
        here: dict[str, tuple[bytes, int | None, bytes | None, float | None]] = {}
        for part, marks in chunks([im.hash for im in valid]):
            for h, blob, ph, co, de in conn.execute(
                    f"SELECT hash, vector, phash, colors, detail FROM images WHERE hash IN ({marks})", part):
                here[h] = (blob, ph, co, de)
        new = [im for im in valid if im.hash not in here]
        keep: list[str] = [im.hash for im in new]  # hashes whose tags and captions may come along
        fills: list[tuple] = []
        for im in valid:
            if im.hash not in here:
                continue
            blob, ph, co, de = here[im.hash]
            if not _agree(blob_to_vector(blob), im.vector):
                report.conflicting += 1
                continue
            report.present += 1
            keep.append(im.hash)
            if (ph is None and im.phash is not None) or (co is None and im.colors is not None) \
                    or (de is None and im.detail is not None):
                fills.append((im.phash, im.colors, im.detail, im.hash))
        store.put_images(ImageRecord(im.hash, im.vector, im.width, im.height, im.taken_at, im.phash, im.colors,
                                     im.detail) for im in new)
        report.new += len(new)
        conn.executemany("UPDATE images SET phash = COALESCE(phash, ?), colors = COALESCE(colors, ?), "
                         "detail = COALESCE(detail, ?) WHERE hash = ?", fills)
        report.signatures += len(fills)
        _copy_videos(store, source, [im for im in new if im.duration is not None])
        report.tags += _copy_grouped(store, "tags", ("hash", "label_set"), source.tags(keep),
                                     "INSERT INTO tags(hash, label_set, label, score, tagged_at) VALUES(?, ?, ?, ?, ?)",
                                     keep)
        report.captions += _copy_grouped(
            store, "captions", ("hash", "captioner", "method"), source.captions(keep),
            "INSERT INTO captions(hash, captioner, method, rank, text, cosine, logprob, created_at) "
            "VALUES(?, ?, ?, ?, ?, ?, ?, ?)", keep)


def _copy_videos(store: Store, source: MergeSource, videos: list[SourceImage]) -> None:
    if not videos:
        return
    frames: dict[str, list[tuple[float, np.ndarray]]] = {}
    for h, t, blob in source.frames([v.hash for v in videos]):
        frames.setdefault(h, []).append((float(t), blob_to_vector(blob)))
    put_videos(store, [VideoRecord(v.hash, float(v.duration or 0.0), v.ended_at, tuple(sorted(frames.get(v.hash, []),
                                                                                            key=lambda f: f[0])))
                       for v in videos])


def _copy_grouped(store: Store, table: str, key: tuple[str, ...], rows: Sequence[tuple], insert: str,
                  hashes: Sequence[str]) -> int:
    """Insert ``rows`` whose group (``key`` columns, leading in each row) this store has none of."""
    if not rows:
        return 0
    have: set[tuple] = set()
    cols = ", ".join(key)
    for part, marks in chunks(list(hashes)):
        have.update(store.conn.execute(f"SELECT DISTINCT {cols} FROM {table} WHERE hash IN ({marks})", part))
    fresh = [r for r in rows if tuple(r[:len(key)]) not in have]
    store.conn.executemany(insert, fresh)
    return len(fresh)
