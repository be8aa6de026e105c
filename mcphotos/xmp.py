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

import io
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import McPhotosError

ROOT = "mcphotos"
NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "mcphotos": "https://mcphotos.invalid/ns/1.0/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
STYLES = ("darktable", "adobe")

NEW_SIDECAR = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>\n'
    f'<x:xmpmeta xmlns:x="{NS["x"]}" x:xmptk="mcphotos">\n'
    f' <rdf:RDF xmlns:rdf="{NS["rdf"]}">\n'
    '  <rdf:Description rdf:about=""/>\n'
    " </rdf:RDF>\n"
    "</x:xmpmeta>\n"
    '<?xpacket end="w"?>\n'
)


def q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


class XmpError(McPhotosError):
    """A sidecar could not be read or written; it was left as it was."""


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


def new_sidecar_path(image: str | os.PathLike[str], style: str = "darktable") -> Path:
    if style not in STYLES:
        raise XmpError(f"unknown sidecar naming {style!r}", "use darktable (photo.jpg.xmp) or adobe (photo.xmp)")
    p = Path(image)
    return p.with_suffix(".xmp") if style == "adobe" else p.with_name(p.name + ".xmp")


# -- public API -------------------------------------------------------------------------------------

def read_sidecar(path: str | os.PathLike[str]) -> SidecarInfo:
    """Keywords and description of one sidecar file. Raises :class:`XmpError` if malformed."""
    doc = _Doc.load(Path(path))
    return SidecarInfo(
        subjects=tuple(doc.items(q("dc", "subject"))),
        hierarchical=tuple(doc.items(q("lr", "hierarchicalSubject"))),
        tags_list=tuple(doc.items(q("digiKam", "TagsList"))),
        description=doc.description(),
    )


def update_sidecar(image: str | os.PathLike[str], *, machine_tags: Sequence[str] | None = None,
                   description: str | None = None, force: bool = False, style: str = "darktable",
                   dry_run: bool = False) -> list[SidecarChange]:
    """Bring the sidecar(s) of ``image`` in line with what mcphotos knows about it.

    ``machine_tags``: label paths ("animals/dog") that should be under the ``mcphotos`` root, all
    others under it are removed; ``[]`` removes every mcphotos keyword, ``None`` leaves them.
    ``description``: written to ``dc:description`` unless a person wrote a different one (``force``).
    One :class:`SidecarChange` per sidecar; problems are reported in it, not raised.
    """
    targets = existing_sidecars(image) or [new_sidecar_path(image, style)]
    changes = []
    for sidecar in targets:
        try:
            changes.append(_update_one(str(image), sidecar, machine_tags, description, force, dry_run))
        except XmpError as e:
            changes.append(SidecarChange(str(image), str(sidecar), error=str(e)))
    return changes


def hierarchical_name(label: str, sep: str = "|") -> str:
    return sep.join((ROOT, *label.split("/")))


# -- implementation ---------------------------------------------------------------------------------

def _update_one(image: str, sidecar: Path, machine_tags: Sequence[str] | None, description: str | None,
                force: bool, dry_run: bool) -> SidecarChange:
    created = not sidecar.exists()
    if created and machine_tags is not None and not machine_tags and description is None:
        return SidecarChange(image, str(sidecar))  # nothing to remove from a file that does not exist
    doc = _Doc.parse(NEW_SIDECAR, str(sidecar)) if created else _Doc.load(sidecar)
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


