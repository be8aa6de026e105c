"""Library command that brings vectors computed elsewhere into this store: merge."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from mcphotos.library.indexing import IndexMixin

if TYPE_CHECKING:
    from mcphotos.merging.merger import MergeReport, ProgressCallback


class MergeMixin(IndexMixin):  # it refreshes the ANN cache after merging
    def merge(self, source: str | os.PathLike[str], batch_size: int = 1000,
              on_progress: ProgressCallback | None = None) -> MergeReport:
        """Import another store's (or an export's) vectors by content hash; see merging/merger.py."""
        from mcphotos.merging.merger import merge_into
        from mcphotos.merging.sources import open_source

        opened = open_source(os.fspath(source), self.spec.slug(self.home))
        try:
            store = self.store()
            if opened.kind == "store" and os.path.samefile(opened.path, store.dir):
                from mcphotos.errors import UsageError

                raise UsageError(f"{source} is this store itself")
            report = merge_into(store, opened, self.identity(), lambda: self.preprocess().to_dict(), batch_size,
                                on_progress)
        finally:
            opened.close()
        self.refresh_ann()
        return report

