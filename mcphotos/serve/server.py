"""Run the app: a socket bound on loopback, uvicorn, the URL line once it answers, a clean stop.

The port is bound here before the app is made (``--port 0`` picks a free one), so the Host guard
knows it. The URL is handed to ``on_ready`` only once uvicorn accepts connections. SIGINT and
SIGTERM stop it gracefully and the process then exits 0 (uvicorn alone re-raises the signal after
its shutdown, which would kill the process instead); the run file is removed on the way out.

Beside the app it runs the CLI's warm model (mcphotos/warm/server.py) on the same library and lock;
that opens the ONNX text tower and the search index in a background thread once the server
answers, so neither the first query in the page nor the CLI's pays for them. With a prepared
runtime, torch is never imported.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import uvicorn

from mcphotos.errors import McPhotosError
from mcphotos.serve.app import create_app
from mcphotos.serve.runfile import read_runfile, remove_runfile, write_runfile
from mcphotos.serve.security import new_token
from mcphotos.warm.server import WarmServer, WarmServerRunning

if TYPE_CHECKING:
    from mcphotos.library import Library

log = logging.getLogger("mcphotos.serve")


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    quarantine: str | None = None
    open_browser: bool = True
    access_log: bool = False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (0: any free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it (Linux): without it a keep-alive request waits ~40 ms for the
    # client's delayed ACK between the response's header and body writes (Nagle).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_host(host: str) -> str:
    """The host to put in the printed URL: a wildcard bind is reached through 127.0.0.1."""
    if host in ("0.0.0.0", "", "localhost"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def serve(library: Library, options: ServeOptions, on_ready: Callable[[str], None],
          on_warning: Callable[[str], None]) -> None:
    """Serve until SIGINT or SIGTERM. ``on_ready(url)`` once it answers; ``on_warning`` for notes."""
    library.store(create=False)  # no store: one clear line now, not an error page later
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    token = new_token()
    app = create_app(library, token, options.host, port, options.quarantine)
    ctx = app.context  # type: ignore[attr-defined]
    base = f"http://{url_host(options.host)}:{port}/"
    if library.engines().manifest() is None:
        on_warning("the fast runtime is not prepared for this model: new text queries need torch, loaded in the "
                   "background now (seconds); `mcphotos models prepare` avoids that")
    running = read_runfile(library.store_dir)
    if running is not None:
        sock.close()
        raise WarmServerRunning(f"mcphotos serve already runs for this store (pid {running['pid']}, "
                                f"{running['url']})", "stop it first, or open its page")
    # The CLI's warm model: the same library, behind the app's lock. It opens the text tower and the
    # search index in its own thread, started once the app answers (not to slow the start).
    warm = WarmServer(library, lock=ctx.lock, url=base)
    url = f"{base}?token={token}"
    _quiet_logs(options.access_log)
    config = uvicorn.Config(app, log_config=None, access_log=options.access_log, lifespan="off",
                            server_header=False, ws="none", timeout_graceful_shutdown=5)
    runfile = None

    def ready() -> None:
        nonlocal runfile
        runfile = write_runfile(library.store_dir, token, options.host, port, base)
        on_ready(url)
        try:
            warm.start()
            ctx.warm = warm
        except McPhotosError as e:  # another process took the socket meanwhile: the page still works
            on_warning(f"no warm model for the CLI: {e}")
        if options.open_browser:
            threading.Thread(target=_open_browser, args=(url,), daemon=True).start()

    server = _Server(config, ready)
    try:
        server.run(sockets=[sock])
    finally:
        if runfile is not None:
            remove_runfile(runfile)
        warm.close()
        sock.close()
        if ctx.thumbs is not None:
            ctx.thumbs.close()


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        """Stop gracefully on SIGINT/SIGTERM, then return normally (exit 0) instead of re-raising."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _open_browser(url: str) -> None:
    import webbrowser

    with contextlib.suppress(Exception):
        webbrowser.open(url)


def _quiet_logs(access: bool) -> None:
    """uvicorn's own lines (and, if asked, one per request) go to stderr; stdout carries only the URL."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("mcphotos serve: %(message)s"))
    for name, level in (("uvicorn", logging.WARNING), ("uvicorn.error", logging.WARNING),
                        ("uvicorn.access", logging.INFO if access else logging.WARNING),
                        ("mcphotos.serve", logging.WARNING)):
        lg = logging.getLogger(name)
        lg.handlers = [handler]
        lg.setLevel(level)
        lg.propagate = False
