"""Library commands about words and photos: score captions, write captions."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from mcphotos.library.base import LibraryBase

if TYPE_CHECKING:
    from mcphotos.captions.captioning import CaptionResult, ProgressCallback
    from mcphotos.captions.scoring import Scorer
    from mcphotos.models.coca import CaptionerSpec
    from mcphotos.models.cocagen import Captioner, Decoding


class CaptionMixin(LibraryBase):
    def scorer(self) -> Scorer:
        """Photo-caption scores with this library's model (stored photo vectors reused by content hash)."""
        from mcphotos.captions.scoring import Scorer

        return Scorer(self._store_vectors())

    def caption(self, paths: Sequence[str], spec: CaptionerSpec, decoding: Decoding, load: Callable[[], Captioner],
                refresh: bool = False, on_progress: ProgressCallback | None = None,
                on_skip: Callable[[str, str], None] | None = None) -> Iterator[CaptionResult]:
        """Caption each photo (stored captions first), rerank with this library's model, store, yield in order."""
        from mcphotos.captions.captioning import caption_photos

        store = self.store()
        return caption_photos(store, self.scorer(), spec.identity(self.home), paths, decoding, load, refresh,
                              on_progress, on_skip)
