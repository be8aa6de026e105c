"""What dedup may do to files: move duplicates aside, or hard-link identical copies. Never delete.

Every action is written to a journal (JSON lines) *before* it happens, so ``undo`` can put things
back even after a crash halfway: an entry whose action never happened is simply skipped.

- Moves keep each file's path relative to a common base, never overwrite (a taken name gets a
  ``~N`` suffix), and work across filesystems (copy, fsync, then unlink). The journal lives in
  the destination directory. The store's rows follow the files.
- Hard links replace a duplicate only after a byte-for-byte compare with the keeper, only on the
  same filesystem, atomically (link to a temporary name, then rename over). Their journal keeps
  the duplicate's mode and times, and lives under the store's ``journals/`` directory.

Companion files (indexing/companions.py: the RAW of a pair, a Live Photo's MOV, XMP sidecars,
``.aae`` edits) travel with their photo. A moved photo takes them along under its new name
(``IMG_1~1.JPG`` takes ``IMG_1~1.MOV``), and the name is chosen so that none of them overwrites
anything; a companion that also belongs to a keeper (a shared ``IMG_1.xmp``, the RAW kept in its
own right) stays. A hard-linked photo stays where it is, with its companions; its RAW or Live
Photo video is hard-linked to the keeper's too when their bytes are identical. Each companion
has its own journal line, so ``undo`` restores them all.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcphotos.dedup.choices import Action, Tier
from mcphotos.dedup.fileops import link_problem, move_no_clobber, move_together, temp_name
from mcphotos.dedup.finder import Group
from mcphotos.dedup.journal import JOURNAL_PREFIX, Journal, now, read_journal
from mcphotos.errors import UsageError
from mcphotos.indexing.companions import Companion, CompanionKind, companions_on_disk
from mcphotos.store.database import Store, encode_path

__all__ = ["JOURNAL_PREFIX", "ActionReport", "CompanionMove", "Move", "hardlink_duplicates", "move_duplicates",
           "move_no_clobber", "plan_moves", "read_journal", "undo"]

QUARANTINE_KEY = "dedup_quarantine"  # meta: directories holding moved duplicates (dedup skips them)


@dataclass(frozen=True)
class CompanionMove:
    src: str
    dst: str
    kind: CompanionKind


@dataclass(frozen=True)
class Move:
    src: str
    dst: str
    size: int
    hash: str
    companions: tuple[CompanionMove, ...] = ()  # files that go along, under the photo's new name


@dataclass
class ActionReport:
    journal: str  # the journal the actions were written to (or read from, for undo)
    done: int = 0  # photos
    bytes: int = 0  # photos and companions
    companions: int = 0  # companion files moved, linked or restored along with them
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
    dups = [m for g in groups for m in g.duplicates if not os.path.join(m.path, "").startswith(os.path.join(dest, ""))]
    keepers = {g.keeper.path for g in groups}
    on_disk = companions_on_disk([m.path for m in dups] + sorted(keepers))
    # Never carried off: a keeper itself, or what also belongs to a keeper (a shared IMG_1.xmp).
    claimed = {m.path for m in dups} | keepers | {c.path for k in keepers for c in on_disk.get(k, [])}
    taken: set[str] = set()
    moves = []
    for m in dups:
        companions = [c for c in on_disk.get(m.path, []) if c.path not in claimed]
        claimed.update(c.path for c in companions)
        target = _free_name(os.path.join(dest, os.path.relpath(m.path, base)), taken, companions)
        carried = tuple(CompanionMove(c.path, c.path_for(target), c.kind) for c in companions)
        taken.update([target, *(c.dst for c in carried)])
        moves.append(Move(m.path, target, m.size, m.hash, carried))
    return moves


def _free_name(path: str, taken: set[str], companions: Sequence[Companion] = ()) -> str:
    """``path``, or ``stem~N.ext`` with the smallest N, such that neither it nor its companions' names are taken."""
    def free(candidate: str) -> bool:
        return all(p not in taken and not os.path.lexists(p)
                   for p in [candidate, *(c.path_for(candidate) for c in companions)])

    if free(path):
        return path
    stem, ext = os.path.splitext(path)
    n = 1
    while not free(f"{stem}~{n}{ext}"):
        n += 1
    return f"{stem}~{n}{ext}"


