"""The guards every request passes: it serves a person's private photos.

In this order, each answering with one JSON line (or a short page for a browser):

1. **Host** must be a loopback name (or the ``--host`` given) with the server's port: 421 otherwise.
   A page on another site that rebinds its DNS name to 127.0.0.1 sends its own name here.
2. **Token**: the cookie ``mcphotos_token`` (set by ``GET /?token=…``, which redirects to ``/``)
   or ``Authorization: Bearer …``, compared in constant time: 401 otherwise.
3. **Same origin** for state-changing methods authenticated by the cookie: ``Origin`` (else
   ``Referer``) must be this server: 403 otherwise (a cross-site form or fetch carries the cookie
   only where the browser ignores SameSite; a Bearer header is never sent by another site).
4. Every answer carries a strict Content-Security-Policy, ``nosniff``, no referrer, and
   ``no-store`` unless the route chose its own caching (thumbnails).

Plain ASGI, not a Starlette middleware class: it runs before routing, for every path.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "mcphotos_token"
CSP = ("default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY")]
# The page a browser gets when refused. It may not load the app's stylesheet (that needs the token),
# so its one inline style is allowed by its hash, on this response only; nothing else runs.
REFUSAL_STYLE = (
    ":root{color-scheme:light dark;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans',sans-serif}"
    "body{margin:0;min-height:100vh;display:grid;place-items:center;background:#f6f7fb;color:#171a23}"
    "main{max-width:34rem;margin:1.5rem;padding:2rem 2.25rem;border-radius:14px;background:#fff;"
    "box-shadow:0 4px 16px rgb(16 24 40/8%)}h1{font-size:1.25rem;margin:0 0 .75rem}"
    "p{line-height:1.5;margin:.5rem 0}.muted{color:#646b7d}code{font-family:ui-monospace,monospace;"
    "background:rgb(91 91 240/12%);padding:.1rem .35rem;border-radius:6px}"
    "@media (prefers-color-scheme:dark){body{background:#0f1117;color:#e8eaf1}main{background:#181b24}"
    ".muted{color:#969db0}}")
REFUSAL_PAGE = ("<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport "
                "content='width=device-width,initial-scale=1'><title>mcphotos: open the link it printed</title>"
                f"<style>{REFUSAL_STYLE}</style><main><h1>mcphotos</h1><p>{{message}}.</p>"
                "<p class=muted>The link with <code>?token=…</code> is the first line <code>mcphotos serve</code> "
                "prints; <code>mcphotos status</code> shows whether a server runs.</p></main>")
REFUSAL_CSP = CSP.replace("default-src 'self'", "default-src 'none'") + \
    "; style-src 'sha256-" + base64.b64encode(hashlib.sha256(REFUSAL_STYLE.encode()).digest()).decode() + "'"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


@functools.lru_cache(maxsize=8)  # asked on every request; the machine's names are looked up once
def host_names(bind_host: str, port: int) -> frozenset[str]:
    """The Host header values this server answers to: loopback names, and ``--host`` if another.

    A wildcard ``--host`` (0.0.0.0, ::) also answers to this machine's name and its addresses,
    never to whatever name a request brings (which is what DNS rebinding relies on).
    """
    names = set(LOOPBACK_NAMES)
    if bind_host in ("0.0.0.0", "::", ""):
        names |= _own_names()
    elif bind_host not in ("127.0.0.1", "localhost", "::1"):
        names.add(_bracketed(bind_host))
    return frozenset(f"{n}:{port}".lower() for n in names)


def _own_names() -> set[str]:
    import socket

    names = {socket.gethostname(), socket.getfqdn()}
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None)
    except OSError:
        infos = []
    names |= {_bracketed(str(info[4][0])) for info in infos}
    return {n for n in names if n}


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str


class Guard:
    """ASGI middleware: the checks above, then ``app``, whose answers get the security headers."""

    def __init__(self, app: ASGIApp, token: str, hosts: Callable[[], frozenset[str]]) -> None:
        self.app = app
        self.token = token.encode()
        self.hosts = hosts  # a callable: the port is known only once the socket is bound

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self.app(scope, receive, send)
            return  # no websockets
        headers = _headers(scope)
        verdict = self.check(scope, headers)
        send = _with_security_headers(send)
        if verdict is not None:
            await _refuse(scope, headers, send, verdict)
            return
        if scope["path"] == "/" and scope["method"] == "GET" and _query_token(scope) is not None:
            await _set_cookie_and_redirect(send, _query_token(scope) or "")
            return
        await self.app(scope, receive, send)

    def check(self, scope: Scope, headers: dict[str, str]) -> Verdict | None:
        """Why this request is refused, or None."""
        host = headers.get("host", "").lower()
        if host not in self.hosts():
            return Verdict(421, f"this server answers only as {sorted(self.hosts())[0]} (Host {host or 'missing'})")
        bearer = _bearer(headers)
        given = bearer if bearer is not None else _cookie(headers)
        if given is None and scope["path"] == "/" and scope["method"] == "GET":
            given = _query_token(scope)
        if given is None:
            return Verdict(401, "no token: open the URL that `mcphotos serve` printed")
        if not hmac.compare_digest(given.encode(), self.token):
            return Verdict(401, "wrong token: open the URL that `mcphotos serve` printed (it changes every run)")
        if scope["method"] not in SAFE_METHODS and (bearer is None or "origin" in headers):
            origin = headers.get("origin")
            if origin is None and "referer" in headers:
                parts = urlsplit(headers["referer"])
                origin = f"{parts.scheme}://{parts.netloc}"
            if origin is None or origin.lower() not in {f"http://{h}" for h in self.hosts()}:
                return Verdict(403, f"cross-origin request refused (Origin {origin or 'missing'})")
        return None


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in scope.get("headers", []):
        out.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
    return out


def _bearer(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _cookie(headers: dict[str, str]) -> str | None:
    if "cookie" not in headers:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers["cookie"])
    except Exception:  # a malformed cookie header is no token
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


def _query_token(scope: Scope) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
    return values[0] if values else None


def _with_security_headers(send: Send) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers += [h for h in SECURITY_HEADERS if h[0] not in present]
            if b"cache-control" not in present:
                headers.append((b"cache-control", b"no-store"))
            message["headers"] = headers
        await send(message)

    return wrapped


async def _refuse(scope: Scope, headers: dict[str, str], send: Send, verdict: Verdict) -> None:
    wants_page = scope["method"] == "GET" and "text/html" in headers.get("accept", "") \
        and not scope["path"].startswith("/api/")
    extra: list[tuple[bytes, bytes]] = []
    if wants_page:
        message = re.sub(r"`([^`]+)`", r"<code>\1</code>", _escape(verdict.message))
        body = REFUSAL_PAGE.replace("{message}", message).encode()
        kind = b"text/html; charset=utf-8"
        extra = [(b"content-security-policy", REFUSAL_CSP.encode())]
    else:
        body = json.dumps({"error": verdict.message}).encode()
        kind = b"application/json"
    await send({"type": "http.response.start", "status": verdict.status,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()), *extra]})
    await send({"type": "http.response.body", "body": body})


async def _set_cookie_and_redirect(send: Send, token: str) -> None:
    cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/".encode()
    await send({"type": "http.response.start", "status": 303,
                "headers": [(b"location", b"/"), (b"set-cookie", cookie), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
