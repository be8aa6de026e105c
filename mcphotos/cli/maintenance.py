"""Store maintenance: check (and repair)."""

from __future__ import annotations

from typing import Annotated

import typer

from mcphotos.cli.common import JsonOpt, ModelOpt, StoreOpt, WeightsOpt, app, handle_errors, make_library
from mcphotos.cli.render import json_line


@app.command()
@handle_errors
def check(
    repair: Annotated[bool, typer.Option("--repair", help="Rebuild the search index and drop broken vectors "
                                                          "(their photos are re-embedded by the next index).")] = False,
    json_: JsonOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
) -> None:
    """Verify the store: SQLite integrity, vectors, and the search index. Exit 1 if damaged."""
    from mcphotos.store.check import check_store
    from mcphotos.store.check import repair as do_repair

    with make_library(store, model, weights) as lib:
        st = lib.store(create=False)
        if repair:
            lock = st.writer_lock()
            lock.acquire()
            try:
                report = do_repair(st)
            finally:
                lock.release()
        else:
            report = check_store(st)
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
