"""``create_app``: the Starlette app of ``mcphotos serve`` (pages, static files, the JSON API).

The routes are thin: each parses its request, calls one function of querying.py, photos.py,
duplicates.py or the thumbnail cache, and answers JSON. Every request first passes
security.Guard. docs/serve-api.md is the contract with the pages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from mcphotos.errors import ImageError, McPhotosError, StoreError, StoreLockedError, UsageError
from mcphotos.serve import duplicates, photos, querying
from mcphotos.serve.context import ApiError, ServeContext, photo_id
from mcphotos.serve.facts import existing_path, photo_facts
from mcphotos.serve.security import Guard, host_names
from mcphotos.serve.thumbs import THUMB, VIEW, ThumbnailCache

if TYPE_CHECKING:
    from mcphotos.library import Library

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "index.html", "/review": "review.html"}
THUMB_CACHE = "private, max-age=86400"


def create_app(library: Library, token: str, host: str = "127.0.0.1", port: int = 0, quarantine: str | None = None,
               thumbs: ThumbnailCache | None = None, max_upload_bytes: int = 25 * 1024 * 1024) -> Guard:
    """The app over ``library``'s store; ``port`` may be set later on ``app.context`` (``--port 0``)."""
    ctx = ServeContext(library, token, host, port, quarantine, thumbs or ThumbnailCache(), max_upload_bytes)
    routes: list[BaseRoute] = [
        *[Route(path, _page(name), methods=["GET"]) for path, name in PAGES.items()],
        Route("/api/status", lambda r: _json(photos.status(ctx)), methods=["GET"]),
        Route("/api/search", lambda r: _json(querying.search(ctx, r.query_params.getlist)), methods=["GET"]),
        Route("/api/photo/{id}", lambda r: _json(photos.photo(ctx, r.path_params["id"])), methods=["GET"]),
        Route("/api/upload", _upload(ctx), methods=["POST"]),
        Route("/api/dedup", lambda r: _json(_dedup_page(ctx, r)), methods=["GET"]),
        Route("/api/dedup/move", _action(ctx, duplicates.move), methods=["POST"]),
        Route("/api/dedup/hardlink", _action(ctx, duplicates.hardlink), methods=["POST"]),
        Route("/api/dedup/dismiss", _action(ctx, duplicates.dismiss), methods=["POST"]),
        Route("/api/undo", _undo(ctx), methods=["POST"]),
        Route("/thumb/{id}", lambda r: _image(ctx, r.path_params["id"], THUMB), methods=["GET"]),
        Route("/view/{id}", lambda r: _image(ctx, r.path_params["id"], VIEW), methods=["GET"]),
    ]
    if STATIC.is_dir():  # StaticFiles refuses paths out of it and lists no directory
        routes.append(Mount("/static", app=StaticFiles(directory=STATIC), name="static"))
    app = Starlette(routes=routes, exception_handlers={McPhotosError: _error, HTTPException: _http_error,
                                                      Exception: _crash})
    app.state.context = ctx
    guard = Guard(app, token, lambda: host_names(ctx.host, ctx.port))
    guard.context = ctx  # type: ignore[attr-defined]
    return guard


# -- routes ---------------------------------------------------------------------------------------


def _page(name: str) -> Any:
    def page(request: Request) -> Response:
        path = STATIC / name
        if not path.is_file():
            raise ApiError(404, f"the web page {name} is not installed (reinstall mcphotos[serve])")
        return FileResponse(path, media_type="text/html; charset=utf-8")

    return page


def _dedup_page(ctx: ServeContext, r: Request) -> dict:
    q = r.query_params
    tier = q.get("tier", "near")
    page = querying.int_param(q.getlist, "page", 0, 0, 1_000_000)
    per_page = querying.int_param(q.getlist, "per_page", duplicates.DEFAULT_PER_PAGE, 1, duplicates.MAX_PER_PAGE)
    return duplicates.groups_page(ctx, tier, page, per_page)


def _action(ctx: ServeContext, act: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        body = await _body(request)
        keys = body.get("keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise ApiError(400, 'the body must be {"keys": ["…"], "tier": "near"}')
        tier = body.get("tier", "near")
        from starlette.concurrency import run_in_threadpool

        return _json(await run_in_threadpool(act, ctx, str(tier), keys))

    return endpoint


def _undo(ctx: ServeContext) -> Any:
    async def endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        body = await _body(request, allow_empty=True)
        journal = body.get("journal")
        if journal is not None and not isinstance(journal, str):
            raise ApiError(400, 'the body must be {"journal": "…"} or empty')
        return _json(await run_in_threadpool(duplicates.undo, ctx, journal))

    return endpoint


def _upload(ctx: ServeContext) -> Any:
    async def endpoint(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        name, data = await _read_upload(request, ctx.max_upload_bytes)
        return _json(await run_in_threadpool(photos.upload, ctx, name, data))

    return endpoint


def _image(ctx: ServeContext, raw_id: str, side: int) -> Response:
    h = photo_id(raw_id)
    with ctx.lock:
        facts = photo_facts(ctx.library.store(create=False), [h]).get(h)
    if facts is None:
        raise ApiError(404, f"no indexed photo {h}")
    assert ctx.thumbs is not None
    out = ctx.thumbs.get(h, existing_path(facts), side)
    if out is None:
        return Response(ctx.thumbs.grey(side), media_type="image/webp", headers={"x-mcphotos-grey": "1"})
    return FileResponse(out, media_type="image/webp", headers={"cache-control": THUMB_CACHE})


# -- request bodies ---------------------------------------------------------------------------------


async def _body(request: Request, allow_empty: bool = False) -> dict:
    raw = await _read_capped(request, 1024 * 1024)
    if not raw.strip() and allow_empty:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "the body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


async def _read_capped(request: Request, cap: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes ``cap`` (Content-Length is checked first)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise ApiError(413, f"the request is over {cap // (1024 * 1024) or 1} MB")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise ApiError(413, f"the request is over {cap // (1024 * 1024) or 1} MB")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_upload(request: Request, cap: int) -> tuple[str, bytes]:
    """(file name, bytes) of the multipart field ``file``, read with the size cap."""
    raw = await _read_capped(request, cap + 64 * 1024)  # the multipart envelope around the photo

    async def replay() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=4)
    try:
        part = form.get("file")
        if part is None or isinstance(part, str):
            raise ApiError(400, "send the photo as the multipart field 'file'")
        return part.filename or "upload", await part.read()
    finally:
        await form.close()


# -- answers ----------------------------------------------------------------------------------------


def _json(data: Any) -> JSONResponse:
    return JSONResponse(data)


def _error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, ApiError):
        status = exc.status
    elif isinstance(exc, StoreLockedError):
        status = 409
    elif isinstance(exc, UsageError):
        status = 400
    elif isinstance(exc, ImageError):
        status = 415
    elif isinstance(exc, StoreError):
        status = 503
    else:
        status = 500
    return JSONResponse({"error": str(exc)}, status_code=status)


def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail or "not found"}, status_code=exc.status_code)


def _crash(request: Request, exc: Exception) -> Response:
    import logging

    logging.getLogger("mcphotos.serve").exception("%s %s failed", request.method, request.url.path)
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)
