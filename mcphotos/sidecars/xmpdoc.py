"""The XML side of an XMP sidecar: parse, edit mcphotos' own properties, serialize.

:mod:`mcphotos.sidecars.xmp` decides which sidecar to touch and writes it atomically; this module only
edits the document, keeping every namespace, value, comment and the xpacket wrapper it did
not create.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mcphotos.enums import StrEnum
from mcphotos.errors import McPhotosError

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


class SidecarStyle(StrEnum):
    """How a new sidecar is named: ``photo.jpg.xmp`` (darktable, digiKam) or ``photo.xmp`` (Adobe)."""

    DARKTABLE = "darktable"
    ADOBE = "adobe"


STYLES: tuple[SidecarStyle, ...] = tuple(SidecarStyle)

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


def hierarchical_name(label: str, sep: str = "|") -> str:
    return sep.join((ROOT, *label.split("/")))


@dataclass
class Doc:
    source: str
    prolog: str
    root: ET.Element
    epilog: str
    namespaces: list[tuple[str, str]] = field(default_factory=list)
    bom: bool = False

    @classmethod
    def load(cls, path: Path) -> Doc:
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
    def parse(cls, text: str, source: str) -> Doc:
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
