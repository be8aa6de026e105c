"""Read the caption a photo already carries (read-only; never writes).

Sources, first found wins:

1. an XMP sidecar's ``dc:description`` (``photo.jpg.xmp``, then ``photo.xmp``): what people
   edit in darktable, digiKam, Lightroom, so the most recent word;
2. the XMP packet embedded in the file (JPEG APP1, PNG iTXt, WebP/TIFF XMP);
3. the IPTC IIM Caption/Abstract (2:120);
4. EXIF ImageDescription (0x010E), unless it is a camera's boilerplate ("OLYMPUS DIGITAL CAMERA").

``dc:description`` is a language alternative: the ``x-default`` entry is preferred, then the
first one.
"""

from __future__ import annotations

import os
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from PIL import Image, ImageFile, IptcImagePlugin

from mcphotos.indexing.imaging import FORMATS, register_plugins

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
}
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
MAX_SIDECAR_BYTES = 4 << 20  # real sidecars are kilobytes; refuse to parse anything huge
_IMAGE_DESCRIPTION = 0x010E

# Text that cameras and phones write into ImageDescription on their own: not a caption.
BOILERPLATE = frozenset(s.lower() for s in (
    "OLYMPUS DIGITAL CAMERA", "SONY DSC", "DCIM", "DIGITAL CAMERA", "KODAK Digital Still Camera",
    "Default", "Image", "Picture", "Photo", "default", "Exif_JPEG_PICTURE", "JPEG", "Untitled",
    "SAMSUNG", "LG Electronics", "Created with GIMP", "Processed with VSCO", "Screenshot",
))


@dataclass(frozen=True)
class ExistingCaption:
    text: str
    source: str  # "xmp-sidecar", "xmp", "iptc" or "exif"


def sidecar_paths(path: str) -> list[str]:
    """Where a sidecar for ``path`` may be: ``photo.jpg.xmp`` (darktable, digiKam) or ``photo.xmp``."""
    stem = os.path.splitext(path)[0]
    return [path + ".xmp", path + ".XMP", stem + ".xmp", stem + ".XMP"]


def read_caption(path: str) -> ExistingCaption | None:
    """The caption ``path`` carries, or None. Unreadable metadata counts as none."""
    for sidecar in sidecar_paths(path):
        if os.path.isfile(sidecar):
            try:
                with open(sidecar, "rb") as f:
                    data = f.read(MAX_SIDECAR_BYTES + 1)
            except OSError:
                continue
            if len(data) <= MAX_SIDECAR_BYTES:
                text = xmp_description(data)
                if text:
                    return ExistingCaption(text, "xmp-sidecar")
            break  # the first sidecar present is the one tools use
    try:
        register_plugins()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path, formats=FORMATS) as img:
                return _embedded_caption(img)
    except Exception:  # a file Pillow cannot open carries no caption we can read
        return None


def _embedded_caption(img: ImageFile.ImageFile) -> ExistingCaption | None:
    packet = _xmp_packet(img)
    if packet:
        text = xmp_description(packet)
        if text:
            return ExistingCaption(text, "xmp")
    text = _iptc_caption(img)
    if text:
        return ExistingCaption(text, "iptc")
    text = _exif_description(img)
    if text:
        return ExistingCaption(text, "exif")
    return None


def _xmp_packet(img: Image.Image) -> bytes | None:
    raw = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if raw is None and hasattr(img, "tag_v2"):
        raw = img.tag_v2.get(700)  # TIFF XMLPacket
    if isinstance(raw, str):
        raw = raw.encode("utf-8")
    if isinstance(raw, tuple):  # some TIFFs hand back a tuple of ints
        raw = bytes(raw)
    return raw if isinstance(raw, bytes) and len(raw) <= MAX_SIDECAR_BYTES else None


def xmp_description(data: bytes) -> str | None:
    """``dc:description`` of an XMP document (x-default first), or None."""
    start = data.find(b"<")
    if start < 0:
        return None
    try:
        root = ET.fromstring(data[start:].rstrip(b"\x00 \r\n\t"))
    except ET.ParseError:
        # Embedded packets end with padding and a <?xpacket end?> trailer; cut at the meta root.
        end = data.rfind(b"</x:xmpmeta>")
        if end < 0:
            return None
        try:
            root = ET.fromstring(data[start:end + len(b"</x:xmpmeta>")])
        except ET.ParseError:
            return None
    for desc in root.iter(f"{{{NS['dc']}}}description"):
        items = desc.findall(".//rdf:li", NS)
        chosen = next((li for li in items if li.get(XML_LANG) == "x-default"), items[0] if items else None)
        text = (chosen.text if chosen is not None else desc.text) or ""
        text = text.strip()
        if text:
            return text
    # The rdf:Description attribute form: <rdf:Description dc:description="...">
    for node in root.iter(f"{{{NS['rdf']}}}Description"):
        value = node.get(f"{{{NS['dc']}}}description")
        if value and value.strip():
            return value.strip()
    return None


def _iptc_caption(img: ImageFile.ImageFile) -> str | None:
    try:
        info = IptcImagePlugin.getiptcinfo(img)
    except Exception:
        return None
    if not info:
        return None
    raw = info.get((2, 120))
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if not isinstance(raw, bytes):
        return None
    # IPTC 1:90 names the character set; UTF-8 is the norm today, Latin-1 the old default.
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = text.strip("\x00 \r\n\t")
    return text or None


def _exif_description(img: Image.Image) -> str | None:
    try:
        raw = img.getexif().get(_IMAGE_DESCRIPTION)
    except Exception:
        return None
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str):
        return None
    text = raw.strip("\x00 \r\n\t")
    if not text or text.lower() in BOILERPLATE:
        return None
    return text
