"""``/api/status``, ``/api/photo/ID`` and ``/api/upload`` without HTTP: plain dicts for the JSON answers."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from mcphotos import __version__
from mcphotos.errors import ImageError
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.serve.context import ApiError, ServeContext, Upload, photo_id
from mcphotos.serve.facts import best_caption, file_format, photo_facts


def status(ctx: ServeContext) -> dict:
    """Counts from a connection of its own: answered at once, even while the warm-up holds the library."""
    from mcphotos.store.database import DB_NAME, connect

    lib = ctx.library
    conn = connect(lib.store_dir / DB_NAME, readonly=True)
    try:
        photos = conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        files = conn.execute("SELECT COUNT(*) FROM files WHERE status = 'ok'").fetchone()[0]
    finally:
        conn.close()
    return {"store": str(lib.store_dir), "model": lib.spec.name, "photos": photos, "files": files,
            "engine": _engine_name(ctx), "version": __version__, "quarantine": ctx.quarantine,
            "warm": ctx.warm is not None}


def _engine_name(ctx: ServeContext) -> str:
    """The engine queries run on, named without loading one."""
    engines = ctx.library.engines()
    used = engines.used.get("query")
    if used:
        return used
    return "onnx (cpu, fp32)" if engines.manifest() is not None else "torch (loaded at the first new query)"


def photo(ctx: ServeContext, raw_id: str) -> dict:
    h = photo_id(raw_id)
    lib = ctx.library
    with ctx.lock:
        store = lib.store(create=False)
        facts = photo_facts(store, [h]).get(h)
        if facts is None or not facts.paths:
            raise ApiError(404, f"no indexed photo {h}")
        tags = lib.tags_for_hashes([h]).get(h, [])
        caption = best_caption(store, h)
        from mcphotos.ocr.textstore import stored_texts

        found = stored_texts(store, [h]).get(h)
    first = facts.paths[0]
    return {"id": h, "paths": list(facts.paths), "name": os.path.basename(first), "taken": facts.taken,
            "width": facts.width, "height": facts.height, "size": facts.size, "format": file_format(first),
            "duration": facts.duration, "tags": tags, "caption": caption,
            "text": found.result.text if found is not None and found.error is None else None}


def upload(ctx: ServeContext, name: str, data: bytes) -> dict:
    """Embed a query photo (decoded in a decode worker with the index's guards); keep its vector for this run."""
    from mcphotos.serve.decoding import Crashed

    if len(data) > ctx.max_upload_bytes:
        raise ApiError(413, f"the photo is over {ctx.max_upload_bytes // (1024 * 1024)} MB")
    name = os.path.basename(name or "upload") or "upload"
    lib = ctx.library
    with ctx.lock:
        spec = lib.preprocess()
    result = ctx.decoder.run(decode_query_photo, name, data, spec) if ctx.decoder is not None \
        else decode_query_photo(name, data, spec)
    if isinstance(result, Crashed):
        raise ApiError(415, f"{name}: {result.reason}")
    if isinstance(result, str):
        status = 413 if "too large" in result else 415
        raise ApiError(status, f"{name}: {result}")
    with ctx.lock:
        vector = lib.engine().encode_images(result[None])[0]
    uid = hashlib.blake2b(data, digest_size=10).hexdigest()
    ctx.add_upload(uid, Upload(name, vector))
    return {"upload": uid, "name": name}


def decode_query_photo(name: str, data: bytes, spec: PreprocessSpec) -> np.ndarray | str:
    """In a decode worker: the model's pixels of an uploaded photo, or why it cannot be read."""
    from mcphotos.indexing.raw import decode_file_for_model

    try:
        return decode_file_for_model(name, data, spec).pixels
    except ImageError as e:
        return e.message
