"""`mcphotos caption`: generate captions with a MobileCLIP2 CoCa, reranked by MobileCLIP2."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from mcphotos.cli.common import JsonOpt, Progress, QuietOpt, app, handle_errors, skip_printer
from mcphotos.cli.options import LibraryArgs, deprecated, library_options, old_option
from mcphotos.cli.render import display_path, json_line
from mcphotos.cli.tagging import XmpName, XmpNameOpt
from mcphotos.errors import UsageError
from mcphotos.models.registry import captioner_choices_help


@app.command()
@handle_errors
@library_options
def caption(
    paths: Annotated[list[str], typer.Argument(help="Photos or directories to caption.", show_default=False)],
    captioner: Annotated[str | None, typer.Option(
        "--captioner", "-c", metavar="NAME",
        help=captioner_choices_help())
                         ] = None,
    captioner_weights: Annotated[str | None, typer.Option(
        "--captioner-weights", metavar="FILE", help="Local CoCa checkpoint instead of the hub download.")] = None,
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
    clip_weights: Annotated[str | None, old_option("--clip-weights", metavar="FILE")] = None,
    *,
    lib_args: LibraryArgs,
) -> None:
    """Write a caption for each photo with Apple's MobileCLIP2 CoCa; with -n N, rerank N candidates.

    --captioner-weights is the CoCa checkpoint; the scores come from the CLIP model (--model, --weights).

    Until the next release, --weights without --captioner-weights still names the CoCa checkpoint, with a warning.
    """
    from mcphotos.indexing.walk import walk
    from mcphotos.models.coca import load_captioner, resolve_captioner
    from mcphotos.models.cocagen import Decoding

    coca_weights, clip = _checkpoints(lib_args.weights, captioner_weights, clip_weights)
    spec = resolve_captioner(captioner, coca_weights)
    decoding = Decoding(method=method, candidates=candidates, top_p=top_p, seed=seed, max_tokens=max_tokens,
                        min_tokens=min(5, max_tokens - 1)).check()
    found = walk(paths, on_skip=skip_printer)
    photos = [e.path for e in found.entries]
    lib = lib_args.open(weights=clip)
    progress = Progress(enabled=not quiet and sys.stderr.isatty())

    def status(message: str) -> None:
        if not quiet:
            typer.echo(f"mcphotos: {message}...", err=True)

    def load() -> Any:
        return load_captioner(spec, lib.device, lib.precision, on_status=status)

    skipped = len(found.skipped)

    def on_skip(path: str, reason: str) -> None:
        nonlocal skipped
        skipped += 1
        skip_printer(path, reason)

    header = False
    xmp_problems = 0
    try:
        for result in lib.caption(photos, spec, decoding, load, refresh=refresh,
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


def _checkpoints(weights: str | None, captioner_weights: str | None, clip_weights: str | None
                 ) -> tuple[str | None, str | None]:
    """(CoCa checkpoint, CLIP checkpoint) from --captioner-weights, --weights and --clip-weights.

    The plan: --captioner-weights names the CoCa, --weights the CLIP model (as in every other
    command). For one release the old spellings keep their old meaning, each with one warning:
    --weights *without* --captioner-weights is still the CoCa, --clip-weights still the CLIP model.
    The next release drops --clip-weights and makes --weights the CLIP model unconditionally.
    """
    if captioner_weights is None and weights is not None:  # the old meaning of --weights
        if clip_weights is not None:
            deprecated("caption --weights COCA --clip-weights CLIP", "--captioner-weights COCA --weights CLIP")
        else:
            deprecated("caption --weights for the captioner", "--captioner-weights",
                       "from the next release --weights names the CLIP model, as in every other command")
        return weights, clip_weights
    if clip_weights is not None:
        if weights is not None:
            raise UsageError("--weights and --clip-weights both name the CLIP checkpoint", "drop --clip-weights")
        if captioner_weights is not None:
            deprecated("caption --clip-weights", "--weights", "with --captioner-weights it names the CLIP model")
        else:
            deprecated("caption --clip-weights", "--weights from the next release",
                       "until then --weights alone still names the captioner")
        return captioner_weights, clip_weights
    return captioner_weights, weights


def _write_xmp(path: str, text: str, force: bool, style: str, quiet: bool) -> list[Any]:
    """dc:description into the sidecar(s), by the merge-safe editor of mcphotos.sidecars.xmp."""
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
