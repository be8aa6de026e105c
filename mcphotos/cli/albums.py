"""Smart albums: `album save`, `album sync`, `album list`, `album delete`."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from mcphotos.cli.common import JsonOpt, app, handle_errors
from mcphotos.cli.options import find_options, library_options
from mcphotos.cli.render import choose_format, display_path, json_line, write_records

if TYPE_CHECKING:
    from mcphotos.library import Library
    from mcphotos.search.query import FindSpec

album_app = typer.Typer(help="Smart albums: saved queries kept up to date as folders of links.",
                        no_args_is_help=True)
app.add_typer(album_app, name="album")

NameArg = Annotated[str, typer.Argument(help="The album's name.", show_default=False)]


@album_app.command("save")
@handle_errors
@find_options(top=200)
@library_options(runs_model=False)
def album_save(
    name: NameArg,
    *,
    spec: FindSpec,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an album of that name.")] = False,
    lib: Library,
) -> None:
    """Save a query with its filters and cut-off as a named album (the query and filters of find)."""
    album = lib.save_album(name, spec, replace=replace)
    typer.echo(f"saved album {album.name}: {album.spec.summary()}", err=True)


@album_app.command("sync")
@handle_errors
@library_options
def album_sync(
    name: NameArg,
    to: Annotated[str, typer.Option("--to", metavar="DIR", help="The folder of links (created if needed).")],
    json_: JsonOpt = False,
    *,
    lib: Library,
) -> None:
    """Run the album's query and make DIR hold a link per match (only links it made are ever removed)."""
    report = lib.sync_album(name, to)
    for foreign in report.foreign:
        typer.echo(f"mcphotos: left {display_path(foreign)} alone: it is no longer the link mcphotos made", err=True)
    if json_:
        typer.echo(json_line({"album": report.album, "directory": report.directory, "added": report.added,
                              "removed": report.removed, "kept": report.kept, "foreign": report.foreign,
                              "companions": report.companions}))
    else:
        typer.echo(f"synced {report.album} to {display_path(report.directory)}: {report.added} added, "
                   f"{report.removed} removed, {report.kept} kept"
                   + (f", {report.companions} companion links" if report.companions else ""), err=True)


@album_app.command("list")
@handle_errors
@library_options(runs_model=False)
def album_list(json_: JsonOpt = False, *, lib: Library) -> None:
    """Show the saved albums: name, query and filters, where and when last synced."""
    albums = lib.albums()
    if json_:
        for a in albums:
            typer.echo(json_line({"name": a.name, "spec": a.spec.to_dict(), "query": a.spec.summary(),
                                  "synced_to": a.synced_to, "synced_at": a.synced_at, "photos": a.synced_count}))
        return
    if not albums:
        typer.echo("no albums yet: mcphotos album save NAME QUERY", err=True)
        return
    rows = [{"name": a.name, "photos": "" if a.synced_count is None else str(a.synced_count),
             "synced": _when(a.synced_at) + (f" → {a.synced_to}" if a.synced_to else ""), "query": a.spec.summary()}
            for a in albums]
    write_records(rows, choose_format(), [("name", "name"), ("photos", "photos"), ("synced", "last sync"),
                                          ("query", "query")], path_key="query")


@album_app.command("delete")
@handle_errors
@library_options(runs_model=False)
def album_delete(name: NameArg, *, lib: Library) -> None:
    """Forget a saved album (its synced folder is left as it is)."""
    lib.delete_album(name)
    typer.echo(f"deleted album {name}", err=True)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="minutes") if ts else "never"
