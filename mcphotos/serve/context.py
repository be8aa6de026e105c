"""What the routes share: the library (behind one lock), the settings of this run, uploads, journals.

Routes run in Starlette's thread pool; the library's SQLite connection and caches are used by
one request at a time (``ServeContext.lock``), which costs nothing for one person's browser and
keeps the store's reads and writes in order.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mcphotos.errors import McPhotosError

if TYPE_CHECKING:
    from mcphotos.library import Library
    from mcphotos.serve.thumbs import ThumbnailCache

MAX_UPLOADS = 32  # query photos kept in memory (their vectors only), oldest dropped first
HEX_ID_LENGTHS = range(16, 129)


class ApiError(McPhotosError):
    """A request the server refuses: its HTTP status and one clear line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    name: str
    vector: np.ndarray


@dataclass
class Action:
    """One change this server made, so Undo without a journal reverses the last one."""

    kind: str  # "move", "hardlink" or "dismiss"
    journal: str | None = None  # move, hardlink
    pairs: list[tuple[str, str]] = field(default_factory=list)  # dismiss


class ServeContext:
    def __init__(self, library: Library, token: str, host: str = "127.0.0.1", port: int = 0,
                 quarantine: str | None = None, thumbs: ThumbnailCache | None = None,
                 max_upload_bytes: int = 25 * 1024 * 1024) -> None:
        self.library = library
        self.token = token
        self.host = host
        self.port = port  # set once the socket is bound (``--port 0`` picks one)
        self.quarantine = os.path.abspath(os.path.expanduser(quarantine)) if quarantine else None
        self.thumbs = thumbs
        self.decoder = thumbs.pool if thumbs is not None else None  # the decode workers, shared
        self.max_upload_bytes = max_upload_bytes
        self.lock = threading.RLock()
        self.uploads: OrderedDict[str, Upload] = OrderedDict()
        self.actions: list[Action] = []  # in order; undone ones are removed
        self.warm: Any = None  # the warm-model server, when one runs beside the app
        # tier -> (store generation, DedupReport): a 100,000-photo library takes seconds to group,
        # and the review page asks for every page and before every action
        self.dedup_reports: dict[str, tuple[tuple[int, int], Any]] = {}

    def add_upload(self, uid: str, upload: Upload) -> None:
        with self.lock:
            self.uploads[uid] = upload
            while len(self.uploads) > MAX_UPLOADS:
                self.uploads.popitem(last=False)

    def upload(self, uid: str) -> Upload:
        found = self.uploads.get(uid)
        if found is None:
            raise ApiError(404, f"no upload {uid!r} in this run: upload the photo again")
        return found


def photo_id(value: str) -> str:
    """``value`` as a content-hash id (lower-case hex), or a 400: ids are never paths."""
    v = value.strip().lower()
    if len(v) not in HEX_ID_LENGTHS or any(c not in "0123456789abcdef" for c in v):
        raise ApiError(400, f"{value[:80]!r} is not a photo id (a content hash in hex)")
    return v
