"""Library commands that organize photos: zero-shot tags and duplicates (with their actions and undo)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from mcphotos.library.base import LibraryBase, absolute
from mcphotos.store.database import Store

if TYPE_CHECKING:
    from mcphotos.dedup.actions import ActionReport, Move, Progress
    from mcphotos.dedup.finder import DedupReport, Group
    from mcphotos.sidecars.xmp import SidecarChange
    from mcphotos.tagging.labels import LabelSet
    from mcphotos.tagging.tagger import PhotoTags, TagOptions, TagReport, UntagReport


def _absolute(paths: Sequence[str] | None) -> list[str] | None:
    """None (no restriction) stays None."""
    return absolute(paths) if paths else None


class TagMixin(LibraryBase):
    def tag(self, label_set: LabelSet, roots: Sequence[str] | None = None, options: TagOptions | None = None,
            dry_run: bool = False, on_status: Callable[[str], None] | None = None) -> TagReport:
        from mcphotos.tagging.tagger import TagOptions, run_tagging

        return run_tagging(self.store(create=False), label_set, _absolute(roots), self.text_vectors,
                           self.logit_scale, options or TagOptions(), dry_run, on_status=on_status)

    def photo_tags(self, paths: Sequence[str], label_set: str | None = None) -> tuple[list[PhotoTags], list[str]]:
        """Stored tags of the photos at or under ``paths``, and the paths with nothing indexed."""
        from mcphotos.tagging.tagger import stored_tags

        return stored_tags(self.store(create=False), _absolute(paths) or [], label_set)

    def untag(self, roots: Sequence[str] | None = None, label_set: str | None = None, xmp: bool = False,
              style: str = "darktable", dry_run: bool = False) -> UntagReport:
        from mcphotos.tagging.tagger import untag

        return untag(self.store(create=False), _absolute(roots), label_set, xmp, style, dry_run)

    def write_sidecars(self, report: TagReport, style: str = "darktable", dry_run: bool = False
                       ) -> list[SidecarChange]:
        """Make the sidecars of a run's photos carry their tags of every set (see sidecars/xmp.py)."""
        from mcphotos.tagging.tagger import sync_sidecars

        return sync_sidecars(self.store(create=False), [(p.path, p.hash) for p in report.photos], style, dry_run,
                             keep=lambda t: t.label_set != report.label_set,
                             extra={p.hash: p.tags for p in report.photos})


class DedupMixin(LibraryBase):
    def dedup(self, tier: str = "near", threshold: float | None = None, roots: Sequence[str] | None = None,
              keep: str = "largest", exists: Callable[[str], bool] = os.path.exists) -> DedupReport:
        """Duplicate groups among the indexed photos. Never loads the model."""
        from mcphotos.dedup.finder import find_duplicates
        from mcphotos.indexing.imaging import PreprocessSpec

        store = self.store(create=False)
        raw = store.get_meta("preprocess")
        spec = PreprocessSpec.from_dict(json.loads(raw)) if raw else self._preprocess
        excluded = json.loads(store.get_meta("dedup_quarantine") or "[]")
        ann = self.ann() if store.dim() is not None else None
        return find_duplicates(store, tier, threshold, _absolute(roots), keep, spec, excluded, exists, ann)

    def plan_moves(self, groups: Sequence[Group], dest: str, roots: Sequence[str] | None = None) -> list[Move]:
        from mcphotos.dedup.actions import plan_moves

        return plan_moves(groups, dest, _absolute(roots))

    def move_duplicates(self, moves: Sequence[Move], dest: str, on_item: Progress | None = None) -> ActionReport:
        """Move the duplicates away (journaled, undoable), holding the writer lock."""
        from mcphotos.dedup.actions import move_duplicates

        store = self.store()
        with store.writer_lock():
            return move_duplicates(store, moves, dest, on_item)

    def hardlink_duplicates(self, groups: Sequence[Group], on_item: Progress | None = None) -> ActionReport:
        """Replace exact duplicates by hard links to their keepers (journaled), holding the writer lock."""
        from mcphotos.dedup.actions import hardlink_duplicates

        store = self.store()
        with store.writer_lock():
            return hardlink_duplicates(store, groups, on_item)

    @staticmethod
    def undo(journal: str, on_item: Progress | None = None) -> ActionReport:
        """Put back what a dedup action changed (see :func:`undo_journal`)."""
        return undo_journal(journal, on_item)


def undo_journal(journal: str, on_item: Progress | None = None) -> ActionReport:
    """Put back what a dedup action changed, from its journal, in the store the journal names."""
    from mcphotos.dedup.actions import read_journal, undo

    entries = read_journal(journal)
    with Store(entries[0]["store"], create=False) as store, store.writer_lock():
        return undo(store, journal, on_item)