@dataclass
class _Doc:
    source: str
    prolog: str
    root: ET.Element
    epilog: str
    namespaces: list[tuple[str, str]] = field(default_factory=list)
    bom: bool = False

    @classmethod
    def load(cls, path: Path) -> _Doc:
        try:
            data = path.read_bytes()
        except OSError as e:
            raise XmpError(f"cannot read {path}: {e.strerror or e}") from None
        bom = data.startswith(b"\xef\xbb\xbf")
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise XmpError(f"{path} is not UTF-8 XMP; left untouched") from None
        doc = cls.parse(text, str(path))
        doc.bom = bom
        return doc

    @classmethod
    def parse(cls, text: str, source: str) -> _Doc:
        if "<!DOCTYPE" in text or "<!ENTITY" in text:
            raise XmpError(f"{source}: DTDs are not allowed in XMP; left untouched")
        start = _root_start(text)
        try:
            namespaces = [ns for _, ns in ET.iterparse(io.BytesIO(text.encode("utf-8")), events=("start-ns",))]
            parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True, insert_pis=True))
            parser.feed(text[start:])
            root = parser.close()
        except ET.ParseError as e:
            raise XmpError(f"{source} is not well-formed XML ({e}); left untouched") from None
        end = _root_end(text, root)
        doc = cls(source, text[:start], root, text[end:] if end is not None else "\n", namespaces)
        if doc.rdf() is None:
            raise XmpError(f"{source} has no rdf:RDF element; left untouched")
        return doc

    # -- navigation ---------------------------------------------------------------------------

    def rdf(self) -> ET.Element | None:
        if self.root.tag == q("rdf", "RDF"):
            return self.root
        return self.root.find(".//" + q("rdf", "RDF"))

    def descriptions(self) -> list[ET.Element]:
        rdf = self.rdf()
        assert rdf is not None
        found = rdf.findall(q("rdf", "Description"))
        if not found:
            d = ET.Element(q("rdf", "Description"), {q("rdf", "about"): ""})
            _append(rdf, d, 1)
            found = [d]
        return found

    def prop(self, tag: str, create: bool = False) -> ET.Element | None:
        for d in self.descriptions():
            found = d.find(tag)
            if found is not None:
                return found
        if not create:
            return None
        el = ET.Element(tag)
        _append(self.descriptions()[0], el, 3)
        return el

    def container(self, tag: str, kind: str, create: bool = False) -> ET.Element | None:
        prop = self.prop(tag, create)
        if prop is None:
            return None
        for child in prop:
            if child.tag in (q("rdf", "Bag"), q("rdf", "Seq"), q("rdf", "Alt")):
                return child
        if not create and not (prop.text or "").strip():
            return None
        # A bare value (or an empty property): turn it into a container holding that value.
        box = ET.Element(q("rdf", kind))
        value = (prop.text or "").strip()
        prop.text = None
        _append(prop, box, 4)
        if value:
            li = ET.Element(q("rdf", "li"))
            li.text = value
            _append(box, li, 5)
        return box

    def items(self, tag: str) -> list[str]:
        box = self.container(tag, "Bag")
        return [li.text or "" for li in box.findall(q("rdf", "li"))] if box is not None else []

    # -- edits --------------------------------------------------------------------------------

    def _edit_list(self, tag: str, kind: str, add: Sequence[str], drop: set[str]) -> None:
        box = self.container(tag, kind, create=bool(add))
        if box is None:
            return
        for li in list(box.findall(q("rdf", "li"))):
            if (li.text or "") in drop:
                box.remove(li)
        present = {li.text or "" for li in box.findall(q("rdf", "li"))}
        for value in add:
            if value not in present:
                li = ET.Element(q("rdf", "li"))
                li.text = value
                _append(box, li, 5)
                present.add(value)
        if not len(box):
            self._remove_prop(tag)

    def _remove_prop(self, tag: str) -> None:
        for d in self.descriptions():
            for el in d.findall(tag):
                _remove(d, el)

    def set_machine_tags(self, labels: Sequence[str]) -> tuple[list[str], list[str]]:
        want = list(dict.fromkeys(hierarchical_name(label) for label in labels))
        have = [v for v in self.items(q("lr", "hierarchicalSubject")) if _is_ours(v, "|")]
        added = [v for v in want if v not in have]
        removed = [v for v in have if v not in want]
        self._edit_list(q("lr", "hierarchicalSubject"), "Bag", added, set(removed))

        want_dk = [v.replace("|", "/") for v in want]
        have_dk = [v for v in self.items(q("digiKam", "TagsList")) if _is_ours(v, "/")]
        self._edit_list(q("digiKam", "TagsList"), "Seq", [v for v in want_dk if v not in have_dk],
                        {v for v in have_dk if v not in want_dk})

        # Flat words: add those missing, remove only those we added earlier (and no longer want).
        words = list(dict.fromkeys(level for label in labels for level in label.split("/")))
        subjects = self.items(q("dc", "subject"))
        ours = self.items(q("mcphotos", "subjects"))
        drop = {w for w in ours if w not in words}
        new_words = [w for w in words if w not in subjects]
        self._edit_list(q("dc", "subject"), "Bag", new_words, drop)
        keep_ours = [w for w in ours if w in words]
        record = keep_ours + [w for w in new_words if w not in keep_ours]
        self._remove_prop(q("mcphotos", "subjects"))
        if record:
            self._edit_list(q("mcphotos", "subjects"), "Bag", record, set())
        return added, removed

    def description(self) -> str | None:
        box = self.container(q("dc", "description"), "Alt")
        if box is None:
            return None
        lis = box.findall(q("rdf", "li"))
        for li in lis:
            if li.get(XML_LANG) == "x-default":
                return li.text or ""
        return (lis[0].text or "") if lis else None

    def set_description(self, text: str, force: bool) -> tuple[str | None, bool]:
        current = self.description()
        record = self.prop(q("mcphotos", "description"))
        ours = record.text if record is not None else None
        if current == text:
            return None, False
        if current not in (None, "") and current != ours and not force:
            return None, True
        self._remove_prop(q("dc", "description"))
        box = self.container(q("dc", "description"), "Alt", create=True)
        assert box is not None
        li = ET.Element(q("rdf", "li"), {XML_LANG: "x-default"})
        li.text = text
        _append(box, li, 5)
        self._remove_prop(q("mcphotos", "description"))
        el = self.prop(q("mcphotos", "description"), create=True)
        assert el is not None
        el.text = text
        return text, False

    # -- output -------------------------------------------------------------------------------

    def serialize(self) -> bytes:
        for prefix, uri in [*self.namespaces, *NS.items()]:
            if prefix and prefix != "xml":
                try:
                    ET.register_namespace(prefix, uri)
                except ValueError:
                    pass  # a reserved "ns0"-style prefix: ElementTree picks its own, same meaning
        body = ET.tostring(self.root, encoding="unicode")
        text = self.prolog + body + self.epilog
        return (b"\xef\xbb\xbf" if self.bom else b"") + text.encode("utf-8")