# -- moving --------------------------------------------------------------------------------------


def move_duplicates(store: Store, moves: Sequence[Move], dest: str, on_item: Progress | None = None) -> ActionReport:
    dest = os.path.abspath(os.path.expanduser(dest))
    os.makedirs(dest, exist_ok=True)
    with Journal.create(Path(dest), Action.MOVE, store) as journal:
        report = ActionReport(str(journal.path))
        for mv in moves:
            reason = _changed_since_indexing(store, mv.src)
            if reason:
                report.skipped.append((mv.src, reason))
                continue
            companions = [c for c in mv.companions if os.path.lexists(c.src)]
            # The photo's rule for all of them: nothing is ever overwritten, so a name taken since
            # the plan keeps the photo and its companions where they are.
            blocked = next((d for d in [mv.dst, *(c.dst for c in companions)] if os.path.lexists(d)), None)
            if blocked:
                report.skipped.append((mv.src, f"{blocked} exists (nothing is overwritten)"))
                continue
            st = os.lstat(mv.src)
            journal.write({"op": Action.MOVE, "src": mv.src, "dst": mv.dst, "size": mv.size, "hash": mv.hash,
                           "mtime_ns": st.st_mtime_ns})
            for c in companions:
                journal.write({"op": Action.MOVE, "src": c.src, "dst": c.dst, "size": os.lstat(c.src).st_size,
                               "companion_of": mv.src, "kind": c.kind})
            error = move_together([(mv.src, mv.dst), *((c.src, c.dst) for c in companions)])
            if error:
                report.skipped.append((mv.src, error))
                continue
            _rename_row(store, mv.src, mv.dst)
            for c in companions:
                _rename_row(store, c.src, c.dst)  # the RAW of a pair may be indexed too (--raw-pairs both)
            report.done += 1
            report.companions += len(companions)
            report.bytes += mv.size + sum(os.lstat(c.dst).st_size for c in companions)
            if on_item:
                on_item(mv.src, f"moved to {mv.dst}" + (f" with {len(companions)} companions" if companions else ""))
    if report.done:
        _quarantine(store, dest, add=True)
    return report


# -- hard links ----------------------------------------------------------------------------------


def hardlink_duplicates(store: Store, groups: Sequence[Group], on_item: Progress | None = None) -> ActionReport:
    if any(m.tier != Tier.EXACT for g in groups for m in g.duplicates):
        raise UsageError("--hardlink only replaces exact duplicates", "use it with --tier exact")
    jdir = store.dir / "journals"
    jdir.mkdir(parents=True, exist_ok=True)
    on_disk = companions_on_disk({p for g in groups for p in (g.keeper.path, *(m.path for m in g.duplicates))})
    with Journal.create(jdir, Action.HARDLINK, store) as journal:
        report = ActionReport(str(journal.path))
        for g in groups:
            keeper = g.keeper.path
            for m in g.duplicates:
                reason = link_problem(keeper, m.path) or _changed_since_indexing(store, m.path)
                if reason:
                    report.skipped.append((m.path, reason))
                    continue
                report.bytes += _link(store, journal, m.path, keeper, {"hash": m.hash})
                report.done += 1
                if on_item:
                    on_item(m.path, f"now a hard link to {keeper}")
                # The photo stays where it is, and so do its companions. Its RAW or Live Photo video is
                # most likely a copy of the keeper's too: identical bytes get linked the same way.
                for dup_c, keep_c in _same_kind(on_disk.get(m.path, []), on_disk.get(keeper, [])):
                    if link_problem(keep_c.path, dup_c.path) is None:
                        report.bytes += _link(store, journal, dup_c.path, keep_c.path,
                                              {"companion_of": m.path, "kind": dup_c.kind})
                        report.companions += 1
    return report


def _link(store: Store, journal: Journal, path: str, keeper: str, extra: dict) -> int:
    """Journal, then atomically replace ``path`` with a hard link to ``keeper``; the bytes saved."""
    st = os.stat(path)
    journal.write({"op": Action.HARDLINK, "path": path, "keeper": keeper, "size": st.st_size,
                   "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns, "atime_ns": st.st_atime_ns,
                   **extra})
    tmp = temp_name(path)
    os.link(keeper, tmp)
    os.replace(tmp, path)
    _update_stat(store, path)
    return st.st_size


