"""Companion files: the files that belong to a photo and go wherever it goes.

A photo's companions sit in its folder and share its stem (compared case-insensitively, as
cameras, phones and Windows/macOS file systems mix cases):

- ``raw``: the RAW of a camera RAW+JPEG pair (``IMG_1.CR2`` beside ``IMG_1.JPG`` or ``.HEIC``);
- ``live``: the video of an Apple Live Photo (``IMG_1.MOV`` beside ``IMG_1.HEIC`` or ``.JPG``, or
  a MOV of another name in the same folder carrying the still's content identifier, liveid.py);
- ``xmp``: XMP sidecars, ``IMG_1.JPG.xmp`` (darktable, digiKam) and ``IMG_1.xmp`` (Adobe), and the
  sidecars of the photo's RAW or Live Photo video (``IMG_1.CR2.xmp``);
- ``aae``: Apple's edit files (``IMG_1.AAE``).

Indexing asks :func:`find_companions` which walked files are companions (a Live Photo's video
is part of the still, not a video of its own; the RAW of a pair is indexed only with
``--raw-pairs both``). Moves, hard links, undo and album sync ask :func:`companions_on_disk`,
which looks at the folders as they are now. Names decide; files are opened (headers only) just
for a MOV with no same-stem still beside it, to read its content identifier, and then the
folder's unpaired stills' identifiers. Nothing here decodes a picture or imports a model.

Google and Samsung motion photos need nothing here: their video is inside the JPEG (after its
end-of-image marker), so the file is a still to every part of mcphotos.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field

from mcphotos.enums import StrEnum
from mcphotos.indexing.raw import RAW_EXTENSIONS


class CompanionKind(StrEnum):
    RAW = "raw"
    LIVE = "live"  # the video half of a Live Photo
    XMP = "xmp"
    AAE = "aae"


class RawPairs(StrEnum):
    """What ``index`` does with a RAW whose same-stem JPEG/HEIC sits beside it."""

    JPEG = "jpeg"  # index the JPEG/HEIC; the RAW is its companion (default)
    BOTH = "both"  # index both (the RAW still travels with the JPEG)


# Stills that a RAW pairs with, and that a Live Photo video belongs to.
STILL_EXTENSIONS = frozenset({".jpg", ".jpeg", ".jpe", ".heic", ".heif"})
LIVE_EXTENSIONS = frozenset({".mov", ".mp4"})  # .MP4: Live Photos as Google Takeout exports them
SIDECAR_EXTENSIONS = frozenset({".xmp", ".aae"})


@dataclass(frozen=True)
class Companion:
    path: str
    kind: CompanionKind
    photo: str  # the photo it belongs to

    @property
    def tail(self) -> str:
        """What follows the photo's stem in the companion's name: ``.MOV``, ``.JPG.xmp``, ``.xmp``.

        A Live Photo video paired by content identifier under another name gets its extension:
        it takes the photo's name wherever the photo goes.
        """
        name, stem = os.path.basename(self.path), _stem(self.photo)
        if name[:len(stem)].lower() == stem.lower() and name[len(stem):].startswith("."):
            return name[len(stem):]
        return _tail_of_other(name)

    def path_for(self, photo_path: str) -> str:
        """Where this companion goes when its photo becomes ``photo_path`` (same folder, same stem)."""
        return os.path.join(os.path.dirname(photo_path), _stem(photo_path) + self.tail)


@dataclass
class CompanionMap:
    """Which of a set of files are companions, and of which photo."""

    by_photo: dict[str, list[Companion]] = field(default_factory=dict)

    def of(self, photo: str) -> list[Companion]:
        return self.by_photo.get(photo, [])

    def all(self) -> list[Companion]:
        return [c for cs in self.by_photo.values() for c in cs]

    def not_indexed(self, raw_pairs: RawPairs = RawPairs.JPEG) -> set[str]:
        """The files the indexer must leave out: companions, except paired RAWs under ``both``."""
        return {c.path for c in self.all() if not (c.kind == CompanionKind.RAW and raw_pairs == RawPairs.BOTH)}


def _tail_of_other(name: str) -> str:
    """``.MOV`` of ``clip.MOV``, ``.MOV.xmp`` of ``clip.MOV.xmp``."""
    base, ext = os.path.splitext(name)
    if ext.lower() == ".xmp":
        return os.path.splitext(base)[1] + ext
    return ext


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _ext(name: str) -> str:
    return os.path.splitext(name)[1].lower()


def _of_one(photo: str, names: dict[str, str], live_ids: _LiveIds) -> list[Companion]:
    """The companions of ``photo`` among its folder's files (``names``: lower-cased name -> name)."""
    folder, base = os.path.split(photo)
    stem, ext = os.path.splitext(base)
    key = stem.lower()
    found: list[Companion] = []

    def add(lower: str, kind: CompanionKind) -> str | None:
        name = names.get(lower)
        if name is None or name == base or name[:len(stem)].lower() != key:
            return None
        found.append(Companion(os.path.join(folder, name), kind, photo))
        return name

    media = [base]
    if ext.lower() in STILL_EXTENSIONS:
        for raw_ext in sorted(RAW_EXTENSIONS):
            if (name := add(key + raw_ext, CompanionKind.RAW)) is not None:
                media.append(name)
        for live_ext in sorted(LIVE_EXTENSIONS):
            if (name := add(key + live_ext, CompanionKind.LIVE)) is not None:
                media.append(name)
        if not any(_ext(n) in LIVE_EXTENSIONS for n in media):
            video = live_ids.video_for(base)
            if video is not None:
                found.append(Companion(os.path.join(folder, video), CompanionKind.LIVE, photo))
                media.append(video)
    for name in media:  # the photo's own sidecar, and its RAW's and video's
        if (xmp := names.get(name.lower() + ".xmp")) is not None:
            found.append(Companion(os.path.join(folder, xmp), CompanionKind.XMP, photo))
    add(key + ".xmp", CompanionKind.XMP)
    add(key + ".aae", CompanionKind.AAE)
    return found


