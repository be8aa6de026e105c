"""dedup and undo: find duplicate groups, show them, and (only when asked) move or hard-link."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mcphotos.cli.common import PhotoArgs, SheetOpt, app, fail, handle_errors
from mcphotos.cli.options import library_options, output_options
from mcphotos.cli.render import Format, display_path, json_line, write_paths
from mcphotos.units import human_bytes

if TYPE_CHECKING:
    from mcphotos.library import Library

TierOpt = Annotated[str, typer.Option("--tier", metavar="TIER",
                                      help="exact (same bytes), near (same picture, default) or similar (same scene).")]
ThresholdOpt = Annotated[float | None, typer.Option(
    "--threshold", metavar="T",
    help="near: largest pHash distance in bits (default 14); similar: smallest cosine (default 0.88).")]
KeepOpt = Annotated[str, typer.Option("--keep", metavar="POLICY",
                                      help="Which copy to keep: largest (default), oldest, newest, shortest-path.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Act without asking (required without a terminal).")]


@app.command()
@handle_errors
@output_options
@library_options(runs_model=False)
def dedup(
    paths: PhotoArgs = None,
    tier: TierOpt = "near",
    threshold: ThresholdOpt = None,
    keep: KeepOpt = "largest",
    move_to: Annotated[str | None, typer.Option("--move-to", metavar="DIR",
                                                help="Move the duplicates into DIR (relative paths kept; "
                                                     "undo with `mcphotos undo`).")] = None,
    hardlink: Annotated[bool, typer.Option("--hardlink", help="Replace exact duplicates with hard links "
                                                               "to the keeper (--tier exact only).")] = False,
    sheet: SheetOpt = None,
    yes: YesOpt = False,
    show_dismissed: Annotated[bool, typer.Option(
        "--show-dismissed", help="List the pairs marked \"not duplicates\" (in `mcphotos serve`) instead of "
                                 "the groups; PATHS narrow it to pairs with a file under them.")] = False,
    *,
    fmt: Format,
    lib: Library,
) -> None:
    """Find duplicate photos: exact copies, near-identical versions, or similar shots.

    Lists the groups with the copy to keep; --paths/-0 print only the others. Pairs marked
    "not duplicates" never share a group (--show-dismissed lists them).

    Nothing changes on disk unless you pass --move-to or --hardlink (and confirm).
    """
    from mcphotos.errors import UsageError

    if move_to and hardlink:
        raise UsageError("choose one of --move-to and --hardlink")
    if show_dismissed:
        if move_to or hardlink or sheet:
            raise UsageError("--show-dismissed only lists; it takes no --move-to, --hardlink or --sheet")
        _show_dismissed(lib.dismissed(paths or None), fmt)
        return
    if hardlink and tier != "exact":
        raise UsageError("--hardlink only replaces exact duplicates", "add --tier exact")
    report = lib.dedup(tier=tier, threshold=threshold, roots=paths or None, keep=keep)
    _render(report, fmt)
    _summary(report)
    if sheet:
        from mcphotos.cli.dupsheet import render_dedup_sheet

        if report.groups:
            out = render_dedup_sheet(report.groups, sheet)
            typer.echo(f"contact sheet: {display_path(out.path)}", err=True)
        else:
            typer.echo("no groups: no contact sheet written", err=True)
    if (move_to or hardlink) and report.groups:
        _act(lib, report, move_to, hardlink, paths, yes)


def _render(report: Any, fmt: Format) -> None:
    if fmt in (Format.paths, Format.null):
        write_paths([m.path for g in report.groups for m in g.duplicates], fmt)
        return
    if fmt is Format.json:
        for n, g in enumerate(report.groups, 1):
            members = [{k: v for k, v in vars(m).items()} for m in g.members]
            sys.stdout.write(json_line({"group": n, "tier": g.tier, "keeper": g.keeper.path, "reason": g.reason,
                                        "members": members}) + "\n")
        sys.stdout.flush()
        return
    rows: list[tuple[str, ...]] = []
    headers = ("", "tier", "bits", "cosine", "pixels", "size", "path")
    for n, g in enumerate(report.groups, 1):
        rows.append((f"# group {n}: {g.tier}, {len(g.members)} files, keep the first ({g.reason})",))
        for m in g.members:
            mark = "keep" if m.role == "keeper" else "dup"
            note = f"  (via {display_path(m.via)})" if m.via else ""
            rows.append((mark, "" if m.role == "keeper" else m.tier,
                         "" if m.hamming is None or m.role == "keeper" else str(m.hamming),
                         "" if m.cosine is None or m.role == "keeper" else f"{m.cosine:.3f}",
                         f"{m.width}x{m.height}" if m.width else "?", human_bytes(m.size),
                         display_path(m.path) + note))
    widths = [max([len(h)] + [len(r[i]) for r in rows if len(r) > 1]) for i, h in enumerate(headers)]
    if rows:
        out = sys.stdout
        out.write("  ".join(h.ljust(w) if i < len(headers) - 1 else h for i, (h, w) in
                            enumerate(zip(headers, widths, strict=True))).rstrip() + "\n")
        for r in rows:
            if len(r) == 1:
                out.write(r[0] + "\n")
                continue
            cells = [c.rjust(w) if i in (2, 3, 5) else c.ljust(w)
                     for i, (c, w) in enumerate(zip(r[:-1], widths, strict=False))]
            out.write("  ".join([*cells, r[-1]]) + "\n")
        out.flush()


def _show_dismissed(pairs: Any, fmt: Format) -> None:
    import datetime as dt

    if fmt in (Format.paths, Format.null):
        write_paths(dict.fromkeys(p for d in pairs for p in d.paths_a + d.paths_b), fmt)
    elif fmt is Format.json:
        for d in pairs:
            when = dt.datetime.fromtimestamp(d.dismissed_at).astimezone().isoformat(timespec="seconds")
            sys.stdout.write(json_line({"hash_a": d.hash_a, "hash_b": d.hash_b, "dismissed_at": when,
                                        "paths_a": d.paths_a, "paths_b": d.paths_b}) + "\n")
    else:
        out = sys.stdout
        if pairs:
            out.write("hash          path\n")
        for n, d in enumerate(pairs, 1):
            when = dt.datetime.fromtimestamp(d.dismissed_at).strftime("%Y-%m-%d %H:%M")
            out.write(f"# pair {n}: not duplicates (dismissed {when})\n")
            for h, paths in ((d.hash_a, d.paths_a), (d.hash_b, d.paths_b)):
                for p in paths or ["(no indexed file has this content now)"]:
                    out.write(f"{h[:12]}  {display_path(p) if paths else p}\n")
    sys.stdout.flush()
    typer.echo(f"{len(pairs)} pairs marked not duplicates", err=True)


def _summary(report: Any) -> None:
    if report.tier == "exact":
        how = "identical bytes"
    elif report.tier == "near":
        how = f"pHash within {report.threshold:g} bits"
    else:
        how = f"cosine >= {report.threshold:g}"
    notes = []
    if report.backfilled:
        notes.append(f"computed {report.backfilled} missing perceptual hashes")
    if report.dismissed:
        notes.append(f"{report.dismissed} pairs marked not duplicates kept apart (--show-dismissed lists them)")
    if report.missing:
        notes.append(f"{report.missing} indexed files are gone (run `mcphotos index` to prune)")
    if report.files == 0:
        notes.append("no indexed photos here: run `mcphotos index PATH` first")
    elif report.tier == "similar" and report.images > 2 and not report.embeddings_informative:
        notes.append("warning: these embeddings do not tell photos apart (random weights?), "
                     "so similar groups mean nothing")
    elif report.tier == "near" and not report.embeddings_used:
        notes.append("embeddings not used (they do not tell these photos apart)")
    typer.echo(f"{len(report.groups)} groups, {report.duplicate_count} duplicates "
               f"({human_bytes(report.reclaimable_bytes)}) among {report.files} files, {report.tier}: {how}; "
               f"{report.elapsed:.1f}s" + "".join(f"; {n}" for n in notes), err=True)


def _confirm(what: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"refusing to {what} without confirmation: no terminal to ask on, pass --yes", 2)
    if not typer.confirm(f"{what[0].upper()}{what[1:]}?", default=False, err=True):
        raise fail("nothing changed", 1)


def _act(lib: Any, report: Any, move_to: str | None, hardlink: bool, roots: list[str] | None, yes: bool) -> None:
    on_item = (lambda p, what: typer.echo(f"{display_path(p)}: {what}", err=True)) if sys.stderr.isatty() else None
    if move_to:
        moves = lib.plan_moves(report.groups, move_to, roots)
        total = sum(m.size for m in moves)
        carried = sum(len(m.companions) for m in moves)
        typer.echo(f"plan: move {len(moves)} files ({human_bytes(total)})"
                   + (f" and their {carried} companion files" if carried else "")
                   + f" into {display_path(move_to)}", err=True)
        _confirm(f"move {len(moves)} files into {move_to}", yes)
        result = lib.move_duplicates(moves, move_to, on_item)
        verb = "moved"
    else:
        count = report.duplicate_count
        typer.echo(f"plan: replace {count} exact duplicates with hard links to their keepers", err=True)
        _confirm(f"replace {count} files with hard links", yes)
        result = lib.hardlink_duplicates(report.groups, on_item)
        verb = "hard-linked"
    for path, reason in result.skipped:
        typer.echo(f"skipping {display_path(path)}: {reason}", err=True)
    typer.echo(f"{verb} {result.done} files" + (f" and {result.companions} companions" if result.companions else "")
               + f" ({human_bytes(result.bytes)}); journal: {display_path(result.journal)}; "
               f"undo with: mcphotos undo {display_path(result.journal)}", err=True)
    if result.skipped:
        raise typer.Exit(1)


@app.command()
@handle_errors
def undo(
    journal: Annotated[str, typer.Argument(help="The journal a dedup action wrote (mcphotos-journal-*.jsonl).",
                                           show_default=False)],
    yes: YesOpt = False,
) -> None:
    """Put back what a `dedup --move-to` or `--hardlink` run changed, from its journal."""
    from mcphotos.dedup.actions import read_journal
    from mcphotos.library import Library

    entries = read_journal(journal)
    actions = [e for e in entries if e.get("op") in ("move", "hardlink") and not e.get("companion_of")]
    typer.echo(f"plan: undo {len(actions)} {entries[0].get('kind', '')} actions from {display_path(journal)}",
               err=True)
    _confirm(f"undo {len(actions)} actions", yes)
    on_item = (lambda p, what: typer.echo(f"{display_path(p)}: {what}", err=True)) if sys.stderr.isatty() else None
    result = Library.undo(journal, on_item)
    for path, reason in result.skipped:
        typer.echo(f"skipping {display_path(path)}: {reason}", err=True)
    typer.echo(f"restored {result.done} files" + (f" and {result.companions} companions" if result.companions else "")
               + f" ({human_bytes(result.bytes)})"
               + (f"; {result.already} were restored before" if result.already else ""), err=True)
    if result.skipped:
        raise typer.Exit(1)
