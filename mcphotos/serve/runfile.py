"""The file that names a running server: ``<user runtime dir>/mcphotos/serve-<store id>.json``.

It holds the token, port and pid, so a client of the same user (the CLI's warm-model client,
a script) can reach the server without the URL; mode 0600 in a 0700 directory, because the
token is the key to the person's photos. Removed when the server stops.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path


def runtime_folder() -> Path:
    """``<user runtime dir>/mcphotos``, created with mode 0700."""
    import platformdirs

    with warnings.catch_warnings():  # "XDG_RUNTIME_DIR is not set": the fallback is fine, and ours to pick
        warnings.simplefilter("ignore")
        folder = Path(platformdirs.user_runtime_dir("mcphotos"))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    return folder


def store_id(store_dir: str | os.PathLike[str]) -> str:
    """A short stable name of a store directory (the same store, the same name, in any process)."""
    return hashlib.sha256(os.fsencode(os.path.abspath(store_dir))).hexdigest()[:16]


def runfile_path(store_dir: str | os.PathLike[str]) -> Path:
    return runtime_folder() / f"serve-{store_id(store_dir)}.json"


def write_runfile(store_dir: str | os.PathLike[str], token: str, host: str, port: int) -> Path:
    """Write the file atomically, readable by this user only; its path."""
    path = runfile_path(store_dir)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": f"http://{_netloc(host, port)}/", "host": host, "port": port, "token": token,
                   "pid": os.getpid(), "store": os.path.abspath(store_dir)}, f)
    os.replace(tmp, path)
    return path


def read_runfile(store_dir: str | os.PathLike[str]) -> dict | None:
    """The running server's record for this store, or None (no file, unreadable, or its process is gone)."""
    try:
        data = json.loads(runfile_path(store_dir).read_text())
        os.kill(int(data["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return data if isinstance(data, dict) else None


def remove_runfile(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
