"""File operations dedup's actions are built of: moves that never overwrite, hard-link checks."""

from __future__ import annotations

import errno
import filecmp
import os
import shutil
import stat
import time
from collections.abc import Sequence


def move_together(pairs: Sequence[tuple[str, str]]) -> str | None:
    """Move every (src, dst), or none: after a failure the ones already moved go back. The error, if any."""
    done: list[tuple[str, str]] = []
    for src, dst in pairs:
        try:
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            move_no_clobber(src, dst)
        except OSError as e:
            for back_src, back_dst in reversed(done):
                move_no_clobber(back_dst, back_src)
            reason = e.strerror or str(e)
            return reason if src == pairs[0][0] else f"its companion {src}: {reason}"
        done.append((src, dst))
    return None


def move_no_clobber(src: str, dst: str) -> None:
    """Move ``src`` to ``dst``; FileExistsError if ``dst`` exists. Never overwrites, even racing."""
    try:
        os.link(src, dst, follow_symlinks=False)  # fails if dst exists: the no-clobber guarantee
    except OSError as e:
        if e.errno == errno.EEXIST:
            raise
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EMLINK, errno.EACCES):
            raise
        _copy_exclusive(src, dst)
    os.unlink(src)


def _copy_exclusive(src: str, dst: str) -> None:
    """Another filesystem (or no hard links): copy into a new file, sync, keep the times and mode."""
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        with open(src, "rb") as r, open(dst, "xb") as w:
            shutil.copyfileobj(r, w, 1 << 20)
            w.flush()
            os.fsync(w.fileno())
        shutil.copystat(src, dst)
    except BaseException:
        if os.path.exists(dst):
            os.unlink(dst)
        raise


def link_problem(keeper: str, dup: str) -> str | None:
    try:
        a, b = os.stat(keeper), os.stat(dup)
    except OSError as e:
        return e.strerror or str(e)
    if os.path.islink(dup) or not stat.S_ISREG(b.st_mode):
        return "not a regular file"
    if a.st_dev != b.st_dev:
        return "on another filesystem than the keeper"
    if a.st_ino == b.st_ino:
        return "already a hard link to the keeper"
    if a.st_size != b.st_size or not filecmp.cmp(keeper, dup, shallow=False):
        return "its bytes differ from the keeper's"
    return None


def temp_name(path: str) -> str:
    return os.path.join(os.path.dirname(path), f".mcphotos-{os.getpid()}-{time.monotonic_ns()}.tmp")