def _same_kind(dup: Sequence[Companion], keeper: Sequence[Companion]) -> list[tuple[Companion, Companion]]:
    """Media companions (RAW, Live Photo video) of a duplicate and of its keeper, paired by kind and extension.

    Sidecars are never linked: tools rewrite them in place, and a linked sidecar would edit both photos.
    """
    media = (CompanionKind.RAW, CompanionKind.LIVE)
    theirs = {(c.kind, os.path.splitext(c.path)[1].lower()): c for c in keeper if c.kind in media}
    return [(c, theirs[k]) for c in dup if c.kind in media
            and (k := (c.kind, os.path.splitext(c.path)[1].lower())) in theirs]


# -- undo ----------------------------------------------------------------------------------------


def undo(store: Store, journal_path: str, on_item: Progress | None = None) -> ActionReport:
    """Reverse a journal's actions, newest first. Safe to run twice: done work is skipped.

    A moved photo and its companions come back together: if the photo cannot (something took its
    old place), its companions stay with it rather than return alone.
    """
    entries = read_journal(journal_path)
    report = ActionReport(journal_path)
    dests: set[str] = set()
    for unit in reversed(_units(entries)):
        if unit[0].get("op") == Action.MOVE:
            dests.add(os.path.dirname(journal_path))
            _undo_moves(store, unit, report, on_item)
        else:
            for e in unit:
                _undo_link(store, e, report, on_item)
    with open(journal_path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"op": "undo", "at": now(), "restored": report.done}) + "\n")
    for d in dests:
        if not store.files_under([d]):  # nothing moved there is left: dedup may look there again
            _quarantine(store, d, add=False)
    return report


def _units(entries: Sequence[dict]) -> list[list[dict]]:
    """The action lines grouped as [photo, its companions...], in journal order."""
    units: list[list[dict]] = []
    for e in entries:
        if e.get("op") not in (Action.MOVE, Action.HARDLINK):
            continue
        if e.get("companion_of") and units and units[-1][0].get("op") == e["op"]:
            units[-1].append(e)
        else:
            units.append([e])
    return units


def _undo_moves(store: Store, unit: Sequence[dict], report: ActionReport, on_item: Progress | None) -> None:
    pending = []
    for e in unit:
        src, dst = e["src"], e["dst"]
        if os.path.lexists(dst):
            pending.append(e)
        elif os.path.lexists(src):
            report.already += 1  # restored before (or the move never happened)
        else:
            report.skipped.append((src, "not at its moved-to path any more"))
    blocked = [e for e in pending if os.path.lexists(e["src"])]
    if blocked:
        report.skipped += [(e["src"], "something is at the original path") for e in blocked]
        if any(not e.get("companion_of") for e in blocked):
            return  # the photo stays: its companions stay with it
        pending = [e for e in pending if e not in blocked]
    for e in pending:
        src, dst = e["src"], e["dst"]
        os.makedirs(os.path.dirname(src), exist_ok=True)
        move_no_clobber(dst, src)
        _rename_row(store, dst, src)
        _count(report, e)
        if on_item:
            on_item(src, "restored")


def _undo_link(store: Store, e: dict, report: ActionReport, on_item: Progress | None) -> None:
    path, keeper = e["path"], e["keeper"]
    try:
        linked = os.path.samefile(path, keeper)
    except OSError:
        linked = False
    if not linked:
        report.skipped.append((path, "no longer a hard link to the keeper"))
        return
    tmp = temp_name(path)
    shutil.copyfile(keeper, tmp)
    os.chmod(tmp, int(e["mode"]))
    os.utime(tmp, ns=(int(e["atime_ns"]), int(e["mtime_ns"])))
    os.replace(tmp, path)
    _update_stat(store, path)
    _count(report, e)
    if on_item:
        on_item(path, "separate copy again")


def _count(report: ActionReport, e: dict) -> None:
    if e.get("companion_of"):
        report.companions += 1
    else:
        report.done += 1
    report.bytes += int(e.get("size", 0))


# -- shared --------------------------------------------------------------------------------------


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
