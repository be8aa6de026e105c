"""Offline roots: never forget a library because its drive is missing.

A root that held indexed files is **offline** when it is now missing, empty, or on another
device than when it was last walked (its ``st_dev`` changed: the mount is gone and the mount
point is a bare folder of the parent file system). Nothing under an offline root is pruned.
A path that never held anything and does not exist is a typo, which the caller reports as a
usage error. The same test applies to the mount points recorded inside a root, so indexing
``~`` does not forget ``~/nas`` when the NAS is unmounted.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass

from mcphotos.errors import UsageError
from mcphotos.indexing.walk import WalkResult
from mcphotos.store.database import Store
from mcphotos.store.roots import RootRecord, count_files, delete_roots, paths_under, put_roots, recorded_roots
from mcphotos.store.sql import chunks

ONLINE = "online"
OFFLINE = "offline"
ABSENT = "absent"  # does not exist and never held indexed files: a typo


@dataclass(frozen=True)
class RootCheck:
    path: str
    state: str  # ONLINE, OFFLINE or ABSENT
    reason: str = ""  # why it is offline: "missing", "empty", "on another device", an OS error
    st_dev: int | None = None  # its device now (None when it cannot be stat'ed)
    files: int = 0  # file rows under it in the store
    is_dir: bool = True


@dataclass(frozen=True)
class OfflineRoot:
    path: str
    files: int  # indexed files kept
    reason: str


def recorded_device(path: str, records: dict[str, RootRecord]) -> int | None:
    """The device recorded for ``path`` or its nearest recorded ancestor (a folder of a root
    lives on the root's device, unless it is a mount point, which is recorded itself)."""
    probe = path
    while True:
        rec = records.get(probe)
        if rec is not None and rec.st_dev is not None:
            return rec.st_dev
        parent = os.path.dirname(probe)
        if parent == probe:
            return None
        probe = parent


def check_root(store: Store, path: str, records: dict[str, RootRecord] | None = None) -> RootCheck:
    """Is ``path`` (absolute) online, offline, or absent? Reads the disk and the store, writes nothing."""
    records = recorded_roots(store) if records is None else records
    files = count_files(store, path)
    known = files > 0 or path in records
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return RootCheck(path, OFFLINE if known else ABSENT, "missing", None, files)
    except OSError as e:
        if not known:
            return RootCheck(path, ABSENT, e.strerror or str(e), None, files)
        return RootCheck(path, OFFLINE, e.strerror or str(e), None, files)
    if not stat.S_ISDIR(st.st_mode):
        return RootCheck(path, ONLINE, "", st.st_dev, files, is_dir=False)
    if files == 0:
        return RootCheck(path, ONLINE, "", st.st_dev, files)
    was = recorded_device(path, records)
    if was is not None and was != st.st_dev:
        return RootCheck(path, OFFLINE, "on another device than when indexed", st.st_dev, files)
    try:
        with os.scandir(path) as it:
            empty = next(it, None) is None
    except OSError as e:
        return RootCheck(path, OFFLINE, e.strerror or str(e), st.st_dev, files)
    if empty:
        return RootCheck(path, OFFLINE, "empty", st.st_dev, files)
    return RootCheck(path, ONLINE, "", st.st_dev, files)


def recorded_under(path: str, records: dict[str, RootRecord]) -> list[str]:
    """Recorded roots strictly beneath directory ``path``."""
    prefix = os.path.join(path, "")
    return sorted(p for p in records if p.startswith(prefix))


class RootTracker:
    """One index run's view of its roots: which to walk, which are offline, what to record.

    ``plan`` sorts the roots named (typos raise :class:`UsageError` before anything is done),
    ``protect`` keeps offline mount points inside walked roots out of the prune, ``forget``
    drops missing roots when the user asked (``--prune-offline``), ``record`` writes the roots
    table at the end of the run.
    """

    def __init__(self, store: Store, prune_offline: bool = False) -> None:
        self.store = store
        self.prune_offline = prune_offline
        self.records = recorded_roots(store)
        self.offline: list[OfflineRoot] = []
        self.walked: dict[str, int | None] = {}  # directory roots walked -> their device now
        self.missing: list[str] = []  # offline roots that are gone, forgotten under --prune-offline
        self._checks: dict[str, RootCheck] = {}

    def plan(self, roots: list[str]) -> list[str]:
        """The roots to walk, in order. Offline ones are left out unless ``prune_offline``."""
        typos, walk = [], []
        for root in roots:
            if self.store.get_file(root) is not None:
                walk.append(root)  # an indexed file, not a folder: walked (or reported vanished) as ever
                continue
            chk = check_root(self.store, root, self.records)
            if chk.state == ABSENT:
                typos.append(root)
                continue
            if chk.state == OFFLINE:
                self._checks[root] = chk
                if not self.prune_offline:
                    self.offline.append(OfflineRoot(root, chk.files, chk.reason))
                elif chk.st_dev is None:
                    self.missing.append(root)
                else:
                    walk.append(root)  # --prune-offline: walked as it is now, pruned of what is gone
                    self.walked[root] = chk.st_dev
                continue
            walk.append(root)
            if chk.is_dir:
                self.walked[root] = chk.st_dev
        if typos:
            raise UsageError(f"no such file or directory: {', '.join(typos)}",
                             "check the path; nothing was indexed")
        return walk

    def protect(self, found: WalkResult) -> None:
        """Keep offline roots, and offline mount points recorded inside walked roots, out of the prune."""
        found.incomplete_dirs += [o.path for o in self.offline]
        named = {o.path for o in self.offline} | set(self.walked) | set(self.missing)
        for root in self.walked:
            for sub in recorded_under(root, self.records):
                if sub in named:
                    continue
                chk = check_root(self.store, sub, self.records)
                self._checks[sub] = chk
                if chk.state == OFFLINE and not self.prune_offline:
                    self.offline.append(OfflineRoot(sub, chk.files, chk.reason))
                    found.incomplete_dirs.append(sub)

    def forget(self) -> int:
        """Under ``--prune-offline``: forget every file of the roots that are gone. Returns how many."""
        removed = 0
        for root in self.missing:
            gone = paths_under(self.store, root)
            for part, _ in chunks(gone):
                with self.store.transaction():
                    removed += self.store.delete_files(part)
        with self.store.transaction():
            delete_roots(self.store, [p for root in self.missing for p in [root, *recorded_under(root, self.records)]])
        return removed

    def record(self, found: WalkResult) -> None:
        """Write what this run saw: walked roots and mounts online, offline ones marked so."""
        now = time.time()
        rows: list[RootRecord] = []
        offline = {o.path for o in self.offline}

        def online(path: str, kind: str, dev: int | None) -> None:
            rec = self.records.get(path)
            kind = "root" if rec is not None and rec.kind == "root" else kind
            files = count_files(self.store, path, ok_only=True)
            if files or rec is not None or kind == "root":
                rows.append(RootRecord(path, kind, dev, files, ONLINE, now))

        for root, dev in self.walked.items():
            online(root, "root", dev)
        mounts = dict(found.mounts)
        for path, dev in mounts.items():
            if path not in self.walked and path not in offline:
                online(path, "mount", dev)
        for path, chk in self._checks.items():
            if path in self.walked or path in mounts or path in offline or path in self.missing:
                continue
            if chk.state == ONLINE or chk.st_dev is not None:  # online, or accepted by --prune-offline
                online(path, "mount", chk.st_dev)
        stale = [p for p, chk in self._checks.items() if chk.st_dev is None and p not in offline]
        for o in self.offline:
            rec = self.records.get(o.path)
            rows.append(RootRecord(o.path, rec.kind if rec else "root", rec.st_dev if rec else None,
                                   rec.files if rec else o.files, OFFLINE, rec.last_seen if rec else None))
        with self.store.transaction():
            delete_roots(self.store, stale)
            put_roots(self.store, rows)


@dataclass(frozen=True)
class RootStatus:
    path: str
    kind: str  # 'root' or 'mount'
    state: str  # ONLINE or OFFLINE, as the disk looks now
    reason: str
    files: int  # indexed files under it in the store
    last_seen: float | None  # when last walked online


def root_states(store: Store) -> list[RootStatus]:
    """Every recorded root with its state now (for ``status``): reads the disk, writes nothing."""
    records = recorded_roots(store)
    out = []
    for path in sorted(records):
        rec = records[path]
        chk = check_root(store, path, records)
        state = OFFLINE if chk.state != ONLINE else ONLINE
        out.append(RootStatus(path, rec.kind, state, chk.reason, count_files(store, path, ok_only=True),
                              rec.last_seen))
    return out
