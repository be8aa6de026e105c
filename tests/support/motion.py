"""Google/Samsung motion photos and Apple Live Photos, built on the spot (PyAV writes the videos).

A motion photo is one JPEG file with a short MP4 appended after the JPEG's end-of-image marker,
announced in the JPEG's XMP (Google: ``GCamera:MotionPhoto``/``MicroVideo``, ``Container`` items;
Samsung: a ``MotionPhoto_Data`` marker and an ``SEFT`` trailer after the video).
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

GOOGLE_XMP = """<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/"
 xmlns:Container="http://ns.google.com/photos/1.0/container/" xmlns:Item="http://ns.google.com/photos/1.0/container/item/"
 GCamera:MotionPhoto="1" GCamera:MotionPhotoVersion="1" GCamera:MotionPhotoPresentationTimestampUs="0"
 GCamera:MicroVideo="1" GCamera:MicroVideoVersion="1" GCamera:MicroVideoOffset="{offset}">
<Container:Directory><rdf:Seq>
<rdf:li rdf:parseType="Resource">
 <Container:Item Item:Mime="image/jpeg" Item:Semantic="Primary" Item:Length="0"/></rdf:li>
<rdf:li rdf:parseType="Resource">
 <Container:Item Item:Mime="video/mp4" Item:Semantic="MotionPhoto" Item:Length="{offset}"/></rdf:li>
</rdf:Seq></Container:Directory></rdf:Description></rdf:RDF></x:xmpmeta>"""


def tiny_mp4(frames: int = 6, size: tuple[int, int] = (64, 48)) -> bytes:
    """A real, short MP4 (MPEG-4 part 2 video), written by PyAV."""
    import av

    w, h = size
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 30 * i, np.uint8), format="rgb24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return buf.getvalue()


def motion_photo(path: Path, still: Image.Image, vendor: str = "google") -> bytes:
    """Write ``still`` as a motion photo JPEG with a real MP4 after its EOI; returns the JPEG part alone."""
    video = tiny_mp4()
    buf = io.BytesIO()
    if vendor == "google":
        still.save(buf, "JPEG", quality=90, xmp=GOOGLE_XMP.format(offset=len(video)).encode())
        tail = video
    else:  # Samsung: a marker before the video, an SEF trailer after it
        still.save(buf, "JPEG", quality=90)
        tail = b"MotionPhoto_Data" + video + b"SEFH" + b"\0" * 12 + b"SEFT"
    jpeg = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(jpeg + tail)
    return jpeg


def live_video(path: Path, content_id: str | None) -> Path:
    """A real QuickTime MOV (PyAV) carrying ``com.apple.quicktime.content.identifier``, as an iPhone writes it."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mov", options={"movflags": "use_metadata_tags"}) as c:
        if content_id is not None:
            c.metadata["com.apple.quicktime.content.identifier"] = content_id
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8), format="rgb24")
            for packet in s.encode(frame):
                c.mux(packet)
        for packet in s.encode():
            c.mux(packet)
    return path


def apple_makernote(content_id: str) -> bytes:
    """An Apple MakerNote holding tag 0x0011 (ContentIdentifier), laid out as iOS writes it."""
    value = content_id.encode("ascii") + b"\0"
    ifd = struct.pack(">H", 1) + struct.pack(">HHII", 0x0011, 2, len(value), 32) + b"\0\0\0\0"
    return b"Apple iOS\0" + b"\0\x01" + b"MM" + ifd + value


def live_still(path: Path, still: Image.Image, content_id: str) -> Path:
    """A JPEG whose EXIF MakerNote carries the Live Photo content identifier."""
    exif = Image.Exif()
    exif[0x010F] = "Apple"
    exif.get_ifd(0x8769)[0x927C] = apple_makernote(content_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    still.save(path, "JPEG", quality=90, exif=exif)
    return path
