"""The warm server: a running ``mcphotos serve`` answers the CLI over a Unix socket.

``WarmServer(library).start()`` binds ``warm-<store id>.sock`` in the private runtime folder
(warm/paths.py) with mode 0600 and answers in threads, one JSON line per request
(warm/protocol.py; the operations are listed in docs/serve-api.md). ``close()`` stops the
threads and removes the socket. Every operation runs under one lock (``lock``, which the web
app may share), because a :class:`~mcphotos.library.Library` and its SQLite connection are
used by one thread at a time.

The library's engine opens in the background at ``start()``, so ``serve`` is ready at once and
the first CLI query finds the model loaded; a request that comes earlier waits for it.
"""

from __future__ import annotations

import logging
import os
import socket
import socketserver
import threading
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcphotos.errors import McPhotosError
from mcphotos.notices import LOGGER
from mcphotos.warm.paths import socket_path
from mcphotos.warm.protocol import MAX_LINE, PROTOCOL, ProtocolError, dumps, loads, pack, unpack

if TYPE_CHECKING:
    from mcphotos.library import Library

log = logging.getLogger(LOGGER)
_UMASK_LOCK = threading.Lock()  # the umask is per process: bind under a tight one, one thread at a time


class WarmServerRunning(McPhotosError):
    """Another live process already serves this store's warm socket."""


class _Captured(logging.Handler):
    """The ``mcphotos`` warnings one request's thread logs, to send back to the client."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread:
            self.messages.append(record.getMessage())


class WarmServer:
    """Answers warm-model requests for ``library``'s store and model (see the module docstring)."""

    def __init__(self, library: Library, lock: threading.Lock | threading.RLock | None = None,
                 url: str | None = None) -> None:
        self.library = library
        library.use_warm = False  # the server's own library never asks itself
        self.lock = lock or threading.RLock()
        self.url = url  # the web app's address, for `mcphotos status` (no token)
        self.requests: Counter[str] = Counter()  # op -> requests answered (status and tests)
        self.path: Path | None = None
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None
        self._warming: threading.Thread | None = None
        self._inode: int | None = None
        self._facts: dict[str, Any] = {}
        self.ready = threading.Event()  # set once the engine and search index are open (or failed to)
        self._connections: set[socket.socket] = set()  # open ones, cut at close()
        self._connections_lock = threading.Lock()

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> Path:
        """Bind the socket and answer in background threads; the socket's path."""
        lib = self.library
        self._facts = {"protocol": PROTOCOL, "store": os.path.realpath(lib.store_dir), "model": lib.spec.name,
                       "identity": lib.identity(), "engine": lib.engine_kind.value, "pid": os.getpid()}
        path = socket_path(lib.store_dir, create=True)
        if path is None:
            raise McPhotosError("no private runtime folder for the warm socket (the user runtime dir and the "
                                "temporary folder are not private to this user)")
        _clear_stale(path)
        server = socketserver.ThreadingUnixStreamServer(os.fspath(path), _make_handler(self), bind_and_activate=False)
        server.daemon_threads = True
        with _UMASK_LOCK:
            old = os.umask(0o177)
            try:
                server.server_bind()
            finally:
                os.umask(old)
        os.chmod(path, 0o600)
        server.server_activate()
        self.path, self._server, self._inode = path, server, os.stat(path).st_ino
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mcphotos-warm", daemon=True)
        self._thread.start()
        self._warming = threading.Thread(target=self._warm_up, name="mcphotos-warm-up", daemon=True)
        self._warming.start()
        return path

    def _warm_up(self) -> None:
        try:
            with self.lock:
                self.library.warm_up()
        except Exception as e:  # the requests will meet (and report) the same problem
            log.warning("warm model: could not open the model ahead: %s", e)
        finally:
            self.ready.set()

    def close(self) -> None:
        """Stop answering and remove the socket (only if it is still ours)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._connections_lock:
            for conn in self._connections:
                try:
                    conn.shutdown(socket.SHUT_RDWR)  # a client mid-command falls back to its own engine
                except OSError:
                    pass
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.path is not None:
            try:
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
            except OSError:
                pass

    def __enter__(self) -> WarmServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests ------------------------------------------------------------------------------

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request (errors as ``{"error": ...}``)."""
        op = request.get("op")
        handler = _OPS.get(op) if isinstance(op, str) else None
        if handler is None:
            return {"error": f"unknown op {op!r}"}
        if op == "hello":  # fixed facts: answered even while a long request holds the lock
            self.requests[op] += 1
            return self._hello(request)
        captured = _Captured()
        logger = logging.getLogger(LOGGER)
        logger.addHandler(captured)
        try:
            with self.lock:
                out = handler(self, request)
        except (McPhotosError, ProtocolError, ValueError, TypeError, KeyError) as e:
            out = {"error": getattr(e, "message", None) or str(e)}
        except Exception as e:  # never kill the server over one request; the client falls back
            log.warning("warm model: %s failed: %s", op, e)
            out = {"error": f"{type(e).__name__}: {e}"}
        finally:
            logger.removeHandler(captured)
        self.requests[str(op)] += 1
        if captured.messages:
            out["warnings"] = captured.messages
        return out

    def _hello(self, _request: dict[str, Any]) -> dict[str, Any]:
        return {**self._facts, "url": self.url, "requests": dict(self.requests)}

    def _model(self, _request: dict[str, Any]) -> dict[str, Any]:
        engine = self.library.engine()
        return {"dim": int(engine.dim), "logit_scale": float(engine.logit_scale)}

    def _encode_text(self, request: dict[str, Any]) -> dict[str, Any]:
        texts = request["texts"]
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise ValueError("texts must be a list of strings")
        return {"vectors": pack(np.asarray(self.library.engine().encode_texts(texts), dtype=np.float32))}

    def _encode_images(self, request: dict[str, Any]) -> dict[str, Any]:
        pixels = unpack(request["pixels"])
        if pixels.dtype != np.uint8 or pixels.ndim != 4 or pixels.shape[-1] != 3:
            raise ValueError("pixels must be uint8 (N, H, W, 3)")
        return {"vectors": pack(np.asarray(self.library.engine().encode_images(pixels), dtype=np.float32))}

    def _find(self, request: dict[str, Any]) -> dict[str, Any]:
        from mcphotos.search.query import FindSpec

        spec = FindSpec.from_dict(request["spec"])
        return {"hits": [asdict(h) for h in self.library.run_find(spec)]}


_OPS = {"hello": WarmServer._hello, "model": WarmServer._model, "encode_text": WarmServer._encode_text,
        "encode_images": WarmServer._encode_images, "find": WarmServer._find}


def _make_handler(server: WarmServer) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def setup(self) -> None:
            super().setup()
            with server._connections_lock:
                server._connections.add(self.connection)

        def finish(self) -> None:
            with server._connections_lock:
                server._connections.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def handle(self) -> None:
            while True:
                line = self.rfile.readline(MAX_LINE)
                if not line:
                    return
                try:
                    out = server.answer(loads(line))
                except ProtocolError as e:
                    out = {"error": str(e)}
                try:
                    self.wfile.write(dumps(out))
                    self.wfile.flush()
                except OSError:
                    return

    return Handler


def _clear_stale(path: Path) -> None:
    """Remove the socket of a server that is gone; refuse while one still answers there."""
    if not os.path.lexists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except OSError:
        os.unlink(path)  # nobody listens: a dead server's socket
        return
    finally:
        probe.close()
    raise WarmServerRunning(f"another mcphotos serve already answers for this store on {path}",
                            "stop it first, or use that one")
