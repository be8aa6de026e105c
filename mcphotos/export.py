"""Embeddings for other tools: per photo (``embed``), per text, or the whole store (``export``).

``embed_images`` is also how a query by example gets its vector: a photo whose bytes are in
the store (matched by path with unchanged size and mtime, else by content hash) reuses the
stored vector without loading the model; any other photo is decoded and embedded on the fly.

Export layout (the one clip-retrieval's ``clip_index`` and ``embedding_reader`` read)::

    DIR/img_emb/img_emb_0.npy          float32, one L2-normalized row per file, N x dim
    DIR/metadata/metadata_0.jsonl      one JSON object per row, same order:
                                       image_path, hash, size, mtime, mtime_ns, taken_at, width, height, tags
    DIR/metadata/metadata_0.parquet    the same table, written only when pyarrow is installed
    DIR/info.json                      model, dim, count, format version, preprocessing
                                       (so ``mcphotos merge DIR`` can check it is this store's)

Rows are files, not images: two copies of one photo are two rows with the same vector.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from mcphotos.errors import ImageError, UsageError
from mcphotos.store.database import Store, blob_to_vector, decode_path
from mcphotos.vectors import Unreadable, Vectors

EXPORT_FORMAT = 1

TagLookup = Callable[[Sequence[str]], dict[str, list[str]]]  # hashes -> {hash: [tag, ...]}


@dataclass(frozen=True)
class Embedding:
    path: str
    hash: str
    vector: np.ndarray
    cached: bool  # True when the vector came from the store (no model needed)


def embed_images(vectors: Vectors, paths: Sequence[str]) -> list[Embedding]:
    """Unit embeddings of the photos at ``paths``, from the store when it has them."""
    out = []
    for given, v in vectors.photos(paths).items():
        path = os.path.abspath(os.path.expanduser(given))
        if isinstance(v, Unreadable):
            if v.missing:
                raise UsageError(f"no such photo: {given}", "give the path of an image file")
            raise ImageError(f"cannot read {path}: {v.reason}")
        out.append(Embedding(path, v.hash, v.vector, v.from_store))
    return out


def write_npy(out: Path, vectors: np.ndarray, names: Sequence[str]) -> Path:
    """``out`` (.npy, rows in order) plus ``out`` with suffix ``.paths.txt``: one name per line.

    Names are written as their file-system bytes; a name containing a newline cannot be
    represented in a line-based file and is refused (use --json for those).
    """
    out = Path(out)
    if out.suffix != ".npy":
        raise UsageError(f"--out {out} must end in .npy")
    bad = [n for n in names if "\n" in n]
    if bad:
        raise UsageError(f"{bad[0]!r} contains a newline, which the paths file cannot hold", "use --json instead")
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, np.asarray(vectors, dtype=np.float32))
    side = paths_file_for(out)
    side.write_bytes(b"".join(os.fsencode(n) + b"\n" for n in names))
    return side


def paths_file_for(npy: Path) -> Path:
    return npy.with_suffix(".paths.txt")


@dataclass(frozen=True)
class ExportReport:
    directory: str
    rows: int
    dim: int
    parquet: bool


def export_store(store: Store, directory: str | os.PathLike[str], tags: TagLookup | None = None,
                 model: dict | None = None) -> ExportReport:
    """Write every indexed file's vector and metadata to ``directory`` (layout in the module doc)."""
    root = Path(directory)
    dim = store.dim()
    if dim is None:
        raise UsageError("the store holds no vectors yet", "run `mcphotos index DIR` first")
    (root / "img_emb").mkdir(parents=True, exist_ok=True)
    (root / "metadata").mkdir(parents=True, exist_ok=True)
    sql = ("SELECT files.path, files.size, files.mtime_ns, images.hash, images.taken_at, images.width, "
           "images.height, images.vector FROM files JOIN images ON images.hash = files.hash "
           "WHERE files.status = 'ok' ORDER BY files.path")
    # One read transaction: the count and the rows come from the same snapshot (WAL).
    store.conn.execute("BEGIN")
    try:
        return _export(store, root, dim, sql, tags, model)
    finally:
        store.conn.execute("COMMIT")


def _export(store: Store, root: Path, dim: int, sql: str, tags: TagLookup | None, model: dict | None
            ) -> ExportReport:
    count = store.conn.execute("SELECT COUNT(*) FROM files JOIN images ON images.hash = files.hash "
                               "WHERE files.status = 'ok'").fetchone()[0]
    npy = root / "img_emb" / "img_emb_0.npy"
    jsonl = root / "metadata" / "metadata_0.jsonl"
    tmp_npy, tmp_jsonl = npy.with_name(".img_emb_0.npy.tmp"), jsonl.with_name(".metadata_0.jsonl.tmp")
    # Stream rows into a memory-mapped .npy: a 1M-photo store never sits in memory at once.
    arr = np.lib.format.open_memmap(tmp_npy, mode="w+", dtype=np.float32, shape=(count, dim))
    # Rows are kept in memory only to write the optional parquet copy.
    keep_rows = _has_pyarrow()
    rows: list[dict] = []
    written = 0
    with open(tmp_jsonl, "w", encoding="utf-8") as meta:
        cursor = store.conn.execute(sql)
        i = 0
        while batch := cursor.fetchmany(2048):
            hashes = [r[3] for r in batch]
            tag_map = tags(hashes) if tags is not None else {}
            for path, size, mtime_ns, h, taken_at, w, hgt, vec in batch:
                arr[i] = blob_to_vector(vec)
                row = {"image_path": decode_path(path), "hash": h, "size": size,
                       "mtime": datetime.fromtimestamp(mtime_ns / 1e9).isoformat(timespec="seconds"),
                       "mtime_ns": mtime_ns, "taken_at": taken_at, "width": w, "height": hgt,
                       "tags": tag_map.get(h, [])}
                meta.write(json.dumps(row, ensure_ascii=True) + "\n")
                if keep_rows:
                    rows.append(row)
                i += 1
        written = i
    arr.flush()
    del arr
    os.replace(tmp_npy, npy)
    os.replace(tmp_jsonl, jsonl)
    parquet = keep_rows and _write_parquet(rows, root / "metadata" / "metadata_0.parquet")
    info = {"format": EXPORT_FORMAT, "model": model or store.model_identity(), "dim": dim, "count": written,
            "exported_at": time.time(), "embeddings": "img_emb/img_emb_0.npy",
            "metadata": "metadata/metadata_0.jsonl", "preprocess": _preprocess(store)}
    (root / "info.json").write_text(json.dumps(info, indent=2) + "\n")
    return ExportReport(str(root), written, dim, parquet)


def _preprocess(store: Store) -> dict | None:
    raw = store.get_meta("preprocess")
    return json.loads(raw) if raw else None


def _has_pyarrow() -> bool:
    import importlib.util

    return importlib.util.find_spec("pyarrow") is not None


def _write_parquet(rows: list[dict], path: Path) -> bool:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return False
    pq.write_table(pa.Table.from_pylist(rows), path)
    return True
