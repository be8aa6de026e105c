"""Store maintenance: check (and repair)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from mcphotos.cli.common import JsonOpt, app, handle_errors
from mcphotos.cli.options import library_options
from mcphotos.cli.render import json_line

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
