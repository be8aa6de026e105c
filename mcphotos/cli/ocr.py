"""Text inside photos: `ocr` (read and store the text of indexed photos) and `text` (print it)."""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated

import typer

from mcphotos.cli.common import JsonOpt, PhotoArgs, Progress, QuietOpt, app, handle_errors, skip_printer
from mcphotos.cli.options import OcrModelsOpt, library_options, ocr_settings
from mcphotos.cli.render import display_path, json_line
from mcphotos.errors import UsageError

if TYPE_CHECKING:
    from mcphotos.library import Library
    from mcphotos.ocr.engine import OcrSettings
    from mcphotos.ocr.runner import OcrOptions, OcrReport

RetryOpt = Annotated[bool, typer.Option("--retry-failed", help="Read again the photos whose reading failed before.")]


@app.command()
@handle_errors
@library_options(runs_model=False)
def ocr(
    paths: PhotoArgs = None,
    ocr_models: OcrModelsOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Read every photo again, replacing its stored text.")
                     ] = False,
    retry_failed: RetryOpt = False,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Photos per commit.")] = 8,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Decode processes (default: cores).")
                       ] = None,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    *,
    lib: Library,
) -> None:
    """Read the text inside indexed photos (RapidOCR) and store it, so `find --contains` finds it."""
    from mcphotos.ocr.runner import OcrOptions

    settings = ocr_settings(ocr_models)
    options = OcrOptions(retry_failed=retry_failed, force=force, batch_size=batch_size, workers=workers)
    run_ocr_pass(lib, list(paths or ()), options, settings, json_, quiet)


def run_ocr_pass(lib: Library, paths: list[str], options: OcrOptions, settings: OcrSettings, json_: bool,
                 quiet: bool) -> OcrReport:
    """The OCR pass with its progress bar and summary (shared by `ocr` and `index --ocr`)."""
    progress = Progress(enabled=not quiet and sys.stderr.isatty())
    try:
        report = lib.ocr(paths, options, settings, on_progress=progress.update, on_skip=skip_printer)
    finally:
        progress.close()
    if json_:
        data = asdict(report)
        data["skipped"] = [{"path": p, "reason": r} for p, r in report.skipped]
        typer.echo(json_line(data))
    if not quiet:
        typer.echo(f"read text in {report.read} photos: {report.with_text} with text, {report.without_text} "
                   f"without, {report.failed} failed, {report.already} read before in {report.elapsed:.1f}s",
                   err=True)
    return report


@app.command()
@handle_errors
@library_options(runs_model=False)
def text(
    photos: Annotated[list[str], typer.Argument(help="Photos to read (indexed or not).", show_default=False)],
    ocr_models: OcrModelsOpt = None,
    json_: Annotated[bool, typer.Option("--json", help="One JSON object per photo: its lines with boxes and "
                                                       "confidences.")] = False,
    *,
    lib: Library,
) -> None:
    """Print the text inside photos, in reading order: stored when already read, else recognized now.

    With several photos each line starts with the photo's path and a colon, as grep does.
    """
    if not photos:
        raise UsageError("no photos given", "e.g. mcphotos text IMG_1.jpg")
    settings = ocr_settings(ocr_models)
    found = lib.photo_texts(photos, settings, on_skip=skip_printer)
    several = len(photos) > 1
    out = sys.stdout
    for item in found:
        if json_:
            out.write(json_line({"path": item.path, "hash": item.hash, "source": item.source,
                                 "engine": item.result.engine, "version": item.result.version,
                                 "models": item.result.models, "text": item.result.text,
                                 "lines": [line.to_dict() for line in item.result.lines]}) + "\n")
            continue
        for row in item.result.text.splitlines():
            out.write(f"{display_path(item.path)}: {row}\n" if several else row + "\n")
    out.flush()
    if len(found) < len(dict.fromkeys(photos)):
        raise typer.Exit(1)
