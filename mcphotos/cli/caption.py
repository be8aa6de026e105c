"""`mcphotos caption`: generate captions with a MobileCLIP2 CoCa, reranked by MobileCLIP2."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mcphotos.cli.common import (
    DeviceOpt,
    JsonOpt,
    ModelOpt,
    PrecisionOpt,
    Progress,
    QuietOpt,
    StoreOpt,
    app,
    handle_errors,
    make_library,
    skip_printer,
)
from mcphotos.cli.render import display_path, json_line
from mcphotos.cli.tagging import XmpName, XmpNameOpt


@app.command()
@handle_errors
def caption(
    paths: Annotated[list[str], typer.Argument(help="Photos or directories to caption.", show_default=False)],
    captioner: Annotated[str | None, typer.Option(
        "--captioner", "-c", metavar="NAME",
        help="mscoco38k (default: short photo captions), recap-coco-30k, gbc1m-short, dci-short, dci-complete, "
             "dci-extended, docci, dfn2b; or a CoCa config .json / coca_ViT-L-14 with --weights.")] = None,
    weights: Annotated[str | None, typer.Option(
        "--weights", metavar="FILE", help="Local CoCa checkpoint instead of the hub download.")] = None,
    candidates: Annotated[int, typer.Option(
        "--candidates", "-n", min=1, max=64, help="Generate N captions and rerank them by MobileCLIP2 score.")] = 1,
    method: Annotated[str, typer.Option(
        "--method", metavar="M", help="beam (default), top-p (sampling) or greedy.")] = "beam",
    top_p: Annotated[float, typer.Option("--top-p", metavar="P", help="Nucleus size for --method top-p.")] = 0.9,
    seed: Annotated[int, typer.Option("--seed", help="Random seed for --method top-p.")] = 0,
    max_tokens: Annotated[int, typer.Option("--max-tokens", min=2, max=76, help="Longest caption, in tokens.")] = 30,
    refresh: Annotated[bool, typer.Option("--refresh", help="Generate again even if a caption is stored.")] = False,
    write_xmp: Annotated[bool, typer.Option(
        "--write-xmp", help="Write the best caption to dc:description in the XMP sidecar (merge-safe).")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="With --write-xmp: replace a description a person wrote.")] = False,
    xmp_name: XmpNameOpt = XmpName.darktable,
    json_: JsonOpt = False,
    quiet: QuietOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    clip_weights: Annotated[str | None, typer.Option(
        "--clip-weights", metavar="FILE", help="Local MobileCLIP2 checkpoint for the scores (see --model).")] = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
) -> None:
    """Write a caption for each photo with Apple's MobileCLIP2 CoCa; with -n N, rerank N candidates."""
    from mcphotos.captions.captioning import Decoding, caption_photos
    from mcphotos.indexing.walk import walk
    from mcphotos.models.coca import load_captioner, resolve_captioner

    spec = resolve_captioner(captioner, weights)
    decoding = Decoding(method=method, candidates=candidates, top_p=top_p, seed=seed, max_tokens=max_tokens,
                        min_tokens=min(5, max_tokens - 1)).check()
    found = walk(paths, on_skip=skip_printer)
    photos = [e.path for e in found.entries]
    lib = make_library(store, model, clip_weights, device, precision)
    progress = Progress(enabled=not quiet and sys.stderr.isatty())

    def status(message: str) -> None:
        if not quiet:
            typer.echo(f"mcphotos: {message}...", err=True)

    def load() -> Any:
        return load_captioner(spec, device, precision, on_status=status)

    skipped = len(found.skipped)

    def on_skip(path: str, reason: str) -> None:
        nonlocal skipped
        skipped += 1
        skip_printer(path, reason)

    header = False
    xmp_problems = 0
    try:
        for result in caption_photos(lib, photos, spec, decoding, load, refresh=refresh,
                                     on_progress=progress.update, on_skip=on_skip):
            changes = _write_xmp(result.path, result.best.text, force, xmp_name.value, quiet) if write_xmp else []
            xmp_problems += sum(1 for ch in changes if ch.error)
            if json_:
                best = result.best
                sys.stdout.write(json_line({
                    "path": result.path, "hash": result.hash, "caption": best.text,
                    "cosine": round(best.cosine, 6), "clipscore": round(best.clipscore, 6),
                    "captioner": result.captioner, "cached": result.cached,
                    "candidates": [{"rank": c.rank, "caption": c.text, "cosine": round(c.cosine, 6),
                                    "clipscore": round(c.clipscore, 6),
                                    "logprob": None if c.logprob is None else round(c.logprob, 4)}
                                   for c in result.candidates],
                    **({"xmp": [{"sidecar": ch.sidecar, "written": ch.written, "kept": ch.description_kept,
                                 "error": ch.error} for ch in changes]} if write_xmp else {}),
                }) + "\n")
            elif candidates == 1:
                if not header:
                    sys.stdout.write(f"{'cosine':>7}  {'clipscore':>9}  path  caption\n")
                    header = True
                best = result.best
                sys.stdout.write(f"{best.cosine:7.4f}  {best.clipscore:9.4f}  {display_path(result.path)}  "
                                 f"{best.text}\n")
            else:
                sys.stdout.write(f"{display_path(result.path)}\n")
                for c in result.candidates:
                    sys.stdout.write(f"  {c.rank:>2}  {c.cosine:7.4f}  {c.clipscore:6.4f}  {c.text}\n")
            sys.stdout.flush()
    finally:
        progress.close()
        lib.close()
    if not photos and not quiet:
        typer.echo("no photos to caption", err=True)
    if skipped or xmp_problems:
        raise typer.Exit(1)


def _write_xmp(path: str, text: str, force: bool, style: str, quiet: bool) -> list[Any]:
    """dc:description into the sidecar(s), by the merge-safe editor of mcphotos.xmp."""
    from mcphotos.sidecars.xmp import update_sidecar

    changes = update_sidecar(path, description=text, force=force, style=style)
    for ch in changes:
        if ch.error:
            typer.echo(f"xmp: {ch.error}", err=True)
        elif ch.description_kept:
            typer.echo(f"xmp: kept the description a person wrote in {display_path(ch.sidecar)} "
                       "(--force replaces it)", err=True)
        elif ch.written and not quiet:
            typer.echo(f"xmp: {'created' if ch.created else 'updated'} {display_path(ch.sidecar)}", err=True)
    return changes
