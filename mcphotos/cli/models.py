"""`mcphotos models`: the models and captioners known by name, and whether their weights are here."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from mcphotos.cli.common import JsonOpt, app, handle_errors
from mcphotos.cli.options import LibraryArgs, library_options
from mcphotos.cli.render import json_line, write_table
from mcphotos.models.registry import Entry, entries, entry_cached_file
from mcphotos.models.runtime import summary as runtime_summary

models_app = typer.Typer(help="The models known by name; prepare one's fast runtime.", no_args_is_help=False)
app.add_typer(models_app, name="models")


class KindChoice(str, enum.Enum):
    clip = "clip"
    captioner = "captioner"


def model_record(e: Entry) -> dict[str, Any]:
    """One registry entry as ``mcphotos models --json`` prints it."""
    cached = entry_cached_file(e)
    return {
        "name": e.name,
        "aliases": list(e.aliases),
        "kind": e.kind,
        "default": e.is_default,
        "pretrained": e.pretrained,
        "hub": e.hub,
        "preprocess": e.preprocess.as_dict() if e.preprocess else None,
        "description": e.description,
        "cached": cached is not None,
        "cached_path": cached,
    }


@models_app.callback(invoke_without_command=True)
@handle_errors
def models(
    ctx: typer.Context,
    kind: Annotated[KindChoice | None, typer.Option(
        "--kind", help="Only CLIP models (for --model) or only captioners (for caption --captioner).")] = None,
    json_: JsonOpt = False,
) -> None:
    """List the models and captioners known by name, their weights' source, and which are downloaded."""
    if ctx.invoked_subcommand is not None:
        return
    records = [model_record(e) for e in entries(kind.value if kind else None)]
    if json_:
        for r in records:
            typer.echo(json_line(r))
        return
    rows = [[r["name"], ", ".join(r["aliases"]), r["kind"], r["pretrained"] or "", r["hub"],
             "yes" if r["cached"] else "no", r["description"] + (" (default)" if r["default"] else "")]
            for r in records]
    write_table(rows, ["NAME", "ALIASES", "KIND", "PRETRAINED", "HUB", "CACHED", "DESCRIPTION"])


@models_app.command()
@handle_errors
@library_options
def prepare(
    name: Annotated[str | None, typer.Argument(
        help="The model (default: --model, else MobileCLIP2-S0).", show_default=False)] = None,
    json_: JsonOpt = False,
    *, lib_args: LibraryArgs,
) -> None:
    """Export the model's towers to ONNX Runtime, so queries and small jobs start without torch.

    It happens by itself after the first `index`; run it to prepare ahead, or again after an
    upgrade. The export is used only if it matches torch fp32 (cosine >= 0.99999).
    """
    with lib_args.open(model=name or lib_args.model, engine="torch") as lib:
        report = lib.prepare()
    m = report.manifest
    record = {"model": lib.spec.name, "source": lib.identity()["source"], "folder": report.folder,
              "export_s": round(report.export_s, 1), **runtime_summary(m)}
    if json_:
        typer.echo(json_line(record))
        return
    p, s = m.parity, m.speed
    typer.echo(f"prepared {record['model']} ({record['source']}) in {report.folder}: {record['size_mb']} MB, "
               f"{record['export_s']} s")
    typer.echo(f"parity with torch fp32: text {p.text_min_cosine:.7f} over {p.prompts} prompts, "
               f"image {p.image_min_cosine:.7f} over {p.images} images (min cosine)")
    typer.echo(f"speed: onnx {s.onnx_images_per_s} img/s, torch {s.torch_precision} {s.torch_images_per_s} img/s "
               f"(+{s.torch_load_s} s to load)")
