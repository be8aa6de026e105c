"""Output for people and for pipelines. Results go to stdout; nothing else does.

One set of formats serves every command that lists photos:

- ``table`` (default): aligned columns for a terminal;
- ``json``: one JSON object per line; paths that are not valid UTF-8 keep their bytes as
  surrogate escapes, so ``os.fsencode(json.loads(line)["path"])`` gives back the exact name;
- ``paths``: one path per line;
- ``null`` (``-0``): paths separated by NUL bytes, safe for any file name (``xargs -0``).
"""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, TextIO


class Format(str, enum.Enum):
    table = "table"
    json = "json"
    paths = "paths"
    null = "null"


def choose_format(json_: bool = False, paths: bool = False, null: bool = False) -> Format:
    from mcphotos.errors import UsageError

    chosen = [f for f, on in ((Format.json, json_), (Format.paths, paths), (Format.null, null)) if on]
    if len(chosen) > 1:
        raise UsageError("choose one of --json, --paths and -0")
    return chosen[0] if chosen else Format.table


def display_path(path: str) -> str:
    """A one-line, printable form of a path for tables and messages (never for piping)."""
    if path.isprintable():
        return path
    out = []
    for ch in path:
        if 0xDC80 <= ord(ch) <= 0xDCFF:  # an undecodable byte kept by surrogateescape
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif not ch.isprintable():
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def json_line(obj: dict[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=True)


def write_paths(paths: Iterable[str], fmt: Format, out: BinaryIO | None = None) -> None:
    out = out or sys.stdout.buffer
    sep = b"\0" if fmt is Format.null else b"\n"
    for p in paths:
        out.write(os.fsencode(p) + sep)
    out.flush()


def write_table(rows: Sequence[Sequence[str]], headers: Sequence[str], out: TextIO | None = None,
                align_right: Sequence[int] = ()) -> None:
    out = out or sys.stdout
    if not rows:
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    # The last column (usually a path) is left unpadded so long paths don't make trailing spaces.
    def fmt(cells: Sequence[str]) -> str:
        parts = []
        for i, c in enumerate(cells):
            if i == len(cells) - 1:
                parts.append(c)
            elif i in align_right:
                parts.append(c.rjust(widths[i]))
            else:
                parts.append(c.ljust(widths[i]))
        return "  ".join(parts)

    out.write(fmt(headers) + "\n")
    for r in rows:
        out.write(fmt(r) + "\n")
    out.flush()


def write_records(records: Sequence[dict[str, Any]], fmt: Format, columns: Sequence[tuple[str, str]],
                  path_key: str = "path") -> None:
    """Render a list of result dicts in ``fmt``. ``columns``: (key, header) for the table."""
    if fmt in (Format.paths, Format.null):
        write_paths([r[path_key] for r in records], fmt)
    elif fmt is Format.json:
        for r in records:
            sys.stdout.write(json_line(r) + "\n")
        sys.stdout.flush()
    else:
        rows = [[_cell(r.get(k), k == path_key) for k, _ in columns] for r in records]
        numeric = [i for i, (k, _) in enumerate(columns) if records and isinstance(records[0].get(k), (int, float))]
        write_table(rows, [h for _, h in columns], align_right=numeric)


def _cell(value: Any, is_path: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return display_path(value) if is_path else str(value)
