"""The file that names a running server: ``serve-<store id>.json`` beside the warm socket.

It holds the URL, token, port and pid, so a client of the same user (a script, the CLI) can reach
the server without the printed URL; mode 0600 in the private runtime folder that warm/paths.py
chooses and checks (the token is the key to the person's photos). Removed when the server stops.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from mcphotos.errors import McPhotosError
from mcphotos.warm.paths import serve_info_path


def write_runfile(store_dir: Path | str, token: str, host: str, port: int, url: str) -> Path:
    """Write the file atomically, readable by this user only; its path."""
    path = serve_info_path(store_dir, create=True)
    if path is None:
        raise McPhotosError("no private runtime folder for the server's token file (the user runtime dir and "
                            "the temporary folder are not private to this user)")
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "host": host, "port": port, "token": token, "pid": os.getpid(),
                   "store": os.path.realpath(store_dir)}, f)
    os.replace(tmp, path)
    return path


def read_runfile(store_dir: Path | str) -> dict | None:
    """The running server's record for this store, or None (no file, unreadable, or its process is gone)."""
    path = serve_info_path(store_dir)
    if path is None:
        return None
    try:
        data = json.loads(path.read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def remove_runfile(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()
