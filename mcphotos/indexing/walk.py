"""Find the photos to index: recursive walks of directories, or path lists from stdin."""

from __future__ import annotations

import fnmatch
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from mcphotos.indexing.imaging import EXTENSIONS
from mcphotos.indexing.raw import RAW_EXTENSIONS
from mcphotos.indexing.video import VIDEO_EXTENSIONS

SkipCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class WalkEntry:
    path: str  # absolute, as the user names it (symlinks not resolved)
    size: int
    mtime_ns: int


@dataclass
class WalkResult:
    entries: list[WalkEntry] = field(default_factory=list)
    # Root directories walked: files under these may be pruned from the store, except beneath
    # ``incomplete_dirs``, the folders that could not be read (permission denied, I/O error).
    complete_dirs: list[str] = field(default_factory=list)
    incomplete_dirs: list[str] = field(default_factory=list)
    # Mount points met inside a root (a folder on another device than its parent): (path, st_dev).
    # The indexer records them, so that one whose drive is gone later is not pruned either.
    mounts: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def prunable(self, path: str) -> bool:
        """Whether a stored file at ``path`` that this walk did not find may be forgotten."""
        def under(d: str) -> bool:
            return path.startswith(os.path.join(d, ""))
        return any(under(d) for d in self.complete_dirs) and not any(under(d) for d in self.incomplete_dirs)


PHOTO_EXTENSIONS = EXTENSIONS | RAW_EXTENSIONS


def has_image_extension(name: str) -> bool:
    """A photo (RAW files included) or a video (videos are indexed by a few of their frames, see video.py)."""
    ext = os.path.splitext(name)[1].lower()
    return ext in PHOTO_EXTENSIONS or ext in VIDEO_EXTENSIONS


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
    unreadable: set[tuple[int, int]] = set()
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

    def unreadable_dir(top: str, e: OSError) -> None:
        # Reported once, here; nothing beneath it is pruned (its files may well still be there).
        result.incomplete_dirs.append(top)
        skip(top, f"{_reason(e)}; nothing beneath this folder is pruned")

    def walk_dir(top: str, parent_dev: int | None) -> None:
        try:
            st = os.stat(top)
        except OSError as e:
            unreadable_dir(top, e)
            return
        key = (st.st_dev, st.st_ino)
        if key in seen_dirs:
            # A symlink loop or a second route to the same directory: walked (or reported) already.
            if key in unreadable:
                result.incomplete_dirs.append(top)
            return
        seen_dirs.add(key)
        try:
            with os.scandir(top) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            unreadable.add(key)
            unreadable_dir(top, e)
            return
        if parent_dev is not None and st.st_dev != parent_dev and entries:
            result.mounts.append((top, st.st_dev))
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
                walk_dir(path, st.st_dev)
                continue
            if not has_image_extension(name) or (name.startswith(".") and not hidden):
                continue
            try:
                st_file = entry.stat(follow_symlinks=True)
            except FileNotFoundError:
                skip(path, "dangling symlink" if entry.is_symlink() else "file vanished")
                continue
            except OSError as e:
                skip(path, _reason(e))
                continue
            if not stat.S_ISREG(st_file.st_mode):
                skip(path, "not a regular file")
                continue
            add_file(path, st_file)

    for root in roots:
        path = os.path.abspath(os.path.expanduser(root))
        try:
            st = os.stat(path)
        except OSError as e:
            skip(path, _reason(e))
            continue
        if stat.S_ISDIR(st.st_mode):
            walk_dir(path, None)
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
