"""The options every query-running command shares (find, album save) and how results are shown."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from mcphotos.cli.render import Format, display_path, write_records
from mcphotos.errors import UsageError

ImageOpt = Annotated[list[str] | None, typer.Option(
    "--image", "-i", metavar="PHOTO",
    help="Query by example: photos like PHOTO (in the store or not). Repeatable; adds to QUERY.")]
InOpt = Annotated[list[str] | None, typer.Option("--in", metavar="DIR", help="Only photos under DIR (repeatable).")]
ExtOpt = Annotated[list[str] | None, typer.Option(
    "--ext", metavar="EXT", help="Only these file extensions, e.g. --ext jpg --ext heic (jpg includes jpeg).")]
AfterOpt = Annotated[str | None, typer.Option(
    "--after", metavar="DATE", help="Taken on or after DATE (YYYY, YYYY-MM, YYYY-MM-DD[THH:MM]): EXIF, else mtime.")]
BeforeOpt = Annotated[str | None, typer.Option("--before", metavar="DATE", help="Taken before DATE (exclusive).")]
TagOpt = Annotated[list[str] | None, typer.Option(
    "--tag", metavar="LABEL",
    help="Only photos tagged LABEL or under it (dog, animals/dog, animals); repeat to require several.")]
MinScoreOpt = Annotated[float | None, typer.Option("--min-score", help="Drop results below this cosine score.")]
RelativeOpt = Annotated[float | None, typer.Option(
    "--relative", metavar="F", help="Keep results scoring within fraction F of the best (0.9: at least 90%).")]
AutoCutOpt = Annotated[bool, typer.Option(
    "--auto-cut", help="Stop where the scores drop off: a library with three receipts returns three.")]
TopOpt = Annotated[int, typer.Option("-k", "--top", min=1, help="At most this many results.")]


def build_spec(query: str | None, images: Sequence[str] | None, top: int, in_dirs: Sequence[str] | None,
               exts: Sequence[str] | None, after: str | None, before: str | None, tags: Sequence[str] | None,
               min_score: float | None, relative: float | None, auto_cut: bool) -> Any:
    """The FindSpec of the command line, with every path made absolute (albums outlive the cwd)."""
    from mcphotos.search.cutoff import Cut
    from mcphotos.search.query import FindSpec, Term, describe, parse_date, parse_exts, parse_query

    text = query
    if text:
        # Image terms inside QUERY become absolute too, so a saved album finds them from anywhere.
        terms = [Term(t.kind, _abs(t.value), t.weight) if t.kind == "image" else t for t in parse_query(text)]
        text = describe(terms) if any(t.kind == "image" for t in terms) else text
    Cut(relative, auto_cut)  # validates --relative
    spec = FindSpec(
        text=text or None,
        images=tuple(_abs(p) for p in images or ()),
        k=top,
        in_dirs=tuple(_abs(d) for d in in_dirs or ()),
        exts=parse_exts(exts or ()),
        after=parse_date(after, "--after") if after else None,
        before=parse_date(before, "--before") if before else None,
        tags=tuple(tags or ()),
        min_score=min_score,
        relative=relative,
        auto_cut=auto_cut,
    )
    spec.terms()  # "nothing to search for" before any model or store is touched
    return spec


def _abs(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


def show_hits(hits: Sequence[Any], fmt: Format, preview: bool = False) -> None:
    """Results to stdout in ``fmt``; with ``preview``, a thumbnail under each table row when possible."""
    records = [{"rank": i + 1, "score": round(h.score, 6), "path": h.path, "hash": h.hash}
               for i, h in enumerate(hits)]
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
        img = thumbnail(r["path"], 256)
        if img is not None:
            show(img, protocol, sys.stdout)
    sys.stdout.flush()
    if not records:
        typer.echo("no matches", err=True)


def write_sheet(hits: Sequence[Any], out: str, columns: int) -> None:
    from mcphotos.cli.sheets import SheetItem, render_sheet

    items = [SheetItem(h.path, f"#{i + 1}  {h.score:.3f}\n{os.path.basename(h.path)}") for i, h in enumerate(hits)]
    if not items:
        typer.echo("mcphotos: no results, no sheet written", err=True)
        return
    report = render_sheet(items, out, columns=columns)
    note = f", {report.unreadable} unreadable" if report.unreadable else ""
    typer.echo(f"wrote {display_path(report.path)}: {report.items} photos{note}", err=True)
