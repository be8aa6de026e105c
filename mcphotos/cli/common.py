"""Shared pieces of the CLI: the app, common options, error translation, progress.

Exit codes: 0 ok, 1 failure, 2 usage, 130 interrupted. Every anticipated error is one
stderr line; results go to stdout, progress and warnings to stderr.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from mcphotos import __version__
from mcphotos.cli.render import display_path
from mcphotos.errors import McPhotosError, UsageError
from mcphotos.models.registry import model_choices_help

app = typer.Typer(
    name="mcphotos",
    help="Organize your own photos locally with Apple's MobileCLIP2: index, find, tag, dedup, score.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])

# open_clip, timm and huggingface_hub log to the root logger; the CLI speaks for itself in
# one line per problem, so their chatter stays off stderr unless MCPHOTOS_DEBUG is set.
if not os.environ.get("MCPHOTOS_DEBUG"):
    logging.getLogger().addHandler(logging.NullHandler())
    logging.getLogger().setLevel(logging.CRITICAL)
    for noisy in ("huggingface_hub", "open_clip", "timm", "root"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)

# -- shared options ------------------------------------------------------------------------------
# Each declared once. The sets that go together (library, find filters, output format) are added
# to commands by the decorators of mcphotos.cli.options, not repeated in each command.

LIBRARY_PANEL = "Library options"

StoreOpt = Annotated[str | None, typer.Option("--store", envvar="MCPHOTOS_HOME", metavar="DIR",
                                               rich_help_panel=LIBRARY_PANEL,
                                               help="Home of the stores (default: the user data dir).")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", metavar="NAME", rich_help_panel=LIBRARY_PANEL,
                                               help=model_choices_help())]
WeightsOpt = Annotated[str | None, typer.Option("--weights", metavar="FILE", rich_help_panel=LIBRARY_PANEL,
                                                 help="Local checkpoint of the CLIP model instead of the hub "
                                                      "download.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", metavar="DEV", rich_help_panel=LIBRARY_PANEL,
                                                help="cuda, mps or cpu (default: the best available).")]
PrecisionOpt = Annotated[str, typer.Option("--precision", metavar="P", rich_help_panel=LIBRARY_PANEL,
                                            help="auto, fp32, bf16 or fp16 for image encoding.")]
EngineOpt = Annotated[str, typer.Option(
    "--engine", metavar="E", rich_help_panel=LIBRARY_PANEL,
    help="auto (default: ONNX Runtime for queries and small jobs once prepared, the faster one for bulk), "
         "torch or onnx.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]
PathsOpt = Annotated[bool, typer.Option("--paths", help="Bare paths, one per line.")]
NullOpt = Annotated[bool, typer.Option("-0", "--null", help="Paths separated by NUL bytes (for xargs -0).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")]
PhotoArgs = Annotated[list[str] | None, typer.Argument(
    help="Only photos under these directories, or these files (default: every indexed photo).",
    show_default=False)]
SheetOpt = Annotated[str | None, typer.Option("--sheet", metavar="FILE",
                                              help="Also draw the results as a contact sheet (.jpg, .png or .webp).")]


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
                 precision: str = "auto", engine: str = "auto") -> Any:
    from mcphotos.library import Library

    return Library(home=store, model=model, weights=weights, device=device, precision=precision,
                   engine=engine, on_warning=print_warning)


def print_warning(message: str) -> None:
    """The core's warnings (``Library(on_warning=…)``), one stderr line each."""
    typer.echo(f"mcphotos: warning: {message}", err=True)


def skip_printer(path: str, reason: str) -> None:
    typer.echo(f"skipping {display_path(path)}: {reason}", err=True)


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


class Progress:
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
