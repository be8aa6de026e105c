"""Tagging commands: tag, tags, untag, and labels (the shipped label sets)."""

from __future__ import annotations

import enum
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcphotos.cli.common import JsonOpt, PhotoArgs, QuietOpt, app, handle_errors
from mcphotos.cli.options import deprecated, library_options, old_option, output_options
from mcphotos.cli.render import Format, display_path, json_line, write_paths, write_records

if TYPE_CHECKING:
    from mcphotos.library import Library


class XmpName(str, enum.Enum):
    darktable = "darktable"
    adobe = "adobe"


XmpNameOpt = Annotated[XmpName, typer.Option("--xmp-name", help="Name of a new sidecar: darktable (photo.jpg.xmp) "
                                                                "or adobe (photo.xmp). Existing ones are always used.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; store and write nothing.")]
LabelsFilterOpt = Annotated[str | None, typer.Option("--labels", "-l", metavar="SET",
                                                     help="Only the tags of this label set (default: all sets).")]


@app.command()
@handle_errors
@output_options
@library_options
def tag(
    labels: Annotated[str, typer.Option("--labels", "-l", metavar="SET",
                                        help="A label file, or the name of a shipped set (see `mcphotos labels`).",
                                        show_default=False)],
    paths: PhotoArgs = None,
    single: Annotated[bool, typer.Option("--single", help="Single-label: only the most probable label of the set "
                                                          "(softmax over the set).")] = False,
    threshold: Annotated[float, typer.Option("--threshold", min=0.0, max=1.0,
                                             help="Multi-label: keep labels with probability >= this.")] = 0.5,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Multi-label: at most this many tags per photo.")] = 5,
    min_prob: Annotated[float, typer.Option("--min-prob", min=0.0, max=1.0,
                                            help="Single-label: keep the top label if its probability >= this.")
                        ] = 0.5,
    write_xmp: Annotated[bool, typer.Option("--write-xmp", help="Also write the tags to XMP sidecars "
                                                                "(image files are never touched).")] = False,
    xmp_name: XmpNameOpt = XmpName.darktable,
    dry_run: DryRunOpt = False,
    *,
    fmt: Format,
    quiet: QuietOpt = False,
    lib: Library,
) -> None:
    """Tag indexed photos zero-shot with a label set; tags are stored (and optionally written to XMP)."""
    from mcphotos.tagging.labels import resolve_labels
    from mcphotos.tagging.tagger import TagOptions

    label_set = resolve_labels(labels)
    options = TagOptions(mode="single" if single else "multi", threshold=threshold, top_k=top_k, min_prob=min_prob)
    report = lib.tag(label_set, paths, options, dry_run=dry_run,
                     on_status=None if quiet else lambda msg: typer.echo(msg, err=True))
    changes = lib.write_sidecars(report, xmp_name.value, dry_run) if write_xmp else []
    by_photo: dict[str, list[Any]] = {}
    for ch in changes:
        by_photo.setdefault(ch.image, []).append(ch)
    if fmt is Format.json:
        for p in report.photos:
            rec: dict[str, Any] = {"path": p.path, "hash": p.hash, "set": report.label_set,
                                   "tags": [{"label": t.label, "score": t.score} for t in p.tags]}
            if write_xmp:
                rec["xmp"] = [_change_record(ch) for ch in by_photo.get(p.path, [])]
            sys.stdout.write(json_line(rec) + "\n")
        sys.stdout.flush()
    elif fmt in (Format.paths, Format.null):
        write_paths([p.path for p in report.photos if p.tags], fmt)
    else:
        rows = [{"score": t.score, "label": t.label, "path": p.path} for p in report.photos for t in p.tags]
        write_records(rows, fmt, [("score", "score"), ("label", "label"), ("path", "path")])
    if fmt is not Format.json:
        _report_changes(changes, dry_run, quiet)
    if not quiet:
        how = (f"single-label, min-prob {options.min_prob}" if single
               else f"multi-label, threshold {options.threshold}, top-k {options.top_k}")
        typer.echo(f"{'dry run: ' if dry_run else ''}tagged {len(report.photos)} photos ({report.images} distinct) "
                   f"with {report.label_set} ({how}): {report.tagged_images} got a tag; "
                   f"{report.prompts} prompts, {report.encoded_prompts} newly encoded; {report.elapsed:.2f}s"
                   + ("; nothing stored" if dry_run else ""), err=True)
        if not report.images:
            typer.echo("no indexed photos to tag: run `mcphotos index DIR` first", err=True)


