"""Duplicate groups as a contact sheet, drawn by the shared renderer (sheets.py).

Groups follow each other in the grid, largest first; every caption starts with its group
number, the keeper is highlighted and captioned KEEP, the others give their tier and pHash
distance from it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mcphotos.cli.sheets import SheetItem, SheetReport, render_sheet
from mcphotos.dedup.finder import Group

MAX_COLUMNS = 8


def render_dedup_sheet(groups: Sequence[Group], out: str) -> SheetReport:
    items = []
    for n, g in enumerate(groups, 1):
        for m in g.members:
            name = os.path.join(os.path.basename(os.path.dirname(m.path)), os.path.basename(m.path))
            dims = f"{m.width}x{m.height}" if m.width else "size unknown"
            if m.role == "keeper":
                head = f"#{n} KEEP"
            else:
                head = f"#{n} {m.tier}" + (f" d={m.hamming}" if m.hamming is not None else "")
            items.append(SheetItem(m.path, f"{head}\n{name}\n{dims}", highlight=m.role == "keeper"))
    columns = min(MAX_COLUMNS, max((len(g.members) for g in groups), default=1))
    return render_sheet(items, out, columns=columns, thumb=160,
                        title=f"{len(groups)} duplicate groups: the highlighted photo of each is kept")
