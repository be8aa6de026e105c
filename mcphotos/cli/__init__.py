"""The command line: parse, call the library, render, map errors to exit codes.

Exit codes: 0 ok, 1 failure, 2 usage, 130 interrupted. Each command group lives in its own
module and registers itself on the shared ``app`` when imported here.
"""

from __future__ import annotations

from mcphotos.cli import (  # noqa: F401  (each module registers its commands)
    albums,
    caption,
    core,
    dedup,
    embed,
    maintenance,
    models,
    ocr,
    score,
    serve,
    tagging,
)
from mcphotos.cli.common import app


def main() -> None:
    app()


__all__ = ["app", "main"]
