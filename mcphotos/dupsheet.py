"""A contact sheet of duplicate groups: one row per group, keeper first and marked, names below.

A minimal renderer of dedup's own (Pillow only); thumbnails are decoded with the same guarded
loader the indexer uses, so a file that cannot be read gets a grey placeholder, not a crash.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from .dedup import Group
from .errors import McPhotosError

THUMB = 160
PAD = 8
LABEL = 30
MAX_PER_ROW = 8
KEEP_COLOR = (40, 170, 70)
DUP_COLOR = (200, 60, 50)


def render_dedup_sheet(groups: Sequence[Group], out: str, max_groups: int = 200) -> str:
    """Draw ``groups`` into ``out`` (format from its extension); returns the path written."""
    from .imaging import load_upright
    from .workers import read_stable

    groups = list(groups)[:max_groups]
    cols = min(MAX_PER_ROW, max((len(g.members) for g in groups), default=1))
    cell_w, cell_h = THUMB + PAD, THUMB + LABEL + PAD
    header = 18
    width = PAD + cols * cell_w
    height = PAD + sum(header + cell_h * -(-len(g.members) // MAX_PER_ROW) for g in groups) if groups else 60
    sheet = Image.new("RGB", (width, max(height, 60)), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    y = PAD
    if not groups:
        draw.text((PAD, PAD), "no duplicate groups", fill=(0, 0, 0), font=font)
    for n, g in enumerate(groups, 1):
        draw.text((PAD, y), f"group {n}: {g.tier}, keep {os.path.basename(g.keeper.path)} ({g.reason})",
                  fill=(0, 0, 0), font=font)
        y += header
        for k, m in enumerate(g.members):
            x = PAD + (k % MAX_PER_ROW) * cell_w
            yy = y + (k // MAX_PER_ROW) * cell_h
            try:
                data, _ = read_stable(m.path)
                thumb, *_ = load_upright(data)
                thumb.thumbnail((THUMB, THUMB))
            except Exception:
                thumb = Image.new("RGB", (THUMB, THUMB), (180, 180, 180))
            ox, oy = x + (THUMB - thumb.width) // 2, yy + (THUMB - thumb.height) // 2
            sheet.paste(thumb, (ox, oy))
            keeper = m.role == "keeper"
            color = KEEP_COLOR if keeper else DUP_COLOR
            draw.rectangle((x - 3, yy - 3, x + THUMB + 2, yy + THUMB + 2), outline=color, width=3 if keeper else 1)
            tag = "KEEP" if keeper else m.tier
            draw.rectangle((x, yy, x + 6 * len(tag) + 6, yy + 13), fill=color)
            draw.text((x + 3, yy + 1), tag, fill=(255, 255, 255), font=font)
            # folder/name: copies often share the file name and differ by folder
            name = os.path.join(os.path.basename(os.path.dirname(m.path)), os.path.basename(m.path))
            if len(name) > 26:
                name = name[:11] + "..." + name[-12:]
            draw.text((x, yy + THUMB + 4), name, fill=(0, 0, 0), font=font)
            detail = f"{m.width}x{m.height}" if m.width else ""
            if not keeper and m.hamming is not None:
                detail += f"  d={m.hamming}"
            draw.text((x, yy + THUMB + 16), detail, fill=(90, 90, 90), font=font)
        y += cell_h * -(-len(g.members) // MAX_PER_ROW)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        sheet.save(out, quality=88) if out.lower().endswith((".jpg", ".jpeg")) else sheet.save(out)
    except (OSError, ValueError) as e:
        raise McPhotosError(f"cannot write the contact sheet {out}: {e}") from None
    return out