def _photo_candidates(names: Iterable[str]) -> list[str]:
    """Names that can own companions: anything but a sidecar, a Live Photo video or a paired RAW."""
    return [n for n in names if _ext(n) not in SIDECAR_EXTENSIONS]


def _group(paths: Iterable[str]) -> dict[str, dict[str, str]]:
    folders: dict[str, dict[str, str]] = {}
    for p in paths:
        folder, name = os.path.split(p)
        folders.setdefault(folder, {})[name.lower()] = name
    return folders


class _LiveIds:
    """Live Photo videos paired by content identifier in one folder, worked out only when needed."""

    def __init__(self, folder: str, names: dict[str, str]) -> None:
        self.folder = folder
        self.names = names
        self._by_still: dict[str, str] | None = None

    def video_for(self, still: str) -> str | None:
        if self._by_still is None:
            self._by_still = self._pair()
        return self._by_still.get(still)

    def _pair(self) -> dict[str, str]:
        stems = {os.path.splitext(n)[0].lower() for n in self.names.values() if _ext(n) in STILL_EXTENSIONS}
        unpaired = [n for n in self.names.values()
                    if _ext(n) in LIVE_EXTENSIONS and os.path.splitext(n)[0].lower() not in stems]
        if not unpaired:
            return {}
        from mcphotos.indexing.liveid import still_content_id, video_content_id

        videos = {cid: n for n in sorted(unpaired) if (cid := video_content_id(os.path.join(self.folder, n)))}
        if not videos:
            return {}
        movs = {os.path.splitext(n)[0].lower() for n in self.names.values() if _ext(n) in LIVE_EXTENSIONS}
        out = {}
        for n in sorted(self.names.values()):
            if _ext(n) in STILL_EXTENSIONS and os.path.splitext(n)[0].lower() not in movs:
                cid = still_content_id(os.path.join(self.folder, n))
                if cid in videos:
                    out[n] = videos.pop(cid)
        return out


def _resolve(folder: str, names: dict[str, str], photos: Iterable[str],
             live_ids: _LiveIds | None = None) -> dict[str, list[Companion]]:
    live_ids = live_ids or _LiveIds(folder, names)
    out: dict[str, list[Companion]] = {}
    for name in photos:
        cs = _of_one(os.path.join(folder, name), names, live_ids)
        if cs:
            out[os.path.join(folder, name)] = cs
    return out


def find_companions(paths: Iterable[str]) -> CompanionMap:
    """The companion relations among ``paths`` (e.g. the files a walk found; any kinds mixed).

    A file that is a companion of some photo never owns companions itself (a Live Photo video
    is no photo with a sidecar of its own), except that a RAW's own sidecar (``IMG_1.CR2.xmp``)
    travels with the JPEG it is paired with.
    """
    result = CompanionMap()
    for folder, names in _group(paths).items():
        live_ids = _LiveIds(folder, names)
        candidates = [n for n in _photo_candidates(names.values()) if _ext(n) in STILL_EXTENSIONS]
        owned = _resolve(folder, names, candidates, live_ids)
        taken = {c.path for cs in owned.values() for c in cs}
        # Photos that are not stills (a lone RAW, a PNG) own their sidecars too.
        rest = [n for n in _photo_candidates(names.values())
                if _ext(n) not in STILL_EXTENSIONS and os.path.join(folder, n) not in taken]
        owned.update(_resolve(folder, names, rest, live_ids))
        result.by_photo.update(owned)
    return result


def companions_on_disk(photos: Iterable[str]) -> dict[str, list[Companion]]:
    """The companions each of ``photos`` has on disk now (one directory listing per folder)."""
    wanted: dict[str, list[str]] = {}
    for p in photos:
        folder, name = os.path.split(p)
        wanted.setdefault(folder, []).append(name)
    out: dict[str, list[Companion]] = {}
    for folder, photo_names in wanted.items():
        try:
            with os.scandir(folder or ".") as it:
                names = {e.name.lower(): e.name for e in it if not e.is_dir(follow_symlinks=False)}
        except OSError:
            continue
        live_ids = _LiveIds(folder, names)
        for name in photo_names:
            path = os.path.join(folder, name)
            out[path] = _of_one(path, names, live_ids)
    return out
