"""The CLI's side of the warm socket: find a server for this store and model, or say nothing.

:func:`connect` returns a :class:`WarmClient` only when a socket for this store exists in the
private runtime folder, is a socket owned by this user, accepts within a fraction of a second,
and its server says it holds the same store directory, model identity and protocol. Anything
else (no socket, a dead server's socket, another identity, a timeout, a garbled answer) is
None, and the caller uses its own engine. ``MCPHOTOS_NO_WARM=1`` turns the client off.

:class:`WarmEncoder` satisfies the ``Encoder`` protocol through the server and switches to the
local engine for good the first time the server fails, so a server stopped in mid-command
costs a model load, never an error.
"""

from __future__ import annotations

import os
import socket
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.models.encoder import Encoder
from mcphotos.warm.paths import socket_path
from mcphotos.warm.protocol import MAX_LINE, PROTOCOL, ProtocolError, dumps, loads, pack, unpack

if TYPE_CHECKING:  # numpy only where arrays travel: a find through the server moves none
    import numpy as np

CONNECT_TIMEOUT = 0.5  # seconds to accept and say hello; a live server answers in a millisecond
REQUEST_TIMEOUT = 30.0  # a whole find on a large store, or a batch of photos
PER_ITEM_TIMEOUT = 0.5  # more per text or photo (a new label set encodes hundreds of prompts)
DISABLE_ENV = "MCPHOTOS_NO_WARM"


class WarmUnavailable(Exception):
    """The server did not answer as it should: use the local engine."""


class WarmClient:
    """One connection to a warm server that said hello for the right store and identity."""

    def __init__(self, sock: socket.socket, hello: dict[str, Any]) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self.hello = hello
        self._model: dict[str, Any] | None = None

    @property
    def pid(self) -> int:
        return int(self.hello.get("pid") or 0)

    def request(self, obj: dict[str, Any], timeout: float = REQUEST_TIMEOUT) -> dict[str, Any]:
        """Send one request, read its answer line; WarmUnavailable on any failure or error answer."""
        try:
            self._sock.settimeout(timeout)
            self._sock.sendall(dumps(obj))
            answer = loads(self._file.readline(MAX_LINE))
        except (OSError, ProtocolError) as e:
            self.close()
            raise WarmUnavailable(str(e)) from None
        if "error" in answer:
            raise WarmUnavailable(str(answer["error"]))
        return answer

    def model(self) -> dict[str, Any]:
        if self._model is None:
            self._model = self.request({"op": "model"})
        return self._model

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        answer = self.request({"op": "encode_text", "texts": list(texts)},
                              REQUEST_TIMEOUT + PER_ITEM_TIMEOUT * len(texts))
        return _vectors(answer, len(texts))

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        import numpy as np

        answer = self.request({"op": "encode_images", "pixels": pack(np.asarray(pixels, dtype=np.uint8))},
                              REQUEST_TIMEOUT + PER_ITEM_TIMEOUT * len(pixels))
        return _vectors(answer, len(pixels))

    def find(self, spec: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
        """The hits (as dicts of SearchHit's fields) of a find the server runs, and its warnings."""
        answer = self.request({"op": "find", "spec": spec})
        hits = answer.get("hits")
        if not isinstance(hits, list):
            raise WarmUnavailable("no hits in the answer")
        return hits, [str(w) for w in answer.get("warnings", [])]

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass


def _vectors(answer: dict[str, Any], n: int) -> np.ndarray:
    try:
        v = unpack(answer["vectors"])
    except (KeyError, ProtocolError) as e:
        raise WarmUnavailable(f"bad vectors: {e}") from None
    if str(v.dtype) != "float32" or v.ndim != 2 or len(v) != n:
        raise WarmUnavailable(f"bad vectors: {v.dtype} {v.shape}")
    return v


def _say_hello(path: Path, timeout: float) -> tuple[socket.socket, dict[str, Any]] | None:
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode) or st.st_uid != os.getuid():
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(os.fspath(path))
        sock.sendall(dumps({"op": "hello"}))
        with sock.makefile("rb") as f:
            hello = loads(f.readline(MAX_LINE))
    except (OSError, ProtocolError):
        sock.close()
        return None
    return sock, hello


def connect(store_dir: Path | str, identity: dict[str, Any], timeout: float = CONNECT_TIMEOUT) -> WarmClient | None:
    """A client of the warm server for exactly this store and identity, or None (see the module docstring)."""
    if os.environ.get(DISABLE_ENV, "") not in ("", "0"):
        return None
    path = socket_path(store_dir)
    if path is None:
        return None
    found = _say_hello(path, timeout)
    if found is None:
        return None
    sock, hello = found
    same = (hello.get("protocol") == PROTOCOL and hello.get("store") == os.path.realpath(store_dir)
            and hello.get("identity") == identity)
    if not same:
        sock.close()
        return None
    return WarmClient(sock, hello)


def probe(store_dir: Path | str) -> dict[str, Any] | None:
    """The hello of a server listening for ``store_dir`` (any identity), for ``status``; None when none."""
    path = socket_path(store_dir)
    found = _say_hello(path, CONNECT_TIMEOUT) if path is not None else None
    if found is None:
        return None
    sock, hello = found
    sock.close()
    return {**hello, "socket": os.fspath(path) if path is not None else None}


class WarmEncoder:
    """An ``Encoder`` that runs on the warm server, and on ``local()`` once the server fails."""

    name = "warm"

    def __init__(self, client: WarmClient, local: Callable[[], Encoder],
                 preprocess: Callable[[], PreprocessSpec]) -> None:
        self.client: WarmClient | None = client
        self._local = local
        self._local_engine: Encoder | None = None
        self._preprocess = preprocess

    def _fallback(self) -> Encoder:
        if self.client is not None:
            self.client.close()
            self.client = None
        if self._local_engine is None:
            self._local_engine = self._local()
        return self._local_engine

    def _model_field(self, key: str) -> Any:
        if self.client is not None:
            try:
                return self.client.model()[key]
            except (WarmUnavailable, KeyError):
                pass
        return getattr(self._fallback(), key)

    @property
    def dim(self) -> int:
        return int(self._model_field("dim"))

    @property
    def logit_scale(self) -> float:
        return float(self._model_field("logit_scale"))

    @property
    def preprocess(self) -> PreprocessSpec:
        return self._preprocess()

    def describe(self) -> str:
        if self.client is None:
            from mcphotos.models.engines import describe

            return describe(self._fallback())
        return f"warm (mcphotos serve, pid {self.client.pid})"

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if self.client is not None:
            try:
                return self.client.encode_texts(texts)
            except WarmUnavailable:
                pass
        return self._fallback().encode_texts(texts)

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        if self.client is not None:
            try:
                return self.client.encode_images(pixels)
            except WarmUnavailable:
                pass
        return self._fallback().encode_images(pixels)
