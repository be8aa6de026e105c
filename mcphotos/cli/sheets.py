"""Contact sheets: a grid of thumbnails, each with a caption, saved as one image.

General on purpose: ``find --sheet`` captions each photo with its rank, score and name;
duplicate groups can pass their own captions and highlight the photo to keep.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mcphotos.errors import ImageError, UsageError

BACKGROUND = (255, 255, 255)
PLACEHOLDER = (200, 200, 200)
HIGHLIGHT = (230, 60, 20)
TEXT = (20, 20, 20)
MAX_ITEMS = 1000  # beyond this a sheet is unreadable anyway (and huge)

# Formats a sheet can be saved in, by extension.
FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP"}


@dataclass(frozen=True)
class SheetItem:
    path: str
    caption: str  # one or more lines, separated by "\n"
    highlight: bool = False
    frame_s: float | None = None  # a video: show the frame at this time


@dataclass(frozen=True)
class SheetReport:
    path: str
    items: int
    unreadable: int
    size: tuple[int, int]


def render_sheet(items: Sequence[SheetItem], out: str | os.PathLike[str], columns: int = 5, thumb: int = 200,
                 title: str | None = None) -> SheetReport:
    """Draw ``items`` in a grid of ``columns``, ``thumb`` pixels per cell, and save to ``out``.

    An unreadable photo gets a grey placeholder cell (its caption says so) rather than failing.
    """
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"cannot write a sheet as {out.name}", "name it .jpg, .png or .webp")
    if not items:
        raise UsageError("nothing to put on the sheet")
    if columns < 1 or thumb < 16:
        raise UsageError("a sheet needs at least one column and thumbnails of 16 px or more")
    items = list(items)[:MAX_ITEMS]
    font = _font(max(10, thumb // 14))
    line_h = _line_height(font)
    lines = max(len(it.caption.split("\n")) for it in items)
    pad = max(4, thumb // 25)
    cell_w, cell_h = thumb + 2 * pad, thumb + 2 * pad + lines * line_h
    cols = min(columns, len(items))
    rows = math.ceil(len(items) / cols)
    top = line_h + 2 * pad if title else 0
    sheet = Image.new("RGB", (cols * cell_w, top + rows * cell_h), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, pad), _fit(draw, title, sheet.width - 2 * pad, font), fill=TEXT, font=font)
    unreadable = 0
    for n, item in enumerate(items):
        x, y = (n % cols) * cell_w, top + (n // cols) * cell_h
        img = _thumbnail(item.path, thumb, item.frame_s)
        caption = item.caption
        if img is None:
            unreadable += 1
            img = Image.new("RGB", (thumb, thumb), PLACEHOLDER)
            caption = caption.split("\n")[0] + "\n(unreadable)"
        if item.highlight:
            draw.rectangle((x + 1, y + 1, x + cell_w - 2, y + thumb + 2 * pad - 2), outline=HIGHLIGHT,
                           width=max(2, pad // 2 + 1))
        sheet.paste(img, (x + pad + (thumb - img.width) // 2, y + pad + (thumb - img.height) // 2))
        for i, line in enumerate(caption.split("\n")[:lines]):
            draw.text((x + pad, y + thumb + 2 * pad + i * line_h), _fit(draw, line, thumb, font),
                      fill=HIGHLIGHT if item.highlight and i == 0 else TEXT, font=font)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    sheet.save(tmp, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    os.replace(tmp, out)
    return SheetReport(str(out), len(items), unreadable, sheet.size)


def thumbnail(path: str, size: int, frame_s: float | None = None) -> Image.Image | None:
    """An upright RGB thumbnail no larger than ``size`` square (a video's frame at ``frame_s``,
    else its middle), or None if unreadable."""
    return _thumbnail(path, size, frame_s)


def _thumbnail(path: str, size: int, frame_s: float | None = None) -> Image.Image | None:
    from mcphotos.indexing.raw import load_file_upright
    from mcphotos.indexing.video import frame_image, is_video

    if is_video(path):
        img = frame_image(path, frame_s)
        if img is None:
            return None
        img.thumbnail((size, size), Image.Resampling.LANCZOS)
        return img
    try:
        data = Path(path).read_bytes()
        img, _, _, _ = load_file_upright(path, data)
    except (OSError, ImageError):
        return None
    except Exception:  # a decoder bug on one odd file must not lose the whole sheet
        return None
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    return img


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def _line_height(font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> int:
    box = font.getbbox("Ag")
    return int(box[3] - box[1]) + 4


def _fit(draw: ImageDraw.ImageDraw, text: str, width: int, font: ImageFont.ImageFont | ImageFont.FreeTypeFont) -> str:
    """``text`` shortened with an ellipsis in the middle to fit ``width`` pixels."""
    text = text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)
    if draw.textlength(text, font=font) <= width:
        return text
    keep = len(text)
    while keep > 3:
        keep -= 1
        head = keep // 2
        short = text[:head] + "…" + text[len(text) - (keep - head):]
        if draw.textlength(short, font=font) <= width:
            return short
    return text[:3]
