"""Store maintenance: check (and repair), and merge another store or an export into this one."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from mcphotos.cli.common import JsonOpt, Progress, QuietOpt, app, handle_errors
from mcphotos.cli.options import library_options
from mcphotos.cli.render import display_path, json_line

if TYPE_CHECKING:
    from mcphotos.library import Library


@app.command()
@handle_errors
@library_options(runs_model=False)
def check(
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild the search index and drop broken vectors "
                                                          "(their photos are re-embedded by the next index).")] = False,
    json_: JsonOpt = False,
    *,
    lib: Library,
) -> None:
    """Verify the store: SQLite integrity, vectors, and the search index. Exit 1 if damaged."""
    report = lib.repair() if repair else lib.check()
    if json_:
        typer.echo(json_line({"ok": report.ok, "problems": report.problems, "repaired": report.repaired,
                              "images": report.images, "files": report.files}))
    else:
        for line in report.repaired:
            typer.echo(f"repaired: {line}")
        for line in report.problems:
            typer.echo(f"problem: {line}")
        if report.ok:
            typer.echo(f"ok: {report.files} files, {report.images} images")
    if not report.ok:
        if not repair and not json_:
            typer.echo("run `mcphotos check --repair` to fix what can be fixed", err=True)
        raise typer.Exit(1)


@app.command()
@handle_errors
@library_options(runs_model=False)
def merge(
    source: Annotated[str, typer.Argument(
        metavar="SOURCE", show_default=False,
        help="Another store directory (e.g. one copied from a GPU box), its mcphotos home, "
             "or a directory `mcphotos export` wrote.")],
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    *,
    lib: Library,
) -> None:
    """Import vectors computed elsewhere by content hash, with their tags, captions and signatures.

    Refuses another model or preprocessing; a second merge changes nothing. Paths are not
    merged: run `mcphotos index` on your folders afterwards, and it embeds nothing merged.
    """
    progress = Progress(enabled=not quiet and sys.stderr.isatty())
    try:
        report = lib.merge(source, on_progress=progress.update)
    finally:
        progress.close()
    if json_:
        typer.echo(json_line(asdict(report)))
    if not quiet:
        conflicts = f", {report.conflicting} conflicting (kept this store's)" if report.conflicting else ""
        invalid = f", {report.invalid} invalid" if report.invalid else ""
        typer.echo(f"merged {report.seen} images from {display_path(report.source)}: {report.new} new, "
                   f"{report.present} already present{conflicts}{invalid}; {report.tags} tags, "
                   f"{report.captions} captions, {report.signatures} signatures filled in"
                   + (f", {report.dismissed} 'not duplicates' pairs" if report.dismissed else "")
                   + f" {report.elapsed:.1f}s",
                   err=True)