@app.command("tags")
@handle_errors
@output_options
@library_options(runs_model=False)
def tags_cmd(
    paths: Annotated[list[str], typer.Argument(help="Photos, or directories of photos, to show the tags of.",
                                                show_default=False)],
    labels: LabelsFilterOpt = None,
    *,
    fmt: Format,
    lib: Library,
) -> None:
    """Show the stored tags of photos (exit 1 if a path is not indexed)."""
    from mcphotos.tagging.labels import set_name

    photos, missing = lib.photo_tags(paths, set_name(labels) if labels else None)
    if fmt is Format.json:
        for p in photos:
            sys.stdout.write(json_line({"path": p.path, "hash": p.hash, "tags": [
                {"set": t.label_set, "label": t.label, "score": t.score} for t in p.tags]}) + "\n")
        sys.stdout.flush()
    elif fmt in (Format.paths, Format.null):
        write_paths([p.path for p in photos if p.tags], fmt)
    else:
        rows = [{"score": t.score, "set": t.label_set, "label": t.label, "path": p.path}
                for p in photos for t in p.tags]
        write_records(rows, fmt, [("score", "score"), ("set", "set"), ("label", "label"), ("path", "path")])
        untagged = sum(1 for p in photos if not p.tags)
        if untagged:
            typer.echo(f"{untagged} of {len(photos)} photos have no tags", err=True)
    for m in missing:
        typer.echo(f"not indexed: {display_path(m)}", err=True)
    if missing:
        raise typer.Exit(1)


@app.command()
@handle_errors
@library_options(runs_model=False)
def untag(
    paths: PhotoArgs = None,
    labels: LabelsFilterOpt = None,
    write_xmp: Annotated[bool, typer.Option("--write-xmp", help="Also remove them from XMP sidecars (only "
                                                                "mcphotos' own keywords; everything else in a "
                                                                "sidecar stays).")] = False,
    xmp_old: Annotated[bool, old_option("--xmp")] = False,
    xmp_name: XmpNameOpt = XmpName.darktable,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    *,
    lib: Library,
) -> None:
    """Forget stored tags of photos, and with --write-xmp remove mcphotos' keywords from their sidecars."""
    from mcphotos.tagging.labels import set_name

    if xmp_old:
        deprecated("untag --xmp", "--write-xmp", "as in tag and caption")
    xmp = write_xmp or xmp_old
    report = lib.untag(paths, set_name(labels) if labels else None, xmp, xmp_name.value, dry_run)
    _report_changes(report.sidecars, dry_run, quiet)
    if not quiet:
        verb = "would remove" if dry_run else "removed"
        sidecars = sum(1 for c in report.sidecars if c.changed)
        typer.echo(f"{verb} {report.removed} tags of {report.photos} photos"
                   + (f"; {sidecars} sidecars {'to change' if dry_run else 'changed'}" if xmp else ""), err=True)


def _change_record(ch: Any) -> dict[str, Any]:
    return {"sidecar": ch.sidecar, "created": ch.created, "added": list(ch.added), "removed": list(ch.removed),
            "written": ch.written, "error": ch.error}


def _report_changes(changes: Sequence[Any], dry_run: bool, quiet: bool) -> None:
    """One stderr line per sidecar that changes (or would), and one per sidecar left untouched."""
    for ch in changes:
        if ch.error:
            typer.echo(f"xmp: {ch.error}", err=True)
        elif ch.changed and not quiet:
            verb = ("would create" if ch.created else "would update") if dry_run else \
                ("created" if ch.created else "updated")
            diff = " ".join([*(f"+{a}" for a in ch.added), *(f"-{r}" for r in ch.removed)])
            typer.echo(f"xmp: {verb} {display_path(ch.sidecar)}: {diff}", err=True)


# -- labels -----------------------------------------------------------------------------------------

labels_app = typer.Typer(help="The shipped label sets: list them, or print one to copy and edit.",
                         no_args_is_help=False)
app.add_typer(labels_app, name="labels")


@labels_app.callback(invoke_without_command=True)
@handle_errors
def labels_list(ctx: typer.Context, json_: JsonOpt = False) -> None:
    """List the shipped label sets (use one with `mcphotos tag --labels NAME`)."""
    if ctx.invoked_subcommand is not None:
        return
    from mcphotos.tagging.labels import shipped_sets

    sets = shipped_sets()
    if json_:
        for s in sets:
            typer.echo(json_line({"name": s.name, "labels": s.labels, "description": s.description,
                                  "path": str(s.path)}))
        return
    records = [{"name": s.name, "labels": s.labels, "description": s.description} for s in sets]
    write_records(records, Format.table, [("name", "name"), ("labels", "labels"), ("description", "description")])


@labels_app.command("show")
@handle_errors
def labels_show(name: Annotated[str, typer.Argument(help="A shipped set's name (or a label file).",
                                                    show_default=False)]) -> None:
    """Print a label set, e.g. `mcphotos labels show animals > my-animals.txt` to edit your own."""
    from mcphotos.tagging.labels import resolve_labels

    label_set = resolve_labels(name)  # validates it, and gives the file it came from
    with open(label_set.source, encoding="utf-8-sig") as f:
        sys.stdout.write(f.read())
    sys.stdout.flush()
