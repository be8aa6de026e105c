"""Smart albums: saved queries (terms, filters, cut-off) kept as folders of symbolic links.

An album is a :class:`~mcphotos.query.FindSpec` stored by name in the ``albums`` table.
Syncing runs it and makes ``DIR`` hold one symlink per match. ``DIR/.mcphotos-album.json``
(the manifest) lists the links mcphotos created there, the photos' and their companions'
(indexing/companions.py); sync only ever removes or replaces an entry of the manifest that is
still the very symlink it made. Anything else in the folder, including a user's own file with
the same name as a match, is left alone.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcphotos.errors import McPhotosError, UsageError
from mcphotos.indexing.companions import Companion, companions_on_disk
from mcphotos.search.query import FindSpec
from mcphotos.store.database import Store

MANIFEST = ".mcphotos-album.json"


@dataclass(frozen=True)
class Album:
    name: str
    spec: FindSpec
    created_at: float
    updated_at: float
    synced_to: str | None = None
    synced_at: float | None = None
    synced_count: int | None = None


@dataclass
class SyncReport:
    album: str
    directory: str
    added: int = 0
    removed: int = 0
    kept: int = 0
    foreign: list[str] = field(default_factory=list)  # our old names now holding something else: left alone
    companions: int = 0  # links to the photos' companion files (RAW, Live Photo video, sidecars)


def check_name(name: str) -> str:
    n = name.strip()
    if not n or "/" in n or "\0" in n or not n.isprintable() or n in (".", ".."):
        raise UsageError(f"{name!r} is not a usable album name", "use a short name without '/', e.g. 'receipts'")
    return n


def save_album(store: Store, name: str, spec: FindSpec, replace: bool = False) -> Album:
    name = check_name(name)
    spec.terms()  # validate now, not at the first sync
    now = time.time()
    with store.transaction() as c:
        exists = c.execute("SELECT 1 FROM albums WHERE name = ?", (name,)).fetchone()
        if exists and not replace:
            raise UsageError(f"an album named {name!r} exists", "pass --replace to overwrite it")
        c.execute("INSERT INTO albums(name, spec, created_at, updated_at) VALUES(?, ?, ?, ?) "
                  "ON CONFLICT(name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at",
                  (name, json.dumps(spec.to_dict(), sort_keys=True), now, now))
    return get_album(store, name)


def get_album(store: Store, name: str) -> Album:
    row = store.conn.execute("SELECT name, spec, created_at, updated_at, synced_to, synced_at, synced_count "
                             "FROM albums WHERE name = ?", (name,)).fetchone()
    if row is None:
        known = ", ".join(a.name for a in list_albums(store)) or "none yet"
        raise UsageError(f"no album named {name!r}", f"saved albums: {known}")
    return _album(row)


def list_albums(store: Store) -> list[Album]:
    rows = store.conn.execute("SELECT name, spec, created_at, updated_at, synced_to, synced_at, synced_count "
                              "FROM albums ORDER BY name").fetchall()
    return [_album(r) for r in rows]


def delete_album(store: Store, name: str) -> None:
    """Forget the saved query. A synced folder stays as it is."""
    get_album(store, name)
    with store.transaction() as c:
        c.execute("DELETE FROM albums WHERE name = ?", (name,))


def record_sync(store: Store, report: SyncReport, count: int) -> None:
    with store.transaction() as c:
        c.execute("UPDATE albums SET synced_to = ?, synced_at = ?, synced_count = ? WHERE name = ?",
                  (report.directory, time.time(), count, report.album))


def _album(row: tuple) -> Album:
    return Album(row[0], FindSpec.from_dict(json.loads(row[1])), *row[2:])


# -- the folder of links -------------------------------------------------------------------------


class AlbumFolderError(McPhotosError):
    """The target folder cannot hold this album."""


def sync_links(album: str, targets: Sequence[tuple[str, str]], directory: str | os.PathLike[str]) -> SyncReport:
    """Make ``directory`` hold one symlink per (path, hash) in ``targets``, touching only our own links.

    Each photo's companions (its RAW, Live Photo video, XMP sidecars, .aae edits) get links too,
    named after the photo's link (``IMG_1-ab12cd34.MOV`` beside ``IMG_1-ab12cd34.JPG``), so a tool
    browsing the album sees the photo whole. They are listed apart in the manifest and go when
    their photo leaves the album.
    """
    root = Path(directory).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise AlbumFolderError(f"{root} exists and is not a directory")
    root.mkdir(parents=True, exist_ok=True)
    report = SyncReport(album, str(root))
    links, old_companions = _read_manifest(root, album)
    wanted: dict[str, str] = {}  # target -> hash, in rank order, without repeats
    for path, h in targets:
        wanted.setdefault(os.path.abspath(path), h)
    on_disk = companions_on_disk(wanted)
    placed: dict[str, str] = {}  # target -> link name
    for name, target in sorted(links.items()):
        link = root / name
        if not _ours(link, target):
            if os.path.lexists(link):
                report.foreign.append(name)  # the user put something else there: not ours any more
            continue
        if target in wanted and target not in placed:
            placed[target] = name
            report.kept += 1
        else:
            link.unlink()
            report.removed += 1
    taken = set(placed.values())
    desired: dict[str, str] = {}  # companion link name -> companion path
    for target in placed:
        desired.update(_companion_links(placed[target], on_disk.get(target, [])))
    taken |= set(desired)
    for target, h in wanted.items():
        if target in placed:
            continue
        companions = on_disk.get(target, [])
        name = _free_name(root, target, h, taken, [c.tail for c in companions])
        os.symlink(target, root / name)
        placed[target] = name
        mine = _companion_links(name, companions)
        desired.update(mine)
        taken |= {name, *mine}
        report.added += 1
    kept_companions: dict[str, str] = {}
    for name, target in sorted(old_companions.items()):
        link = root / name
        if not _ours(link, target):
            if os.path.lexists(link):
                report.foreign.append(name)
        elif desired.get(name) == target:
            kept_companions[name] = target
        else:
            link.unlink()
    for name, target in desired.items():
        if name not in kept_companions and not os.path.lexists(root / name):
            os.symlink(target, root / name)
            kept_companions[name] = target
    report.companions = len(kept_companions)
    _write_manifest(root, album, {name: target for target, name in placed.items()}, kept_companions)
    return report


def _ours(link: Path, target: str) -> bool:
    return link.is_symlink() and os.readlink(link) == target


def _companion_links(photo_link: str, companions: Sequence[Companion]) -> dict[str, str]:
    """The link names of a photo's companions, after the photo's own link name."""
    return {os.path.basename(c.path_for(photo_link)): c.path for c in companions}


def _free_name(root: Path, target: str, h: str, taken: set[str], tails: Sequence[str] = ()) -> str:
    base = os.path.basename(target)
    stem, ext = os.path.splitext(base)
    candidates = [base, f"{stem}-{h[:8]}{ext}"] + [f"{stem}-{h[:8]}-{i}{ext}" for i in range(2, 1000)]
    for name in candidates:
        names = [name, *(os.path.splitext(name)[0] + t for t in tails)]
        if all(n not in taken and n != MANIFEST and not os.path.lexists(root / n) for n in names):
            return name
    raise AlbumFolderError(f"no free name for {base} in {root}")


def _read_manifest(root: Path, album: str) -> tuple[dict[str, str], dict[str, str]]:
    """(photo links, companion links) the manifest lists: link name -> target."""
    path = root / MANIFEST
    if not path.exists():
        return {}, {}
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
        links = {str(k): str(v) for k, v in data["links"].items()}
        companions = {str(k): str(v) for k, v in data.get("companions", {}).items()}
    except (OSError, ValueError, KeyError, AttributeError, TypeError):
        raise AlbumFolderError(f"{path} is damaged", "move it away; mcphotos will then leave the old links alone") \
            from None
    if data.get("album") != album:
        raise AlbumFolderError(f"{root} holds the album {data.get('album')!r}, not {album!r}",
                               "sync each album to its own folder")
    return links, companions


def _write_manifest(root: Path, album: str, links: dict[str, str], companions: dict[str, str]) -> None:
    path = root / MANIFEST
    tmp = root / f".{MANIFEST}.{os.getpid()}.tmp"
    body = json.dumps({"album": album, "links": dict(sorted(links.items())),
                       "companions": dict(sorted(companions.items())), "synced_at": time.time()},
                      indent=1, ensure_ascii=True)
    tmp.write_text(body + "\n", encoding="utf-8")
    os.replace(tmp, path)
