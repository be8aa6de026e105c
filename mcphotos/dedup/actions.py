"""What dedup may do to files: move duplicates aside, or hard-link identical copies. Never delete.

Every action is written to a journal (JSON lines) *before* it happens, so ``undo`` can put things
back even after a crash halfway: an entry whose action never happened is simply skipped.

- Moves keep each file's path relative to a common base, never overwrite (a taken name gets a
  ``~N`` suffix), and work across filesystems (copy, fsync, then unlink). The journal lives in
  the destination directory. The store's rows follow the files.
- Hard links replace a duplicate only after a byte-for-byte compare with the keeper, only on the
  same filesystem, atomically (link to a temporary name, then rename over). Their journal keeps
  the duplicate's mode and times, and lives under the store's ``journals/`` directory.
"""

from __future__ import annotations

import errno
import filecmp
import json
import os
import shutil
import stat
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from mcphotos.dedup.choices import Action, Tier
from mcphotos.dedup.finder import Group
from mcphotos.errors import McPhotosError, UsageError
from mcphotos.store.database import Store, encode_path

JOURNAL_PREFIX = "mcphotos-journal-"
QUARANTINE_KEY = "dedup_quarantine"  # meta: directories holding moved duplicates (dedup skips them)


@dataclass(frozen=True)
class Move:
    src: str
    dst: str
    size: int
    hash: str


@dataclass
class ActionReport:
    journal: str  # the journal the actions were written to (or read from, for undo)
    done: int = 0
    bytes: int = 0
    already: int = 0  # undo: entries a previous undo already reversed
    skipped: list[tuple[str, str]] = field(default_factory=list)


Progress = Callable[[str, str], None]  # (path, what happened)


# -- planning ------------------------------------------------------------------------------------


def common_base(paths: Iterable[str]) -> str:
    dirs = [os.path.dirname(p) for p in paths]
    return os.path.commonpath(dirs) if dirs else os.sep


def plan_moves(groups: Sequence[Group], dest: str, roots: Sequence[str] | None = None) -> list[Move]:
    """Where each duplicate goes: ``dest`` + its path relative to the roots' (or the groups') common base."""
    dest = os.path.abspath(os.path.expanduser(dest))
    everything = [m.path for g in groups for m in g.members]
    base = os.path.commonpath([os.path.abspath(r) for r in roots]) if roots else common_base(everything)
    if os.path.isfile(base):
        base = os.path.dirname(base)
    taken: set[str] = set()
    moves = []
    for g in groups:
        for m in g.duplicates:
            if os.path.join(m.path, "").startswith(os.path.join(dest, "")):
                continue  # already in the destination
            rel = os.path.relpath(m.path, base)
            target = _free_name(os.path.join(dest, rel), taken)
            taken.add(target)
            moves.append(Move(m.path, target, m.size, m.hash))
    return moves


def _free_name(path: str, taken: set[str]) -> str:
    if path not in taken and not os.path.lexists(path):
        return path
    stem, ext = os.path.splitext(path)
    n = 1
    while f"{stem}~{n}{ext}" in taken or os.path.lexists(f"{stem}~{n}{ext}"):
        n += 1
    return f"{stem}~{n}{ext}"


# -- moving --------------------------------------------------------------------------------------


def move_duplicates(store: Store, moves: Sequence[Move], dest: str, on_item: Progress | None = None) -> ActionReport:
    dest = os.path.abspath(os.path.expanduser(dest))
    os.makedirs(dest, exist_ok=True)
    with _Journal.create(Path(dest), Action.MOVE, store) as journal:
        report = ActionReport(str(journal.path))
        for mv in moves:
            reason = _changed_since_indexing(store, mv.src)
            if reason:
                report.skipped.append((mv.src, reason))
                continue
            st = os.lstat(mv.src)
            journal.write({"op": Action.MOVE, "src": mv.src, "dst": mv.dst, "size": mv.size, "hash": mv.hash,
                           "mtime_ns": st.st_mtime_ns})
            try:
                os.makedirs(os.path.dirname(mv.dst), exist_ok=True)
                move_no_clobber(mv.src, mv.dst)
            except OSError as e:
                report.skipped.append((mv.src, e.strerror or str(e)))
                continue
            _rename_row(store, mv.src, mv.dst)
            report.done += 1
            report.bytes += mv.size
            if on_item:
                on_item(mv.src, f"moved to {mv.dst}")
    if report.done:
        _quarantine(store, dest, add=True)
    return report


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


# -- hard links ----------------------------------------------------------------------------------


def hardlink_duplicates(store: Store, groups: Sequence[Group], on_item: Progress | None = None) -> ActionReport:
    if any(m.tier != Tier.EXACT for g in groups for m in g.duplicates):
        raise UsageError("--hardlink only replaces exact duplicates", "use it with --tier exact")
    jdir = store.dir / "journals"
    jdir.mkdir(parents=True, exist_ok=True)
    with _Journal.create(jdir, Action.HARDLINK, store) as journal:
        report = ActionReport(str(journal.path))
        for g in groups:
            keeper = g.keeper.path
            for m in g.duplicates:
                reason = _link_problem(keeper, m.path) or _changed_since_indexing(store, m.path)
                if reason:
                    report.skipped.append((m.path, reason))
                    continue
                st = os.stat(m.path)
                journal.write({"op": Action.HARDLINK, "path": m.path, "keeper": keeper, "size": st.st_size,
                               "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns,
                               "atime_ns": st.st_atime_ns, "hash": m.hash})
                tmp = _temp_name(m.path)
                os.link(keeper, tmp)
                os.replace(tmp, m.path)
                _update_stat(store, m.path)
                report.done += 1
                report.bytes += st.st_size
                if on_item:
                    on_item(m.path, f"now a hard link to {keeper}")
    return report