def _is_ours(value: str, sep: str) -> bool:
    return value == ROOT or value.startswith(ROOT + sep)


_PROLOG_ITEM = re.compile(r"\s*(<\?.*?\?>|<!--.*?-->)", re.S)


def _root_start(text: str) -> int:
    """Offset of the root element: after the XML declaration, xpacket PI and comments."""
    pos = 0
    while True:
        m = _PROLOG_ITEM.match(text, pos)
        if not m:
            break
        pos = m.end()
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos


def _root_end(text: str, root: ET.Element) -> int | None:
    """Offset just after the root's end tag, so the trailing xpacket PI is kept verbatim."""
    local = root.tag.rsplit("}", 1)[-1]
    ends = list(re.finditer(r"</(?:[\w.-]+:)?" + re.escape(local) + r"\s*>", text))
    return ends[-1].end() if ends else None


def _append(parent: ET.Element, child: ET.Element, level: int) -> None:
    """Append ``child`` indented like its siblings (or at ``level`` spaces if it has none)."""
    if len(parent):
        child.tail = parent[-1].tail
        parent[-1].tail = parent.text if parent.text and not parent.text.strip() else "\n" + " " * level
    else:
        parent.text = "\n" + " " * level
        child.tail = "\n" + " " * max(level - 1, 0)
    ET.indent(child, space=" ", level=level)
    parent.append(child)


def _remove(parent: ET.Element, child: ET.Element) -> None:
    kids = list(parent)
    i = kids.index(child)
    if i > 0 and i == len(kids) - 1:
        kids[i - 1].tail = child.tail  # keep the closing tag's indentation
    parent.remove(child)


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
