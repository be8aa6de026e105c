"""``/api/search`` without HTTP: find's syntax and filters from query parameters, answered as JSON.

The spec is a :class:`~mcphotos.search.query.FindSpec`, run through the library's own pieces
(``query_vector``'s combination, ``filters_for``, ``search_vector``, ``run_find`` for tag- or
text-only searches), so the page and ``mcphotos find`` cannot disagree. Two terms only the page
has: ``like=ID`` (an indexed photo's stored vector, ``find --image`` of that photo) and
``upload=U`` (a query photo sent to ``/api/upload``). ``@PATH`` terms are refused: the page names
photos by id, never by path.
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable, Sequence

import numpy as np

from mcphotos.library.base import absolute
from mcphotos.search.cutoff import Cut
from mcphotos.search.nearest import SearchHit
from mcphotos.search.query import FindSpec, Term, TermKind, combine, parse_date, parse_exts, parse_query
from mcphotos.serve.context import ApiError, ServeContext, photo_id
from mcphotos.serve.facts import photo_facts

DEFAULT_K = 60
MAX_K = 500

Params = Callable[[str], list[str]]  # name -> its values (repeatable parameters)


def search(ctx: ServeContext, params: Params) -> dict:
    t0 = time.perf_counter()
    k, offset = int_param(params, "k", DEFAULT_K, 1, MAX_K), int_param(params, "offset", 0, 0, 100_000)
    spec = build_spec(params, k + offset + 1)
    like = [photo_id(v) for v in params("like")]
    uploads = [ctx.upload(u) for u in params("upload")]
    lib = ctx.library
    with ctx.lock:
        store = lib.store(create=False)
        terms = spec.terms() if (spec.text or spec.tags or spec.contains) or not (like or uploads) else []
        if any(t.kind is TermKind.IMAGE for t in terms):
            raise ApiError(400, "@PATH terms are not taken here: use 'more like this' or drop a photo")
        extra: list[np.ndarray] = []
        for h in like:
            v = store.vector_for_hash(h)
            if v is None:
                raise ApiError(404, f"no indexed photo {h}")
            extra.append(v)
        extra += [u.vector for u in uploads]
        if not terms and not extra:
            hits = lib.run_find(spec)  # tags or recognized text alone
        else:
            hits = _by_vector(ctx, spec, terms, extra)
        page = hits[offset:offset + k]
        facts = photo_facts(store, [h.hash for h in page])
    names = {h: f.paths[0] for h, f in facts.items() if f.paths}
    command = find_command(spec, k, [names.get(h, h) for h in like] + [u.name for u in uploads])
    return {"command": command,
            "hits": [_hit(h, facts[h.hash].taken if h.hash in facts else None) for h in page],
            "offset": offset, "more": len(hits) > offset + k, "elapsed_ms": round((time.perf_counter() - t0) * 1e3, 2)}


def _by_vector(ctx: ServeContext, spec: FindSpec, terms: Sequence[Term], extra: Sequence[np.ndarray]
               ) -> list[SearchHit]:
    """find's path for a query with terms: one combined vector, the spec's filters and cut-off."""
    lib = ctx.library
    texts = [t.value for t in terms if t.kind is TermKind.TEXT]
    rows = list(lib.text_vectors(texts)) if texts else []
    vector = combine(np.stack([*rows, *extra]), [t.weight for t in terms] + [1.0] * len(extra))
    return lib.find_by_vector(spec, vector)


def build_spec(params: Params, k: int) -> FindSpec:
    """The FindSpec the parameters say (the same checks as the command line's options)."""
    q = (params("q") or [""])[0].strip()
    if q:
        parse_query(q)  # a malformed query is a 400 before anything opens
    relative = _float(params, "relative")
    Cut(relative, _flag(params, "auto_cut"))
    after, before = _one(params, "after"), _one(params, "before")
    spec = FindSpec(text=q or None, k=k, in_dirs=tuple(absolute(params("in"))), exts=parse_exts(params("ext")),
                    after=parse_date(after, "after") if after else None,
                    before=parse_date(before, "before") if before else None,
                    tags=tuple(t for t in params("tag") if t.strip()), min_score=_float(params, "min_score"),
                    relative=relative, auto_cut=_flag(params, "auto_cut"),
                    contains=tuple(c for c in params("contains") if c.strip()))
    if spec.contains:
        from mcphotos.ocr.textstore import fts_query

        fts_query(spec.contains)
    return spec


def find_command(spec: FindSpec, k: int, images: Sequence[str] = ()) -> str:
    """The ``mcphotos find …`` line that asks the same (uploads by their file name)."""
    parts = ["mcphotos", "find"] + ([shlex.quote(spec.text)] if spec.text else [])
    parts += [f"--image {shlex.quote(p)}" for p in images]
    parts += [f"--in {shlex.quote(d)}" for d in spec.in_dirs]
    parts += [f"--ext {e.lstrip('.')}" for e in dict.fromkeys(_primary(spec.exts))]
    parts += [f"--tag {shlex.quote(t)}" for t in spec.tags] + [f"--contains {shlex.quote(c)}" for c in spec.contains]
    for flag, value in (("--after", spec.after), ("--before", spec.before), ("--min-score", spec.min_score),
                        ("--relative", spec.relative)):
        if value is not None:
            parts.append(f"{flag} {shlex.quote(str(value))}")
    if spec.auto_cut:
        parts.append("--auto-cut")
    return " ".join([*parts, f"-k {k}"])


def _primary(exts: Sequence[str]) -> list[str]:
    """parse_exts adds aliases (jpg: jpeg, jpe); the command line needs only the first of each family."""
    out: list[str] = []
    for e in exts:
        if not any(e in parse_exts([o]) for o in out):
            out.append(e)
    return out


def _hit(h: SearchHit, taken: str | None) -> dict:
    return {"id": h.hash, "path": h.path, "name": os.path.basename(h.path), "score": round(float(h.score), 6),
            "taken": taken, "frame_s": h.frame_s, "snippet": h.snippet}


def _one(params: Params, name: str) -> str | None:
    values = [v for v in params(name) if v.strip()]
    return values[0].strip() if values else None


def int_param(params: Params, name: str, default: int, lo: int, hi: int) -> int:
    raw = _one(params, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is not a whole number") from None
    if not lo <= value <= hi:
        raise ApiError(400, f"{name}={value} is out of range ({lo} to {hi})")
    return value


def _float(params: Params, name: str) -> float | None:
    raw = _one(params, name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is not a number") from None


def _flag(params: Params, name: str) -> bool:
    return (_one(params, name) or "0").lower() in ("1", "true", "yes", "on")
