"""`mcphotos score`: how well does a caption fit a photo (single, ranking, batch, existing alt text)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Annotated, Any

import typer

from mcphotos.cli.common import JsonOpt, app, fail, handle_errors
from mcphotos.cli.options import LibraryArgs, library_options
from mcphotos.cli.render import display_path, json_line, write_records
from mcphotos.errors import UsageError

PAIR_COLUMNS = [("cosine", "cosine"), ("clipscore", "clipscore"), ("path", "path"), ("caption", "caption")]
RANK_COLUMNS = [("rank", "rank"), ("probability", "prob"), ("cosine", "cosine"), ("clipscore", "clipscore"),
                ("caption", "caption")]


@app.command()
@handle_errors
@library_options
def score(
    args: Annotated[list[str] | None, typer.Argument(
        metavar="PHOTO CAPTION...",
        help="A photo and one caption (its score) or several (ranked). With --from-metadata: photos or "
             "directories.", show_default=False)] = None,
    pairs: Annotated[str | None, typer.Option(
        "--pairs", metavar="FILE", help="Score (photo, caption) pairs from a TSV (PATH<TAB>CAPTION) or JSONL "
                                        "({\"path\", \"caption\"}) file; '-' reads stdin.")] = None,
    from_metadata: Annotated[bool, typer.Option(
        "--from-metadata", help="Score the caption each photo already carries (XMP dc:description, IPTC "
                                "caption, EXIF ImageDescription).")] = False,
    min_score: Annotated[float | None, typer.Option(
        "--min", metavar="X", help="Exit 1 if any pair scores below X; the failing pairs go to stderr.")] = None,
    metric: Annotated[str, typer.Option(
        "--metric", metavar="M", help="What --min compares: cosine or clipscore (2.5*max(cos,0)).")] = "cosine",
    json_: JsonOpt = False,
    *,
    lib_args: LibraryArgs,
) -> None:
    """Score how well captions fit photos: cosine and CLIPScore, rankings, batches, existing alt text."""
    from mcphotos.captions.scoring import PairError, below, check_metric

    check_metric(metric)
    args = list(args or [])
    if sum((pairs is not None, from_metadata)) > 1:
        raise UsageError("choose one of --pairs and --from-metadata")
    if pairs is not None and args:
        raise UsageError("--pairs reads the pairs from FILE: give no PHOTO or CAPTION arguments")
    if pairs is None and not from_metadata and len(args) < 2:
        raise UsageError("give a PHOTO and at least one CAPTION (or --pairs FILE, or --from-metadata PATH...)")
    if from_metadata and not args:
        raise UsageError("--from-metadata needs photos or directories")

    lib = lib_args.open()
    scorer = lib.scorer()
    failed: list[tuple[str, str, float]] = []
    problems = 0
    try:
        if pairs is None and not from_metadata and len(args) > 2:
            ranked = scorer.rank(args[0], args[1:])
            write_records([r.record(args[0]) for r in ranked], _format(json_), RANK_COLUMNS)
            failed = [(args[0], r.caption, _value(r, metric)) for r in ranked
                      if min_score is not None and below(r, min_score, metric)]
        else:
            source = _pair_source(args, pairs, from_metadata)
            records: list[dict[str, Any]] = []
            for result in scorer.score_pairs(source):
                if isinstance(result, PairError):
                    problems += 1
                    typer.echo(f"skipping {display_path(result.path)}: {result.reason}", err=True)
                    continue
                rec = result.record()
                if json_:
                    sys.stdout.write(json_line(rec) + "\n")
                    sys.stdout.flush()
                else:
                    records.append(rec)
                if min_score is not None and below(result, min_score, metric):
                    failed.append((result.path, result.caption, _value(result, metric)))
            if not json_:
                write_records(records, _format(False), PAIR_COLUMNS)
            if from_metadata and source.missing:  # type: ignore[attr-defined]
                typer.echo(f"{source.missing} photos carry no caption", err=True)  # type: ignore[attr-defined]
    finally:
        lib.close()
    for path, caption, value in failed:
        typer.echo(f"below {min_score:g} ({metric} {value:.4f}): {display_path(path)}\t{caption}", err=True)
    if failed:
        raise fail(f"{len(failed)} pair(s) scored below {min_score:g}", 1)
    if problems:
        raise typer.Exit(1)


def _format(json_: bool) -> Any:
    from mcphotos.cli.render import choose_format

    return choose_format(json_)


def _value(result: Any, metric: str) -> float:
    return float(result.cosine if metric == "cosine" else result.clipscore)


class _MetadataPairs:
    """(path, caption, source) for every photo under ``roots`` that carries a caption."""

    def __init__(self, roots: list[str]) -> None:
        self.roots = roots
        self.missing = 0

    def __iter__(self) -> Iterator[tuple[str, str, str]]:
        from mcphotos.indexing.walk import walk
        from mcphotos.sidecars.metadata import read_caption

        result = walk(self.roots, on_skip=lambda p, r: typer.echo(f"skipping {display_path(p)}: {r}", err=True))
        for entry in result.entries:
            found = read_caption(entry.path)
            if found is None:
                self.missing += 1
                continue
            yield entry.path, found.text, found.source


def _pair_source(args: list[str], pairs: str | None, from_metadata: bool) -> Any:
    from mcphotos.captions.scoring import read_pairs

    if from_metadata:
        return _MetadataPairs(args)
    if pairs is None:
        return [(args[0], args[1])]
    if pairs == "-":
        return read_pairs(sys.stdin, "<stdin>")
    return _file_pairs(pairs)


def _file_pairs(name: str) -> Iterator[tuple[str, str]]:
    from mcphotos.captions.scoring import read_pairs

    try:
        f = open(name, encoding="utf-8")  # noqa: SIM115 - closed when the generator ends
    except OSError as e:
        raise UsageError(f"cannot read {name}: {e.strerror or e}") from None
    with f:
        yield from read_pairs(f, name)
