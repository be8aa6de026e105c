"""Options several commands share, each set declared once (the habit of sqlite-utils' output_options).

A decorator adds a set's options to the command's signature, where a placeholder parameter
stands, and hands the command the one value they make:

- ``@library_options`` (store, model, weights, device, precision, engine) → ``lib``: an open
  :class:`~mcphotos.library.Library`, closed when the command returns or fails; or
  ``lib_args``: a :class:`LibraryArgs`, for a command that opens it itself. With
  ``runs_model=False`` only --store, --model and --weights (which store): for commands that
  never run the model, so they do not offer a --device they would ignore.
- ``@find_options(top=N)`` (QUERY and the eleven filters) → ``spec``: a FindSpec. ``find`` and
  ``album save`` both use it, so they cannot disagree.
- ``@output_options`` (--json, --paths, -0) → ``fmt``: a :class:`~mcphotos.cli.render.Format`.

Stack them under ``@handle_errors`` (so their errors are one line with the right exit code)::

    @app.command()
    @handle_errors
    @find_options(top=20)     # run top-down: the query and the output flags are checked
    @output_options           # before the library opens
    @library_options
    def find(*, spec: FindSpec, fmt: Format, lib: Library, sheet: SheetOpt = None) -> None: ...

Placeholders are keyword-only (after ``*``) when a parameter with a default comes before them.
Nothing here imports the library or a model: ``--help`` and ``status`` stay light.

Old spellings keep working for one release as hidden options (:func:`old_option`); :func:`deprecated` prints the
one stderr line that says what to write instead.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, overload

import typer

from mcphotos.cli.common import (
    DeviceOpt,
    EngineOpt,
    JsonOpt,
    ModelOpt,
    NullOpt,
    PathsOpt,
    PrecisionOpt,
    StoreOpt,
    WeightsOpt,
    make_library,
)
from mcphotos.cli.render import choose_format

if TYPE_CHECKING:
    from mcphotos.library import Library
    from mcphotos.search.query import FindSpec

F = TypeVar("F", bound=Callable[..., Any])


# -- deprecations ----------------------------------------------------------------------------------


def deprecated(old: str, new: str, why: str = "") -> None:
    """The one stderr line an old spelling earns: what to write instead (and why, if it helps)."""
    typer.echo(f"mcphotos: warning: {old} is deprecated; use {new}{f' ({why})' if why else ''}", err=True)


def old_option(*decls: str, metavar: str | None = None) -> Any:
    """An old spelling kept for one release: parsed, but left out of --help."""
    return typer.Option(*decls, metavar=metavar, hidden=True, help="Deprecated.")


# -- the machinery: put a set of options where a placeholder stands --------------------------------


def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    """``fn``'s signature with string annotations evaluated where they can be (placeholders may not)."""
    sig = inspect.signature(fn)
    namespace = getattr(inspect.unwrap(fn), "__globals__", {})
    params = []
    for p in sig.parameters.values():
        if isinstance(p.annotation, str):
            try:
                p = p.replace(annotation=eval(p.annotation, namespace))
            except NameError:  # a TYPE_CHECKING-only name: a placeholder, replaced below
                pass
        params.append(p)
    return sig.replace(parameters=params)


def _inject(fn: F, placeholder: str, options: Sequence[inspect.Parameter],
            build: Callable[[dict[str, Any], ExitStack], Any]) -> F:
    """``fn`` with ``options`` in its signature instead of ``placeholder``, which gets ``build(values)``.

    Every parameter becomes keyword-only in the new signature (typer passes them all by name),
    so the options may stand before arguments without defaults.
    """
    sig = _signature(fn)
    if placeholder not in sig.parameters:
        raise TypeError(f"{fn.__name__}() needs a parameter {placeholder!r} to receive its shared options")
    clash = sorted({o.name for o in options} & set(sig.parameters))
    if clash:
        raise TypeError(f"{fn.__name__}() already has parameters named {clash}")
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        params.extend(options if p.name == placeholder else [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)])
    new = sig.replace(parameters=params)
    defaults = {o.name: o.default for o in options}

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name, default) for name, default in defaults.items()}
        with ExitStack() as stack:
            kwargs[placeholder] = build(values, stack)
            return fn(*args, **kwargs)

    wrapper.__signature__ = new  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params if p.annotation is not p.empty}
    return wrapper  # type: ignore[return-value]


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


