"""The library facade: one object that knows the home, the model and its store.

``Library`` wires the pieces together and is what the CLI (and a Python user) calls::

    from mcphotos import Library
    with Library(model="MobileCLIP2-S0") as lib:
        lib.index(["~/Pictures"])
        for hit in lib.find("a receipt", k=5):
            print(hit.score, hit.path)

Every command goes through it, and the core takes the writer lock itself where it writes.
The engine is built only when a command needs it. Tests pass ``engine_factory`` to use a
fake or the tiny trained CLIP. Its methods are grouped by concern, one module each:

- ``base``: wiring (home, model, store, engine, vectors), warnings, status;
- ``indexing``: index, the ANN cache, check and repair;
- ``merging``: merge another store or an export by content hash;
- ``finding``: find, query by example, albums, embed and export;
- ``organizing``: tags and duplicates (with their actions and undo);
- ``captioning``: score and caption;
- ``ocr``: text inside photos (OCR pass, a photo's text).
"""

from __future__ import annotations

from mcphotos.library.base import LibraryBase, Status, guess_device, guess_precision
from mcphotos.library.captioning import CaptionMixin
from mcphotos.library.finding import FindMixin
from mcphotos.library.indexing import IndexMixin
from mcphotos.library.merging import MergeMixin
from mcphotos.library.ocr import OcrMixin
from mcphotos.library.organizing import DedupMixin, TagMixin


class Library(MergeMixin, IndexMixin, FindMixin, TagMixin, DedupMixin, CaptionMixin, OcrMixin, LibraryBase):
    """See the module docstring; each mixin holds one concern's commands."""


__all__ = ["Library", "Status", "guess_device", "guess_precision"]
