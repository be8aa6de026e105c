"""How find's results are shown: the table, JSON, paths, inline previews, a contact sheet.

The query options themselves are declared once in mcphotos.cli.options (find_options).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import typer

from mcphotos.cli.render import Format, display_path, write_records
from mcphotos.errors import UsageError


def show_hits(hits: Sequence[Any], fmt: Format, preview: bool = False) -> None:
    """Results to stdout in ``fmt``; with ``preview``, a thumbnail under each table row when possible."""
    records = [{"rank": i + 1, "score": round(h.score, 6), "path": h.path, "hash": h.hash,
                **({"frame_s": h.frame_s} if getattr(h, "frame_s", None) is not None else {})}
               for i, h in enumerate(hits)]
    for r, h in zip(records, hits, strict=True):
        if getattr(h, "snippet", None) is not None:
            r["snippet"] = h.snippet  # find --contains: the matching passage, matched words in [brackets]
    if preview:
        if fmt is not Format.table:
            raise UsageError("--preview draws thumbnails in the table; drop --json, --paths and -0")
        from mcphotos.cli.preview import detect

        protocol = detect(is_tty=sys.stdout.isatty())
        if protocol is not None:
            _preview_table(records, protocol)
            return
        typer.echo("mcphotos: no inline images in this terminal (kitty or iTerm2 protocol needed); "
                   "showing the table", err=True)
    write_records([{k: v for k, v in r.items() if k != "rank"} for r in records], fmt,
                  [("score", "score"), ("path", "path")])
    if not hits and fmt is Format.table:
        typer.echo("no matches", err=True)


def _preview_table(records: list[dict], protocol: str) -> None:
    from mcphotos.cli.preview import show
    from mcphotos.cli.sheets import thumbnail

    for r in records:
        sys.stdout.write(f"{r['rank']:>3}  {r['score']:.4f}  {display_path(r['path'])}\n")
        img = thumbnail(r["path"], 256, r.get("frame_s"))
        if img is not None:
            show(img, protocol, sys.stdout)
    sys.stdout.flush()
    if not records:
        typer.echo("no matches", err=True)


def write_sheet(hits: Sequence[Any], out: str, columns: int) -> None:
    from mcphotos.cli.sheets import SheetItem, render_sheet

    items = [SheetItem(h.path, f"#{i + 1}  {h.score:.3f}\n{os.path.basename(h.path)}{_at(h)}",
                       frame_s=getattr(h, "frame_s", None)) for i, h in enumerate(hits)]
    if not items:
        typer.echo("mcphotos: no results, no sheet written", err=True)
        return
    report = render_sheet(items, out, columns=columns)
    note = f", {report.unreadable} unreadable" if report.unreadable else ""
    typer.echo(f"wrote {display_path(report.path)}: {report.items} photos{note}", err=True)


def _at(hit: Any) -> str:
    """`` @ 12.5s`` after a video's name: the frame that matched."""
    t = getattr(hit, "frame_s", None)
    return f" @ {t:.1f}s" if t is not None else ""
