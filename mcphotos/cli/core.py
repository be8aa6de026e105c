"""Core commands: index, find, status."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcphotos.cli.common import (
    JsonOpt,
    Progress,
    QuietOpt,
    SheetOpt,
    app,
    handle_errors,
    skip_printer,
)
from mcphotos.cli.options import (
    OcrModelsOpt,
    deprecated,
    find_options,
    library_options,
    ocr_settings,
    old_option,
    output_options,
)
from mcphotos.cli.render import Format, display_path, json_line
from mcphotos.cli.search import show_hits, write_sheet
from mcphotos.errors import UsageError
from mcphotos.units import human_bytes

if TYPE_CHECKING:
    from mcphotos.distributed.pipeline import RayOptions
    from mcphotos.library import Library
    from mcphotos.search.query import FindSpec

RAY_PANEL = "Beyond one machine"


@app.command()
@handle_errors
@library_options
def index(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Directories or files to index; '-' reads newline-separated paths from stdin.", show_default=False)
                     ] = None,
    files0_from: Annotated[str | None, typer.Option(
        "--files0-from", metavar="FILE",
        help="Also index the NUL-separated paths listed in FILE ('-': stdin), as `find -print0` writes them.")
                           ] = None,
    null_input: Annotated[bool, old_option("-0", "--null")] = False,
    hidden_: Annotated[bool, typer.Option("--hidden", help="Also walk hidden directories and files.")] = False,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", metavar="GLOB",
                                                       help="Skip names or paths matching GLOB (repeatable).")] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 if any file failed.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Retry files that failed before.")] = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per model call.")] = 16,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Decode processes (default: cores).")] = None,
    prune_offline: Annotated[bool, typer.Option(
        "--prune-offline", help="Forget the files of offline roots (missing, empty, or on another device than "
                                "when indexed) instead of keeping them.")] = False,
    frames: Annotated[str, typer.Option(
        "--frames", metavar="PCTS", help="Where videos are sampled, in percent of their duration.")] = "10,50,90",
    raw_pairs: Annotated[str, typer.Option(
        "--raw-pairs", metavar="jpeg|both",
        help="A RAW beside its same-stem JPEG/HEIC: 'jpeg' indexes the JPEG only (the RAW is its companion), "
             "'both' indexes both.")] = "jpeg",
    ocr: Annotated[bool, typer.Option("--ocr", help="Then read the text inside the photos (like `mcphotos ocr`).")
                   ] = False,
    ocr_models: OcrModelsOpt = None,
    ray: Annotated[bool, typer.Option(
        "--ray", rich_help_panel=RAY_PANEL,
        help="Embed the new photos on a Ray cluster (pip install mcphotos[ray]); walking, hashing and the store "
             "stay here. Without --ray-address: a local Ray runtime sized to this machine.")] = False,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", metavar="ADDRESS", rich_help_panel=RAY_PANEL,
        help="auto (the cluster this machine belongs to) or ray://HOST:PORT; implies --ray.")] = None,
    ray_ship_bytes: Annotated[bool, typer.Option(
        "--ray-ship-bytes", rich_help_panel=RAY_PANEL,
        help="Send each file's bytes to the cluster, for workers that cannot see these paths; implies --ray.")
                              ] = False,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    *,
    lib: Library,
) -> None:
    """Index photos and videos: walk, hash, embed new content, and prune files that are gone."""
    from mcphotos.enums import parse_choice
    from mcphotos.indexing.companions import RawPairs
    from mcphotos.indexing.indexer import IndexOptions

    paths = list(paths or ())
    if null_input:
        deprecated("index -0/--null", "--files0-from -", "-0 means NUL-separated output everywhere else")
    if not paths and files0_from is None:
        raise UsageError("nothing to index", "give directories or files, '-' for paths on stdin, "
                                             "or --files0-from FILE")
    if "-" in paths and files0_from == "-":
        raise UsageError("stdin holds one list: give '-' or --files0-from -, not both")
    from mcphotos.indexing.video import parse_fractions

    try:
        fractions = parse_fractions(frames)
    except ValueError as e:
        raise UsageError(f"--frames {frames}: {e}") from None
    roots = [p for p in paths if p != "-"]
    if ocr:
        ocr_settings(ocr_models)  # a bad --ocr-models fails before indexing, not after
    listed = _path_list(paths, files0_from, null_input)
    progress = Progress(enabled=not quiet and sys.stderr.isatty())
    options = IndexOptions(hidden=hidden_, exclude=tuple(exclude or ()), retry_failed=retry_failed,
                           batch_size=batch_size, workers=workers, prune_offline=prune_offline,
                           frames=fractions,
                           raw_pairs=parse_choice(RawPairs, raw_pairs, "--raw-pairs value"))
    try:
        report = lib.index(roots, listed, options, on_progress=progress.update, on_skip=skip_printer,
                           on_status=None if quiet else lambda msg: typer.echo(f"mcphotos: {msg}", err=True),
                           ray=_ray_options(ray, ray_address, ray_ship_bytes, batch_size))
    finally:
        progress.close()
    if json_:
        data = asdict(report)
        data["skipped"] = [{"path": p, "reason": r} for p, r in report.skipped]
        typer.echo(json_line(data))
    for off in report.offline:
        typer.echo(f"offline: {display_path(off.path)} ({off.files} indexed files kept; "
                   "--prune-offline forgets them)", err=True)
    if not quiet:
        typer.echo(
            f"indexed {report.seen} files: {report.new} new, {report.reused} reused, {report.unchanged} unchanged, "
            f"{report.failed} failed, {report.removed} removed"
            + (f", {report.companions} companions kept with their photos" if report.companions else "")
            + f" in {report.elapsed:.1f}s",
            err=True,
        )
        for extra, what in (("raw", "RAW files"), ("video", "videos")):
            if report.needs_extra.get(extra):
                typer.echo(f"hint: {report.needs_extra[extra]} {what} were skipped: "
                           f"pip install 'mcphotos[{extra}]' to index them", err=True)
    if ocr:
        from mcphotos.cli.ocr import run_ocr_pass
        from mcphotos.ocr.runner import OcrOptions

        run_ocr_pass(lib, roots + (listed or []), OcrOptions(workers=workers), ocr_settings(ocr_models), json_,
                     quiet)
    if report.offline or (strict and report.failed):
        raise typer.Exit(1)  # an offline root is a failure, so a scheduled run notices


def _ray_options(ray: bool, address: str | None, ship_bytes: bool, batch_size: int) -> RayOptions | None:
    if not (ray or address or ship_bytes):
        return None
    from mcphotos.distributed.pipeline import RayOptions

    # Actors embed bigger batches than the local loop, whose small ones keep decoding overlapped.
    return RayOptions(address=address, ship_bytes=ship_bytes, batch_size=max(batch_size, 64))


def _path_list(paths: list[str], files0_from: str | None, nul_stdin: bool) -> list[str] | None:
    """The paths listed on stdin ('-') and in --files0-from FILE; None when neither is given."""
    from mcphotos.indexing.walk import read_path_list

    if "-" not in paths and files0_from is None:
        return None
    listed = list(read_path_list(sys.stdin.buffer, nul=nul_stdin)) if "-" in paths else []
    if files0_from == "-":
        listed += read_path_list(sys.stdin.buffer, nul=True)
    elif files0_from is not None:
        try:
            with open(os.path.expanduser(files0_from), "rb") as f:
                listed += read_path_list(f, nul=True)
        except OSError as e:
            raise UsageError(f"cannot read {files0_from}: {e.strerror or e}") from None
    return listed


@app.command()
@handle_errors
@find_options(top=20)
@output_options
@library_options
def find(
    *,
    spec: FindSpec,
    sheet: SheetOpt = None,
    columns: Annotated[int, typer.Option("--columns", min=1, help="Thumbnails per row of the sheet.")] = 5,
    preview: Annotated[bool, typer.Option("--preview", help="Thumbnails inline (kitty/iTerm2 terminals).")] = False,
    fmt: Format,
    lib: Library,
) -> None:
    """Find photos by description, by example (--image), or both combined, best first."""
    hits = lib.run_find(spec)
    if sheet:
        write_sheet(hits, sheet, columns)
    show_hits(hits, fmt, preview)


def engine_line(st: Any) -> str:
    """``auto; runtime prepared (290.6 MB, onnx 43 img/s, torch bf16 64 img/s)`` or why there is none."""
    if st.runtime is None:
        return f"{st.engine}; onnx runtime {st.runtime_problem}"
    s = st.runtime["speed"]
    return (f"{st.engine}; onnx runtime prepared ({st.runtime['size_mb']} MB; model-only onnx "
            f"{s['onnx_images_per_s']} img/s, torch {s['torch_precision']} {s['torch_images_per_s']} img/s)")


def server_line(server: dict | None) -> str:
    """``running (pid 123, http://127.0.0.1:8765/); the CLI encodes through it`` or ``none running``."""
    if server is None:
        return "none running (`mcphotos serve` keeps the model warm for the CLI)"
    where = ", ".join(str(x) for x in (f"pid {server['pid']}", server.get("url")) if x)
    use = "the CLI encodes through it" if server.get("same_identity") else \
        f"another model identity ({server.get('model')}): not used by this CLI"
    return f"running ({where}); {use}"


@app.command()
@handle_errors
@library_options
def status(json_: JsonOpt = False, *, lib: Library) -> None:
    """Show where the store is, which model it serves, and what it holds."""
    st = lib.status()
    data: dict[str, Any] = {
        "home": st.home, "store": st.store_dir, "model": st.model, "source": st.source,
        "device": st.device, "precision": st.precision, "exists": st.exists, "ann": st.ann,
        "engine": st.engine, "runtime": st.runtime, "runtime_problem": st.runtime_problem,
        "engines_used": st.engines_used, "server": st.server,
    }
    if st.stats:
        data.update(asdict(st.stats))
        data["roots"] = [asdict(r) for r in st.roots]
    if json_:
        typer.echo(json_line(data))
        return
    rows = [("store", st.store_dir), ("model", f"{st.model} ({st.source})"),
            ("device", f"{st.device} ({st.precision})"), ("engine", engine_line(st))]
    for job, used in sorted((st.engines_used or {}).items()):
        when = datetime.fromtimestamp(used["at"]).isoformat(timespec="seconds")
        rows.append((f"last {job}", f"{used['engine']} at {when}"))
    if st.stats is None:
        rows.append(("state", "empty: run `mcphotos index DIR`"))
    else:
        s = st.stats
        last = datetime.fromtimestamp(s.last_indexed).isoformat(timespec="seconds") if s.last_indexed else "never"
        rows += [("files", f"{s.files} ({s.ok_files} indexed, {s.failed_files} failed)"),
                 ("images", f"{s.images} unique ({s.orphan_images} no longer on disk, kept as cache)"),
                 ("texts cached", str(s.cached_texts)), ("size", human_bytes(s.db_bytes)),
                 ("search index", st.ann), ("last indexed", last)]
    if st.exists:
        rows.append(("server", server_line(st.server)))
    for r in st.roots:
        why = f" ({r.reason})" if r.state == "offline" and r.reason else ""
        kind = "" if r.kind == "root" else " (mount point)"
        rows.append(("root", f"{r.state:<7}  {r.files:>6} files  {display_path(r.path)}{kind}{why}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        typer.echo(f"{k.ljust(width)}  {v}")