# -- library options -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LibraryArgs:
    """What --store, --model, --weights, --device and --precision said."""

    store: str | None = None
    model: str | None = None
    weights: str | None = None
    device: str | None = None
    precision: str = "auto"
    engine: str = "auto"

    def open(self, **changes: Any) -> Library:
        """The Library they name (``changes`` override fields). Lazy: no store opened, no model loaded."""
        a = replace(self, **changes)
        return make_library(a.store, a.model, a.weights, a.device, a.precision,  # type: ignore[no-any-return]
                            a.engine)


_STORE = [_option("store", StoreOpt, None), _option("model", ModelOpt, None), _option("weights", WeightsOpt, None)]
_ENGINE = [_option("device", DeviceOpt, None), _option("precision", PrecisionOpt, "auto"),
           _option("engine", EngineOpt, "auto")]


@overload
def library_options(fn: F, /) -> F: ...
@overload
def library_options(*, runs_model: bool = True) -> Callable[[F], F]: ...
def library_options(fn: F | None = None, /, *, runs_model: bool = True) -> Any:
    """Add the library options; hand the command ``lib`` (open, then closed) or ``lib_args``."""

    def decorate(f: F) -> F:
        placeholder = "lib_args" if "lib_args" in inspect.signature(f).parameters else "lib"

        def build(values: dict[str, Any], stack: ExitStack) -> Any:
            args = LibraryArgs(**values)
            return args if placeholder == "lib_args" else stack.enter_context(args.open())

        return _inject(f, placeholder, _STORE + _ENGINE if runs_model else _STORE, build)

    return decorate(fn) if fn is not None else decorate


# -- find options: the query and its filters -------------------------------------------------------

QueryArg = Annotated[str | None, typer.Argument(
    help="What to look for: words, or terms like 'beach + sunset - people + 2*@photo.jpg'.", show_default=False)]
ImageOpt = Annotated[list[str] | None, typer.Option(
    "--image", "-i", metavar="PHOTO",
    help="Query by example: photos like PHOTO (in the store or not). Repeatable; adds to QUERY.")]
TopOpt = Annotated[int, typer.Option("-k", "--top", min=1, help="At most this many results.")]
InOpt = Annotated[list[str] | None, typer.Option("--in", metavar="DIR", help="Only photos under DIR (repeatable).")]
ExtOpt = Annotated[list[str] | None, typer.Option(
    "--ext", metavar="EXT", help="Only these file extensions, e.g. --ext jpg --ext heic (jpg includes jpeg).")]
AfterOpt = Annotated[str | None, typer.Option(
    "--after", metavar="DATE", help="Taken on or after DATE (YYYY, YYYY-MM, YYYY-MM-DD[THH:MM]): EXIF, else mtime.")]
BeforeOpt = Annotated[str | None, typer.Option("--before", metavar="DATE", help="Taken before DATE (exclusive).")]
TagOpt = Annotated[list[str] | None, typer.Option(
    "--tag", metavar="LABEL",
    help="Only photos tagged LABEL or under it (dog, animals/dog, animals); repeat to require several.")]
MinScoreOpt = Annotated[float | None, typer.Option("--min-score", help="Drop results below this cosine score.")]
RelativeOpt = Annotated[float | None, typer.Option(
    "--relative", metavar="F", help="Keep results scoring within fraction F of the best (0.9: at least 90%).")]
AutoCutOpt = Annotated[bool, typer.Option(
    "--auto-cut", help="Stop where the scores drop off: a library with three receipts returns three.")]
ContainsOpt = Annotated[list[str] | None, typer.Option(
    "--contains", metavar="WORDS",
    help="Only photos whose text (read by `mcphotos ocr`) holds WORDS: case and accents ignored, word* for a "
         "prefix, '\"two words\"' for a phrase. Repeatable: all must match. Alone: best text match first.")]


