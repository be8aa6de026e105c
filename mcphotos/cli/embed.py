"""Feature extraction for other tools: `embed` (photos or texts) and `export` (the whole store)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mcphotos.cli.common import JsonOpt, app, handle_errors
from mcphotos.cli.options import library_options
from mcphotos.cli.render import display_path, json_line
from mcphotos.errors import UsageError

if TYPE_CHECKING:
    from mcphotos.library import Library


@app.command()
@handle_errors
@library_options
def embed(
    paths: Annotated[list[str] | None, typer.Argument(help="Photos to embed.", show_default=False)] = None,
    text: Annotated[list[str] | None, typer.Option("--text", "-t", metavar="TEXT",
                                                    help="Embed TEXT instead of photos (repeatable).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", metavar="FILE.npy",
                                            help="Write an N×dim float32 .npy plus FILE.paths.txt (one line per row).")
                   ] = None,
    json_: JsonOpt = False,
    *,
    lib: Library,
) -> None:
    """Print or write unit embeddings of photos (from the store when cached) or of texts (--text)."""
    from mcphotos.export import write_npy

    if bool(paths) == bool(text):
        raise UsageError("give photos to embed, or --text, not both" if paths else "nothing to embed",
                         "mcphotos embed PHOTO... or mcphotos embed --text 'a dog'")
    if out and json_:
        raise UsageError("choose one of --out and --json")
    if text:
        vectors = lib.text_embeddings(list(text))
        rows = [{"text": t, "vector": v} for t, v in zip(text, vectors, strict=True)]
        names = list(text)
    else:
        found = lib.image_embeddings(list(paths or ()))
        rows = [{"path": e.path, "hash": e.hash, "vector": e.vector, "cached": e.cached} for e in found]
        names = [e.path for e in found]
    if out:
        import numpy as np

        side = write_npy(Path(out), np.stack([r["vector"] for r in rows]), names)
        typer.echo(f"wrote {len(rows)} vectors to {display_path(out)} and {'texts' if text else 'paths'} to "
                   f"{display_path(str(side))}", err=True)
        return
    for r in rows:
        r["vector"] = [round(float(x), 7) for x in r["vector"]]
        typer.echo(json_line(r))  # JSON lines are the only printed form: --json just says so


@app.command()
@handle_errors
@library_options(runs_model=False)
def export(
    directory: Annotated[str, typer.Argument(metavar="DIR", help="Where to write the export.", show_default=False)],
    json_: JsonOpt = False,
    *,
    lib: Library,
) -> None:
    """Write the whole store: vectors as .npy and metadata as .jsonl (clip-retrieval layout)."""
    report = lib.export(directory)
    if json_:
        typer.echo(json_line({"directory": report.directory, "rows": report.rows, "dim": report.dim,
                              "parquet": report.parquet}))
    typer.echo(f"exported {report.rows} photos ({report.dim}-d) to {display_path(report.directory)}", err=True)
