"""The journal of a dedup action: JSON lines, each written and synced *before* its action happens.

The first line says what kind of run it was and which store it changed; then one line per file
moved or hard-linked, companion files included (``companion_of`` names their photo), so that
``undo`` can put every file back, even after a crash halfway.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

from mcphotos.dedup.choices import Action
from mcphotos.errors import McPhotosError
from mcphotos.store.database import Store

JOURNAL_PREFIX = "mcphotos-journal-"
VERSION = 1  # companion lines only add keys: readers of version 1 treat them as plain moves


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.f = open(path, "x", encoding="utf-8")  # noqa: SIM115 (closed in __exit__)

    @classmethod
    def create(cls, directory: Path, kind: Action, store: Store) -> Journal:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        path = directory / f"{JOURNAL_PREFIX}{kind}-{stamp}.jsonl"
        n = 1
        while os.path.lexists(path):
            path = directory / f"{JOURNAL_PREFIX}{kind}-{stamp}~{n}.jsonl"
            n += 1
        j = cls(path)
        j.write({"op": "begin", "kind": kind, "version": VERSION, "store": str(store.dir), "created": now()})
        return j

    def write(self, entry: dict) -> None:
        # ensure_ascii keeps undecodable bytes (surrogate escapes) intact through JSON.
        self.f.write(json.dumps(entry, ensure_ascii=True) + "\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.f.close()


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def read_journal(path: str) -> list[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except OSError as e:
        raise McPhotosError(f"cannot read the journal {path}: {e.strerror or e}") from None
    entries = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            if n == len(lines):
                continue  # a last line cut short by a crash: its action never started
            raise McPhotosError(f"{path}:{n}: not a mcphotos journal line") from None
    if not entries or entries[0].get("op") != "begin":
        raise McPhotosError(f"{path} is not a mcphotos journal")
    return entries
