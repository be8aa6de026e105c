"""`mcphotos models`: the models and captioners known by name, and whether their weights are here."""

from __future__ import annotations

import enum
from typing import Annotated, Any

import typer

from mcphotos.cli.common import JsonOpt, app, handle_errors
from mcphotos.cli.render import json_line, write_table
from mcphotos.models.registry import Entry, entries, entry_cached_file


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


@app.command()
@handle_errors
def models(
    kind: Annotated[KindChoice | None, typer.Option(
        "--kind", help="Only CLIP models (for --model) or only captioners (for caption --captioner).")] = None,
    json_: JsonOpt = False,
) -> None:
    """List the models and captioners known by name, their weights' source, and which are downloaded."""
    records = [model_record(e) for e in entries(kind.value if kind else None)]
    if json_:
        for r in records:
            typer.echo(json_line(r))
        return
    rows = [[r["name"], ", ".join(r["aliases"]), r["kind"], r["pretrained"] or "", r["hub"],
             "yes" if r["cached"] else "no", r["description"] + (" (default)" if r["default"] else "")]
            for r in records]
    write_table(rows, ["NAME", "ALIASES", "KIND", "PRETRAINED", "HUB", "CACHED", "DESCRIPTION"])