def _find_params(top: int) -> list[inspect.Parameter]:
    return [_option("query", QueryArg, None), _option("image", ImageOpt, None), _option("top", TopOpt, top),
            _option("in_dir", InOpt, None), _option("ext", ExtOpt, None), _option("after", AfterOpt, None),
            _option("before", BeforeOpt, None), _option("tag", TagOpt, None),
            _option("min_score", MinScoreOpt, None), _option("relative", RelativeOpt, None),
            _option("auto_cut", AutoCutOpt, False), _option("contains", ContainsOpt, None)]


def find_options(*, top: int) -> Callable[[F], F]:
    """Add QUERY and the filters; hand the command ``spec``, the FindSpec they make.

    Only ``top``'s default differs between commands (a screenful for find, a folder for an album).
    """

    def decorate(fn: F) -> F:
        return _inject(fn, "spec", _find_params(top), lambda values, _stack: build_spec(**values))

    return decorate


def build_spec(query: str | None = None, image: Sequence[str] | None = None, top: int = 20,
               in_dir: Sequence[str] | None = None, ext: Sequence[str] | None = None, after: str | None = None,
               before: str | None = None, tag: Sequence[str] | None = None, min_score: float | None = None,
               relative: float | None = None, auto_cut: bool = False,
               contains: Sequence[str] | None = None) -> FindSpec:
    """The FindSpec of the command line, with every path made absolute (albums outlive the cwd)."""
    from mcphotos.search.cutoff import Cut
    from mcphotos.search.query import FindSpec, Term, describe, parse_date, parse_exts, parse_query

    text = query
    if text:
        # Image terms inside QUERY become absolute too, so a saved album finds them from anywhere.
        terms = [Term(t.kind, _abs(t.value), t.weight) if t.kind == "image" else t for t in parse_query(text)]
        text = describe(terms) if any(t.kind == "image" for t in terms) else text
    Cut(relative, auto_cut)  # validates --relative
    spec = FindSpec(
        text=text or None,
        images=tuple(_abs(p) for p in image or ()),
        k=top,
        in_dirs=tuple(_abs(d) for d in in_dir or ()),
        exts=parse_exts(ext or ()),
        after=parse_date(after, "--after") if after else None,
        before=parse_date(before, "--before") if before else None,
        tags=tuple(tag or ()),
        min_score=min_score,
        relative=relative,
        auto_cut=auto_cut,
        contains=tuple(contains or ()),
    )
    spec.terms()  # "nothing to search for" before any model or store is touched
    if spec.contains:
        from mcphotos.ocr.textstore import fts_query

        fts_query(spec.contains)  # a malformed --contains is a usage error before anything opens
    return spec


def _abs(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))


# -- OCR options: which models read text (ocr, text, index --ocr) -------------------------------------

OcrModelsOpt = Annotated[str | None, typer.Option(
    "--ocr-models", metavar="DIR",
    help="PP-OCR ONNX models to read text with instead of the shipped ones: a folder with one *det*.onnx, "
         "one *rec*.onnx and, if the model needs it, its character list *.txt (optional *cls*.onnx).")]


def ocr_settings(models: str | None) -> Any:
    """The OcrSettings of --ocr-models (checked here, before any store opens or model loads)."""
    from mcphotos.ocr.engine import OcrSettings, find_models

    if models:
        find_models(models)
        return OcrSettings(models=_abs(models))
    return OcrSettings()


# -- output options --------------------------------------------------------------------------------

_OUTPUT = [_option("output_json", JsonOpt, False), _option("output_paths", PathsOpt, False),
           _option("output_null", NullOpt, False)]


def output_options(fn: F) -> F:
    """Add --json, --paths and -0/--null; hand the command ``fmt`` (at most one of them, else usage)."""
    return _inject(fn, "fmt", _OUTPUT, lambda v, _stack: choose_format(v["output_json"], v["output_paths"],
                                                                      v["output_null"]))
