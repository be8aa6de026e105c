"""A merge-safe editor for XMP sidecars: mcphotos' keywords and description, nothing else.

The image file is never touched. A sidecar sits beside it as ``photo.jpg.xmp`` (darktable,
digiKam) or ``photo.xmp`` (Adobe); both are read and whichever exist are updated, else
``photo.jpg.xmp`` is created (``style="adobe"``: ``photo.xmp``).

What we own and how we recognise it later:

- keywords under one root, ``mcphotos``: ``lr:hierarchicalSubject`` gets ``mcphotos|animals|dog``,
  ``digiKam:TagsList`` gets ``mcphotos/animals/dog`` and ``dc:subject`` gets each level below the
  root (``animals``, ``dog``). A flat ``dc:subject`` word carries no marker, so the words we added
  are listed in ``mcphotos:subjects``: removal takes away only those, never a word a person typed.
- ``dc:description``, remembered in ``mcphotos:description``: a description that differs from
  what we wrote was written by a person and is kept unless ``force``.

Everything else (other namespaces, darktable's history, comments, the xpacket wrapper) is kept.
Writes go to a temporary file that replaces the sidecar atomically. A sidecar that does not
parse is left untouched and reported in :attr:`SidecarChange.error`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcphotos.enums import parse_choice
from mcphotos.sidecars.xmpdoc import NEW_SIDECAR, Doc, SidecarStyle, XmpError, q


@dataclass(frozen=True)
class SidecarInfo:
    subjects: tuple[str, ...] = ()        # dc:subject
    hierarchical: tuple[str, ...] = ()    # lr:hierarchicalSubject
    tags_list: tuple[str, ...] = ()       # digiKam:TagsList
    description: str | None = None        # dc:description (x-default)


@dataclass(frozen=True)
class SidecarChange:
    image: str
    sidecar: str
    created: bool = False
    added: tuple[str, ...] = ()     # hierarchical keywords ("mcphotos|animals|dog")
    removed: tuple[str, ...] = ()
    description: str | None = None  # the description written, if it changed
    description_kept: bool = False  # a person's description was kept (no force)
    error: str | None = None
    written: bool = False           # False in a dry run or when nothing changed

    @property
    def changed(self) -> bool:
        return bool(self.created or self.added or self.removed or self.description is not None)


# -- where sidecars live ----------------------------------------------------------------------------

def existing_sidecars(image: str | os.PathLike[str]) -> list[Path]:
    """The sidecars of ``image`` that exist: ``photo.jpg.xmp`` first, then ``photo.xmp``."""
    p = Path(image)
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    for candidate in (p.with_name(p.name + ".xmp"), p.with_name(p.name + ".XMP"),
                      p.with_suffix(".xmp"), p.with_suffix(".XMP")):
        try:
            st = candidate.stat()
        except OSError:
            continue
        # On case-insensitive file systems .xmp and .XMP are one file.
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            found.append(candidate)
    return found


def parse_style(style: SidecarStyle | str) -> SidecarStyle:
    """``style`` as a :class:`SidecarStyle`; UsageError for anything else."""
    return parse_choice(SidecarStyle, style, "sidecar naming", "use darktable (photo.jpg.xmp) or adobe (photo.xmp)")


def new_sidecar_path(image: str | os.PathLike[str], style: SidecarStyle | str = SidecarStyle.DARKTABLE) -> Path:
    p = Path(image)
    return p.with_suffix(".xmp") if parse_style(style) is SidecarStyle.ADOBE else p.with_name(p.name + ".xmp")


# -- public API -------------------------------------------------------------------------------------

def read_sidecar(path: str | os.PathLike[str]) -> SidecarInfo:
    """Keywords and description of one sidecar file. Raises :class:`XmpError` if malformed."""
    doc = Doc.load(Path(path))
    return SidecarInfo(
        subjects=tuple(doc.items(q("dc", "subject"))),
        hierarchical=tuple(doc.items(q("lr", "hierarchicalSubject"))),
        tags_list=tuple(doc.items(q("digiKam", "TagsList"))),
        description=doc.description(),
    )


def update_sidecar(image: str | os.PathLike[str], *, machine_tags: Sequence[str] | None = None,
                   description: str | None = None, force: bool = False,
                   style: SidecarStyle | str = SidecarStyle.DARKTABLE,
                   dry_run: bool = False) -> list[SidecarChange]:
    """Bring the sidecar(s) of ``image`` in line with what mcphotos knows about it.

    ``machine_tags``: label paths ("animals/dog") that should be under the ``mcphotos`` root, all
    others under it are removed; ``[]`` removes every mcphotos keyword, ``None`` leaves them.
    ``description``: written to ``dc:description`` unless a person wrote a different one (``force``).
    One :class:`SidecarChange` per sidecar; problems are reported in it, not raised.
    """
    style = parse_style(style)
    targets = existing_sidecars(image) or [new_sidecar_path(image, style)]
    changes = []
    for sidecar in targets:
        try:
            changes.append(_update_one(str(image), sidecar, machine_tags, description, force, dry_run))
        except XmpError as e:
            changes.append(SidecarChange(str(image), str(sidecar), error=str(e)))
    return changes


# -- implementation ---------------------------------------------------------------------------------

def _update_one(image: str, sidecar: Path, machine_tags: Sequence[str] | None, description: str | None,
                force: bool, dry_run: bool) -> SidecarChange:
    created = not sidecar.exists()
    if created and machine_tags is not None and not machine_tags and description is None:
        return SidecarChange(image, str(sidecar))  # nothing to remove from a file that does not exist
    doc = Doc.parse(NEW_SIDECAR, str(sidecar)) if created else Doc.load(sidecar)
    added: list[str] = []
    removed: list[str] = []
    if machine_tags is not None:
        added, removed = doc.set_machine_tags(machine_tags)
    written_desc = None
    kept = False
    if description is not None:
        written_desc, kept = doc.set_description(description, force)
    change = SidecarChange(image, str(sidecar), created, tuple(added), tuple(removed), written_desc, kept)
    if change.changed and not dry_run:
        _atomic_write(sidecar, doc.serialize())
        change = SidecarChange(image, str(sidecar), created, tuple(added), tuple(removed), written_desc, kept,
                               written=True)
    return change


def _atomic_write(path: Path, data: bytes) -> None:
    target = Path(os.path.realpath(path))  # write through a symlinked sidecar, not over the link
    tmp = target.with_name(f".{target.name}.mcphotos-{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.chmod(tmp, target.stat().st_mode & 0o7777)
        except FileNotFoundError:
            pass
        os.replace(tmp, target)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise XmpError(f"cannot write {path}: {e.strerror or e}") from None