def _link_problem(keeper: str, dup: str) -> str | None:
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


def _temp_name(path: str) -> str:
    return os.path.join(os.path.dirname(path), f".mcphotos-{os.getpid()}-{time.monotonic_ns()}.tmp")


# -- undo ----------------------------------------------------------------------------------------


def undo(store: Store, journal_path: str, on_item: Progress | None = None) -> ActionReport:
    """Reverse a journal's actions, newest first. Safe to run twice: done work is skipped."""
    entries = read_journal(journal_path)
    report = ActionReport(journal_path)
    dests: set[str] = set()
    for e in reversed(entries):
        if e.get("op") == Action.MOVE:
            src, dst = e["src"], e["dst"]
            dests.add(os.path.dirname(journal_path))
            if not os.path.lexists(dst):
                if os.path.lexists(src):
                    report.already += 1  # restored before (or the move never happened)
                else:
                    report.skipped.append((src, "not at its moved-to path any more"))
                continue
            if os.path.lexists(src):
                report.skipped.append((src, "something is at the original path"))
                continue
            os.makedirs(os.path.dirname(src), exist_ok=True)
            move_no_clobber(dst, src)
            _rename_row(store, dst, src)
            report.done += 1
            report.bytes += int(e.get("size", 0))
            if on_item:
                on_item(src, "restored")
        elif e.get("op") == Action.HARDLINK:
            path, keeper = e["path"], e["keeper"]
            try:
                linked = os.path.samefile(path, keeper)
            except OSError:
                linked = False
            if not linked:
                report.skipped.append((path, "no longer a hard link to the keeper"))
                continue
            tmp = _temp_name(path)
            shutil.copyfile(keeper, tmp)
            os.chmod(tmp, int(e["mode"]))
            os.utime(tmp, ns=(int(e["atime_ns"]), int(e["mtime_ns"])))
            os.replace(tmp, path)
            _update_stat(store, path)
            report.done += 1
            report.bytes += int(e.get("size", 0))
            if on_item:
                on_item(path, "separate copy again")
    with open(journal_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"op": "undo", "at": _now(), "restored": report.done}) + "\n")
    for d in dests:
        if not store.files_under([d]):  # nothing moved there is left: dedup may look there again
            _quarantine(store, d, add=False)
    return report


def read_journal(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise McPhotosError(f"cannot read the journal {path}: {e.strerror or e}") from None
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            if n == len(lines):
                continue  # a last line cut short by a crash: its action never started
            raise McPhotosError(f"{path}:{n}: not a mcphotos journal line") from None
    if not entries or entries[0].get("op") != "begin":
        raise McPhotosError(f"{path} is not a mcphotos journal")
    return entries


# -- shared --------------------------------------------------------------------------------------


class _Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "x", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)

    @classmethod
    def create(cls, directory: Path, kind: Action, store: Store) -> _Journal:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = Path(_free_name(str(directory / f"{JOURNAL_PREFIX}{kind}-{stamp}.jsonl"), set()))
        j = cls(path)
        j.write({"op": "begin", "kind": kind, "version": 1, "store": str(store.dir), "created": _now()})
        return j

    def write(self, entry: dict) -> None:
        # ensure_ascii keeps undecodable bytes (surrogate escapes) intact through JSON.
        self.f.write(json.dumps(entry, ensure_ascii=True) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def __enter__(self) -> _Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _changed_since_indexing(store: Store, path: str) -> str | None:
    rec = store.get_file(path)
    try:
        st = os.lstat(path)
    except OSError as e:
        return e.strerror or str(e)
    if rec is None:
        return "not in the store"
    if (rec.size, rec.mtime_ns) != (st.st_size, st.st_mtime_ns):
        return "changed since it was indexed (run `mcphotos index` again)"
    return None


def _rename_row(store: Store, old: str, new: str) -> None:
    with store.transaction() as c:
        c.execute("DELETE FROM files WHERE path = ?", (encode_path(new),))
        c.execute("UPDATE files SET path = ? WHERE path = ?", (encode_path(new), encode_path(old)))


def _update_stat(store: Store, path: str) -> None:
    st = os.stat(path)
    with store.transaction() as c:
        c.execute("UPDATE files SET size = ?, mtime_ns = ? WHERE path = ?",
                  (st.st_size, st.st_mtime_ns, encode_path(path)))


def _quarantine(store: Store, directory: str, add: bool) -> None:
    with store.transaction():
        dirs = set(json.loads(store.get_meta(QUARANTINE_KEY) or "[]"))
        dirs = dirs | {directory} if add else dirs - {directory}
        store.set_meta(QUARANTINE_KEY, json.dumps(sorted(dirs)))
