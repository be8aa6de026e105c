"""Core commands: index, find, status."""

from __future__ import annotations

import sys
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import typer

from mcphotos.cli.common import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    NullOpt,
    PathsOpt,
    PrecisionOpt,
    Progress,
    QuietOpt,
    StoreOpt,
    WeightsOpt,
    app,
    handle_errors,
    make_library,
    skip_printer,
)
from mcphotos.cli.render import choose_format, json_line
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
    TopOpt,
    build_spec,
    show_hits,
    write_sheet,
)
from mcphotos.units import human_bytes


@app.command()
@handle_errors
def index(
    paths: Annotated[list[str], typer.Argument(help="Directories or files to index; '-' reads paths from stdin.",
                                                show_default=False)],
    null_input: Annotated[bool, typer.Option("-0", "--null", help="With '-': stdin paths are NUL-separated.")] = False,
    hidden: Annotated[bool, typer.Option("--hidden", help="Also walk hidden directories and files.")] = False,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", metavar="GLOB",
                                                       help="Skip names or paths matching GLOB (repeatable).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any file failed.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Retry files that failed before.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per model call.")] = 16,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Decode processes (default: cores).")] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
) -> None:
    """Index photos: walk, hash, embed new content, and prune files that are gone."""
    from mcphotos.indexing.indexer import IndexOptions
    from mcphotos.indexing.walk import read_path_list

    roots = [p for p in paths if p != "-"]
    stdin_paths = list(read_path_list(sys.stdin.buffer, nul=null_input)) if "-" in paths else None
    lib = make_library(store, model, weights, device, precision)
    progress = Progress(enabled=not quiet and sys.stderr.isatty())
    options = IndexOptions(hidden=hidden, exclude=tuple(exclude or ()), retry_failed=retry_failed,
                           batch_size=batch_size, workers=workers)
    try:
        report = lib.index(roots, stdin_paths, options, on_progress=progress.update, on_skip=skip_printer)
    finally:
        progress.close()
        lib.close()
    if json_:
        data = asdict(report)
        data["skipped"] = [{"path": p, "reason": r} for p, r in report.skipped]
        typer.echo(json_line(data))
    if not quiet:
        typer.echo(
            f"indexed {report.seen} files: {report.new} new, {report.reused} reused, {report.unchanged} unchanged, "
            f"{report.failed} failed, {report.removed} removed in {report.elapsed:.1f}s",
            err=True,
        )
    if strict and report.failed:
        raise typer.Exit(1)


@app.command()
@handle_errors
def find(
    query: Annotated[str | None, typer.Argument(
        help="What to look for: words, or terms like 'beach + sunset - people + 2*@photo.jpg'.",
        show_default=False)] = None,
    image: ImageOpt = None,
    top: TopOpt = 20,
    in_dir: InOpt = None,
    ext: ExtOpt = None,
    after: AfterOpt = None,
    before: BeforeOpt = None,
    tag: TagOpt = None,
    min_score: MinScoreOpt = None,
    relative: RelativeOpt = None,
    auto_cut: AutoCutOpt = False,
    sheet: Annotated[str | None, typer.Option("--sheet", metavar="FILE",
                                              help="Also render the results as a contact sheet (.jpg/.png/.webp).")
                     ] = None,
    columns: Annotated[int, typer.Option("--columns", min=1, help="Thumbnails per row of the sheet.")] = 5,
    preview: Annotated[bool, typer.Option("--preview", help="Thumbnails inline (kitty/iTerm2 terminals).")] = False,
    json_: JsonOpt = False,
    paths: PathsOpt = False,
    null: NullOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
) -> None:
    """Find photos by description, by example (--image), or both combined, best first."""
    fmt = choose_format(json_, paths, null)
    spec = build_spec(query, image, top, in_dir, ext, after, before, tag, min_score, relative, auto_cut)
    with make_library(store, model, weights, device, precision) as lib:
        hits = lib.run_find(spec)
    if sheet:
        write_sheet(hits, sheet, columns)
    show_hits(hits, fmt, preview)


@app.command()
@handle_errors
def status(
    json_: JsonOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Show where the store is, which model it serves, and what it holds."""
    with make_library(store, model, weights, device) as lib:
        st = lib.status()
    data: dict[str, Any] = {
        "home": st.home, "store": st.store_dir, "model": st.model, "source": st.source,
        "device": st.device, "precision": st.precision, "exists": st.exists, "ann": st.ann,
    }
    if st.stats:
        data.update(asdict(st.stats))
    if json_:
        typer.echo(json_line(data))
        return
    rows = [("store", st.store_dir), ("model", f"{st.model} ({st.source})"),
            ("device", f"{st.device} ({st.precision})")]
    if st.stats is None:
        rows.append(("state", "empty: run `mcphotos index DIR`"))
    else:
        s = st.stats
        last = datetime.fromtimestamp(s.last_indexed).isoformat(timespec="seconds") if s.last_indexed else "never"
        rows += [("files", f"{s.files} ({s.ok_files} indexed, {s.failed_files} failed)"),
                 ("images", f"{s.images} unique ({s.orphan_images} no longer on disk, kept as cache)"),
                 ("texts cached", str(s.cached_texts)), ("size", human_bytes(s.db_bytes)),
                 ("search index", st.ann), ("last indexed", last)]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"{k.ljust(width)}  {v}")
