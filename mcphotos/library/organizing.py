"""Library commands that organize photos: zero-shot tags and duplicates (with their actions and undo)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcphotos.library.base import LibraryBase, absolute

if TYPE_CHECKING:
    from mcphotos.dedup.actions import ActionReport, Move, Progress
    from mcphotos.dedup.finder import DedupReport, Group
    from mcphotos.sidecars.xmp import SidecarChange
    from mcphotos.store.dismissals import DismissReport
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
        from mcphotos.indexing.preprocess_spec import PreprocessSpec

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

    def dismiss(self, groups: Sequence[Group] = (), pairs: Sequence[tuple[str, str]] = ()) -> DismissReport:
        """Remember "not duplicates": every pair of content hashes among each group's members, and
        ``pairs`` of hashes. ``dedup`` then never puts two of them in one group. The report's pairs
        are those newly dismissed: :meth:`undismiss` of them reverses exactly this call."""
        from mcphotos.errors import UsageError
        from mcphotos.store.dismissals import add_pairs, canonical, pairs_of

        wanted = [p for g in groups for p in pairs_of(m.hash for m in g.members)]
        try:
            wanted += [canonical(a, b) for a, b in pairs]
        except ValueError as e:
            raise UsageError(str(e)) from None
        store = self.store(create=False)
        unknown = sorted({h for p in wanted for h in p} - store.has_hashes({h for p in wanted for h in p}))
        if unknown:
            raise UsageError(f"not an indexed photo's content hash: {', '.join(unknown[:3])}"
                             + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""))
        with store.writer_lock(), store.transaction():
            return add_pairs(store, wanted)

    def undismiss(self, pairs: Sequence[tuple[str, str]]) -> int:
        """Forget dismissals (the server's Undo); the number of pairs that were dismissed."""
        from mcphotos.errors import UsageError
        from mcphotos.store.dismissals import canonical, remove_pairs

        try:
            wanted = [canonical(a, b) for a, b in pairs]
        except ValueError as e:
            raise UsageError(str(e)) from None
        store = self.store(create=False)
        with store.writer_lock(), store.transaction():
            return remove_pairs(store, wanted)

    def dismissed(self, roots: Sequence[str] | None = None) -> list[DismissedPhotos]:
        """The dismissed pairs with the indexed files that carry each hash now, oldest first;
        with ``roots``, only pairs with a file under one of them."""
        from mcphotos.store.dismissals import list_pairs

        store = self.store(create=False)
        pairs = list_pairs(store)
        paths = store.paths_for_hashes({h for p in pairs for h in (p.hash_a, p.hash_b)})
        out = [DismissedPhotos(p.hash_a, p.hash_b, p.dismissed_at, paths.get(p.hash_a, []), paths.get(p.hash_b, []))
               for p in pairs]
        scope = _absolute(roots)
        if scope:
            prefixes = [os.path.join(r, "") for r in scope]
            out = [d for d in out if any(f == r or f.startswith(pre) for f in d.paths_a + d.paths_b
                                         for r, pre in zip(scope, prefixes, strict=True))]
        return out

    @staticmethod
    def undo(journal: str, on_item: Progress | None = None) -> ActionReport:
        """Put back what a dedup action changed (see :func:`undo_journal`)."""
        return undo_journal(journal, on_item)


@dataclass(frozen=True)
class DismissedPhotos:
    """A pair dismissed as "not duplicates", with the paths of the indexed files of each hash."""

    hash_a: str
    hash_b: str
    dismissed_at: float
    paths_a: list[str]
    paths_b: list[str]


def undo_journal(journal: str, on_item: Progress | None = None) -> ActionReport:
    """Put back what a dedup action changed, from its journal, in the store the journal names."""
    from mcphotos.dedup.actions import read_journal, undo
    from mcphotos.store.database import Store

    entries = read_journal(journal)
    with Store(entries[0]["store"], create=False) as store, store.writer_lock():
        return undo(store, journal, on_item)
