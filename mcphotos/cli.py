"""The command line: parse, call the library, render, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 usage, 130 interrupted. Every anticipated error is one
stderr line; results go to stdout, progress and warnings to stderr.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from . import __version__
from .errors import McPhotosError, UsageError
from .render import Format, choose_format, display_path, human_bytes, json_line, write_records

app = typer.Typer(
    name="mcphotos",
    help="Organize your own photos locally with Apple's MobileCLIP2: index, find, tag, dedup, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

# -- shared options ------------------------------------------------------------------------------

StoreOpt = Annotated[str | None, typer.Option("--store", envvar="MCPHOTOS_HOME", metavar="DIR",
                                               help="Home of the stores (default: the user data dir).")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", metavar="NAME",
                                               help="MobileCLIP2-S0 (default), S2, B, S3, S4, L-14, "
                                                    "MobileCLIP-S1/S2/B, or an open_clip config .json.")]
WeightsOpt = Annotated[str | None, typer.Option("--weights", metavar="FILE",
                                                 help="Local checkpoint instead of the hub download.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", metavar="DEV",
                                                help="cuda, mps or cpu (default: the best available).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", metavar="P",
                                            help="auto, fp32, bf16 or fp16 for image encoding.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
PathsOpt = Annotated[bool, typer.Option("--paths", help="Bare paths, one per line.")]
NullOpt = Annotated[bool, typer.Option("-0", "--null", help="Paths separated by NUL bytes (for xargs -0).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"mcphotos: {message}", err=True)
    return typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Translate the library's exceptions into one stderr line and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except McPhotosError as e:
            if isinstance(e, UsageError):
                raise typer.BadParameter(str(e)) from None
            raise fail(f"error: {e}", e.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except BrokenPipeError:
            # The reader went away (| head): not an error, and no traceback.
            sys.stderr.close()
            raise typer.Exit(0) from None

    return wrapper  # type: ignore[return-value]


def make_library(store: str | None, model: str | None, weights: str | None, device: str | None = None,
                 precision: str = "auto") -> Any:
    from .library import Library

    return Library(home=store, model=model, weights=weights, device=device, precision=precision)


def skip_printer(path: str, reason: str) -> None:
    typer.echo(f"skipping {display_path(path)}: {reason}", err=True)


# -- commands ------------------------------------------------------------------------------------

def _version(value: bool) -> None:
    if value:
        typer.echo(f"mcphotos {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Show the version and exit.")] = False,
) -> None:
    """Organize your own photos locally with Apple's MobileCLIP2."""


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
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="Images per model call.")] = 32,
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
    from .indexer import IndexOptions
    from .walk import read_path_list

    roots = [p for p in paths if p != "-"]
    stdin_paths = list(read_path_list(sys.stdin.buffer, nul=null_input)) if "-" in paths else None
    lib = make_library(store, model, weights, device, precision)
    progress = _Progress(enabled=not quiet and sys.stderr.isatty())
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
    query: Annotated[str, typer.Argument(help="What to look for, in words.", show_default=False)],
    top: Annotated[int, typer.Option("-k", "--top", min=1, help="How many results.")] = 20,
    in_dir: Annotated[str | None, typer.Option("--in", metavar="DIR", help="Only photos under DIR.")] = None,
    min_score: Annotated[float | None, typer.Option("--min-score", help="Drop results below this cosine.")] = None,
    json_: JsonOpt = False,
    paths: PathsOpt = False,
    null: NullOpt = False,
    store: StoreOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = None,
    precision: PrecisionOpt = "auto",
) -> None:
    """Find photos by a text description, best first."""
    fmt = choose_format(json_, paths, null)
    lib = make_library(store, model, weights, device, precision)
    try:
        hits = lib.find(query, k=top, in_dir=in_dir, min_score=min_score)
    finally:
        lib.close()
    records = [{"score": round(h.score, 6), "path": h.path, "hash": h.hash} for h in hits]
    write_records(records, fmt, [("score", "score"), ("path", "path")])
    if not hits and fmt is Format.table:
        typer.echo("no matches", err=True)


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
    lib = make_library(store, model, weights, device)
    try:
        st = lib.status()
    finally:
        lib.close()
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


class _Progress:
    """A tqdm bar on stderr, only on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None
        self._last = 0.0

    def update(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="photo", file=sys.stderr, dynamic_ncols=True, leave=False)
        now = time.monotonic()
        if now - self._last > 0.1 or done >= total:
            self.bar.total = total
            self.bar.n = done
            self.bar.refresh()
            self._last = now

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def main() -> None:
    app()


__all__ = ["app", "main"]
