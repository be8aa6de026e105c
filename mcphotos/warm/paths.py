"""Where a store's warm server listens, and the files ``mcphotos serve`` keeps beside it.

The directory is the platform's user runtime dir (``$XDG_RUNTIME_DIR/mcphotos``, usually
``/run/user/UID/mcphotos``), else a private ``mcphotos-UID`` folder in the temporary directory
when that does not exist or cannot be written. Either is used only when it is a real folder (no
symlink) owned by this user with no access for anyone else, inside a parent that nobody else
can rename it out of (owned by this user or root, or sticky like /tmp): another user must not
be able to put a socket where the CLI would send its queries.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import warnings
from pathlib import Path

SOCKET_LIMIT = 100  # bytes: sun_path holds 104 (macOS) to 108 (Linux) including the NUL


def store_id(store_dir: Path | str) -> str:
    """A short, stable name for a store: 16 hex digits of its resolved directory's hash."""
    real = os.path.realpath(os.fspath(store_dir))
    return hashlib.blake2b(os.fsencode(real), digest_size=8).hexdigest()


def _candidates() -> list[Path]:
    import platformdirs

    fallback = Path(tempfile.gettempdir()) / f"mcphotos-{os.getuid()}"
    # platformdirs warns when XDG_RUNTIME_DIR is unset and refuses a fallback another user owns:
    # neither is the user's problem while the private temporary folder remains.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            base = Path(platformdirs.user_runtime_dir("mcphotos"))
        except (OSError, ValueError):
            return [fallback]
    return [base, fallback]


def _safe_parent(path: Path) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    owner_ok = st.st_uid in (os.getuid(), 0)
    return owner_ok and (not st.st_mode & 0o022 or bool(st.st_mode & stat.S_ISVTX))


def _private(path: Path, create: bool) -> bool:
    """Is ``path`` (made now if ``create``) a folder only this user can enter?"""
    try:
        if create and not os.path.lexists(path):
            parent = path.parent
            if not parent.exists() and _safe_parent(parent.parent):
                os.mkdir(parent, 0o700)
            if not _safe_parent(parent):
                return False
            os.mkdir(path, 0o700)
        st = os.lstat(path)
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or not _safe_parent(path.parent):
        return False
    if st.st_mode & 0o077:
        if not create:
            return False
        try:
            os.chmod(path, 0o700)
        except OSError:
            return False
    return True


def runtime_dir(create: bool = False) -> Path | None:
    """The private folder for sockets, made when ``create`` (the server); None when there is none."""
    for candidate in _candidates():
        if _private(candidate, create):
            return candidate
    return None


def socket_path(store_dir: Path | str, create: bool = False) -> Path | None:
    """The warm socket of ``store_dir`` (None when no private folder can hold it).

    The server (``create``) takes the first private folder whose socket path fits in
    ``sun_path``; a client looks for the socket in each private folder of the same list, so it
    finds it even if a folder earlier in the list appeared after the server started."""
    name = f"warm-{store_id(store_dir)}.sock"
    for candidate in _candidates():
        path = candidate / name
        if len(os.fsencode(path)) > SOCKET_LIMIT or not _private(candidate, create):
            continue
        if create or os.path.lexists(path):
            return path
    return None


def serve_info_path(store_dir: Path | str, create: bool = False) -> Path | None:
    """Where ``mcphotos serve`` writes its port, pid and token (mode 0600), beside the socket."""
    folder = runtime_dir(create)
    return folder / f"serve-{store_id(store_dir)}.json" if folder is not None else None
