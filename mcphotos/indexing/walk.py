"""Find the photos to index: recursive walks of directories, or path lists from stdin."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from mcphotos.indexing.imaging import EXTENSIONS

SkipCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class WalkEntry:
    path: str  # absolute, as the user names it (symlinks not resolved)
    size: int
    mtime_ns: int


@dataclass
class WalkResult:
    entries: list[WalkEntry] = field(default_factory=list)
    # Directories walked to the end: only files under these may be pruned from the store.
    complete_dirs: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def has_image_extension(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in EXTENSIONS


def _excluded(path: str, name: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(path, p) for p in patterns)


def walk(roots: Iterable[str], hidden: bool = False, exclude: Iterable[str] = (),
         on_skip: SkipCallback | None = None) -> WalkResult:
    """Walk ``roots`` (directories or files) and return the image files found.

    Symlinked directories are followed once (a loop is detected by device and inode);
    anything that is not a regular file (FIFO, socket, device) is skipped without being
    opened, so a FIFO named ``x.jpg`` cannot hang the run.
    """
    result = WalkResult()
    patterns = tuple(exclude)
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()

    def skip(path: str, reason: str) -> None:
        result.skipped.append((path, reason))
        if on_skip:
            on_skip(path, reason)

    def add_file(path: str, st: os.stat_result) -> None:
        if path in seen_files:
            return
        seen_files.add(path)
        result.entries.append(WalkEntry(path, st.st_size, st.st_mtime_ns))

    def walk_dir(top: str) -> bool:
        """Returns True when the whole subtree was read."""
        complete = True
        try:
            st = os.stat(top)
        except OSError as e:
            skip(top, _reason(e))
            return False
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            return True  # a symlink loop or a second route to the same directory
        seen_dirs.add(key)
        try:
            with os.scandir(top) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            skip(top, _reason(e))
            return False
        for entry in entries:
            name = entry.name
            path = os.path.join(top, name)
            if _excluded(path, name, patterns):
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if name.startswith(".") and not hidden:
                    continue
                complete &= walk_dir(path)
                continue
            if not has_image_extension(name) or (name.startswith(".") and not hidden):
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                skip(path, "dangling symlink" if entry.is_symlink() else "file vanished")
                continue
            except OSError as e:
                skip(path, _reason(e))
                continue
            if not stat.S_ISREG(st.st_mode):
                skip(path, "not a regular file")
                continue
            add_file(path, st)
        return complete

    for root in roots:
        path = os.path.abspath(os.path.expanduser(root))
        try:
            st = os.stat(path)
        except OSError as e:
            skip(path, _reason(e))
            continue
        if stat.S_ISDIR(st.st_mode):
            if walk_dir(path):
                result.complete_dirs.append(path)
        elif stat.S_ISREG(st.st_mode):
            add_file(path, st)
        else:
            skip(path, "not a regular file")
    return result


def stat_paths(paths: Iterable[str], on_skip: SkipCallback | None = None) -> WalkResult:
    """Explicit file paths (from stdin): stat each one, no recursion, no extension filter."""
    result = WalkResult()
    seen: set[str] = set()
    for raw in paths:
        path = os.path.abspath(os.path.expanduser(raw))
        if path in seen:
            continue
        seen.add(path)
        try:
            st = os.stat(path)
        except OSError as e:
            result.skipped.append((path, _reason(e)))
            if on_skip:
                on_skip(path, _reason(e))
            continue
        if stat.S_ISDIR(st.st_mode):
            sub = walk([path], on_skip=on_skip)
            result.entries += [e for e in sub.entries if e.path not in seen]
            seen.update(e.path for e in sub.entries)
            result.skipped += sub.skipped
            continue
        if not stat.S_ISREG(st.st_mode):
            result.skipped.append((path, "not a regular file"))
            if on_skip:
                on_skip(path, "not a regular file")
            continue
        result.entries.append(WalkEntry(path, st.st_size, st.st_mtime_ns))
    return result


def read_path_list(stream: BinaryIO, nul: bool = False) -> Iterator[str]:
    """Paths from a stream, newline- or NUL-separated. Bytes in, so any filename survives."""
    data = stream.read()
    sep = b"\0" if nul else b"\n"
    for raw in data.split(sep):
        if not nul:
            raw = raw.rstrip(b"\r")
        if raw:
            yield os.fsdecode(raw)


def _reason(e: OSError) -> str:
    if isinstance(e, FileNotFoundError):
        return "no such file or directory"
    if isinstance(e, PermissionError):
        return "permission denied"
    if e.errno == 40:  # ELOOP
        return "symlink loop"
    return e.strerror or str(e)
