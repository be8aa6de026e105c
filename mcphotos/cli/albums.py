"""Smart albums: `album save`, `album sync`, `album list`, `album delete`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from mcphotos.cli.common import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    PrecisionOpt,
    StoreOpt,
    WeightsOpt,
    app,
    handle_errors,
    make_library,
)
from mcphotos.cli.render import choose_format, display_path, json_line, write_records
from mcphotos.cli.search import (
    AfterOpt,
    AutoCutOpt,
    BeforeOpt,
    ExtOpt,
    ImageOpt,
    InOpt,
    MinScoreOpt,
    RelativeOpt,
    TagOpt,
    build_spec,
)

album_app = typer.Typer(help="Smart albums: saved queries kept up to date as folders of links.",
                        no_args_is_help=True)
app.add_typer(album_app, name="album")

NameArg = Annotated[str, typer.Argument(help="The album's name.", show_default=False)]


@album_app.command("save")
@handle_errors
def album_save(
    name: NameArg,
    query: Annotated[str | None, typer.Argument(help="The query, in find's syntax.", show_default=False)] = None,
    image: ImageOpt = None,
    top: Annotated[int, typer.Option("-k", "--top", min=1, help="At most this many photos.")] = 200,
    in_dir: InOpt = None,
    ext: ExtOpt = None,
    after: AfterOpt = None,
    before: BeforeOpt = None,
    tag: TagOpt = None,
    min_score: MinScoreOpt = None,
    relative: RelativeOpt = None,
    auto_cut: AutoCutOpt = False,
    replace: Annotated[bool, typer.Option("--replace", help="Overwrite an album of that name.")] = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
) -> None:
    """Save a query with its filters and cut-off as a named album (same options as find)."""
    from mcphotos.search.albums import save_album

    spec = build_spec(query, image, top, in_dir, ext, after, before, tag, min_score, relative, auto_cut)
    with make_library(store, model, weights) as lib:
        album = save_album(lib.store(create=False), name, spec, replace=replace)
    typer.echo(f"saved album {album.name}: {album.spec.summary()}", err=True)


@album_app.command("sync")
@handle_errors
def album_sync(
    name: NameArg,
    to: Annotated[str, typer.Option("--to", metavar="DIR", help="The folder of links (created if needed).")],
    json_: JsonOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
) -> None:
    """Run the album's query and make DIR hold a link per match (only links it made are ever removed)."""
    from mcphotos.search.albums import get_album, record_sync, sync_links

    with make_library(store, model, weights, device, precision) as lib:
        album = get_album(lib.store(create=False), name)
        hits = lib.run_find(album.spec)
        report = sync_links(album.name, [(h.path, h.hash) for h in hits], to)
        record_sync(lib.store(), report, len({h.path for h in hits}))
    for foreign in report.foreign:
        typer.echo(f"mcphotos: left {display_path(foreign)} alone: it is no longer the link mcphotos made", err=True)
    if json_:
        typer.echo(json_line({"album": report.album, "directory": report.directory, "added": report.added,
                              "removed": report.removed, "kept": report.kept, "foreign": report.foreign}))
    else:
        typer.echo(f"synced {report.album} to {display_path(report.directory)}: {report.added} added, "
                   f"{report.removed} removed, {report.kept} kept", err=True)


@album_app.command("list")
@handle_errors
def album_list(
    json_: JsonOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
) -> None:
    """Show the saved albums: name, query and filters, where and when last synced."""
    from mcphotos.search.albums import list_albums

    with make_library(store, model, weights) as lib:
        albums = list_albums(lib.store(create=False))
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
def album_delete(
    name: NameArg,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
) -> None:
    """Forget a saved album (its synced folder is left as it is)."""
    from mcphotos.search.albums import delete_album

    with make_library(store, model, weights) as lib:
        delete_album(lib.store(create=False), name)
    typer.echo(f"deleted album {name}", err=True)


def _when(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).isoformat(sep=" ", timespec="minutes") if ts else "never"
