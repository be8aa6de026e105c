"""Library commands for text inside photos: an OCR pass over the index, and a photo's text."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from mcphotos.library.base import LibraryBase, absolute

if TYPE_CHECKING:
    from mcphotos.ocr.engine import OcrEngine, OcrSettings
    from mcphotos.ocr.runner import OcrOptions, OcrReport, PhotoText, ProgressCallback, SkipCallback
    from mcphotos.ocr.textstore import OcrCounts


class OcrMixin(LibraryBase):
    def ocr_engine(self, settings: OcrSettings | None = None) -> OcrEngine:
        """The OCR engine (built once per process and settings; nothing loads it before this)."""
        from mcphotos.ocr.engine import load_engine

        return load_engine(settings)

    def ocr(self, paths: Sequence[str] = (), options: OcrOptions | None = None,
            settings: OcrSettings | None = None, on_progress: ProgressCallback | None = None,
            on_skip: SkipCallback | None = None) -> OcrReport:
        """Recognize the text of the indexed photos under the directories and at the files of
        ``paths`` (every indexed photo when empty), and store it per content hash.

        A file that is not indexed is reported through ``on_skip``: index it first.
        """
        from mcphotos.ocr.engine import OcrSettings
        from mcphotos.ocr.runner import run_ocr

        store = self.store(create=False)
        settings = settings or OcrSettings()
        wanted = absolute(paths)
        records = store.files_under(wanted) if wanted else store.files_under(None)
        files = {p: rec.hash for p, rec in records.items() if rec.status == "ok" and rec.hash}
        for p in wanted:
            if p not in files and os.path.isfile(p) and on_skip is not None:
                on_skip(p, "not indexed (run `mcphotos index` on it first)")
        return run_ocr(store, files, lambda: self.ocr_engine(settings), settings, options, on_progress, on_skip)

    def photo_texts(self, paths: Sequence[str], settings: OcrSettings | None = None,
                    on_skip: SkipCallback | None = None) -> list[PhotoText]:
        """The text of each photo, in order: from the store when it has read it, else recognized now
        (and then stored only if the photo's content is indexed)."""
        from mcphotos.ocr.engine import OcrSettings
        from mcphotos.ocr.runner import photo_texts

        settings = settings or OcrSettings()
        store = self.store(create=False) if (self.store_dir / "store.db").exists() else None
        return photo_texts(store, absolute(paths), lambda: self.ocr_engine(settings), settings, on_skip)

    def ocr_counts(self) -> OcrCounts:
        from mcphotos.ocr.textstore import counts

        return counts(self.store(create=False))
