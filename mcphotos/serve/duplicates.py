"""``/api/dedup``, its actions and ``/api/undo`` without HTTP, through the library methods the CLI uses.

Groups are named by a key made of their members (paths and content hashes), so an action names
exactly what the page showed: the groups are found again when it arrives, and if any key no longer
matches a current group (an index ran, a file moved), nothing is done and the answer is 409.
Moves and hard links write the CLI's journal, so ``mcphotos undo JOURNAL`` reverses them as well.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mcphotos.serve.context import Action, ApiError, ServeContext
from mcphotos.serve.facts import file_format

if TYPE_CHECKING:
    from mcphotos.dedup.actions import ActionReport
    from mcphotos.dedup.finder import DedupReport, Group

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200


def group_key(group: Group) -> str:
    """A name for the group made of its members: the same files and contents, the same key."""
    lines = sorted(f"{m.path}\0{m.hash}" for m in group.members)
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()[:32]


def groups_page(ctx: ServeContext, tier: str, page: int, per_page: int) -> dict:
    report = _report(ctx, tier)
    total = len(report.groups)
    pages = max(1, -(-total // per_page))
    chosen = report.groups[page * per_page:(page + 1) * per_page]
    return {"tier": str(report.tier), "page": page, "pages": pages, "groups_total": total,
            "duplicates_total": report.duplicate_count, "reclaimable_bytes": report.reclaimable_bytes,
            "files": report.files, "groups": [_group(g, report) for g in chosen]}


def move(ctx: ServeContext, tier: str, keys: Sequence[str]) -> dict:
    if ctx.quarantine is None:
        raise ApiError(400, "no quarantine folder: start the server with `mcphotos serve --quarantine DIR`")
    lib = ctx.library
    with ctx.lock:
        groups = _chosen(ctx, tier, keys)
        moves = lib.plan_moves(groups, ctx.quarantine)
        result = lib.move_duplicates(moves, ctx.quarantine)
        ctx.actions.append(Action("move", journal=result.journal))
    return {"journal": result.journal, "moved": result.done, "companions": result.companions,
            "bytes": result.bytes, "failed": _failed(result)}


def hardlink(ctx: ServeContext, tier: str, keys: Sequence[str]) -> dict:
    lib = ctx.library
    with ctx.lock:
        groups = _chosen(ctx, tier, keys)
        if any(str(g.tier) != "exact" for g in groups):
            raise ApiError(400, "hard links only replace exact duplicates (the same bytes): use tier=exact")
        result = lib.hardlink_duplicates(groups)
        ctx.actions.append(Action("hardlink", journal=result.journal))
    return {"journal": result.journal, "linked": result.done, "bytes": result.bytes, "failed": _failed(result)}


def dismiss(ctx: ServeContext, tier: str, keys: Sequence[str]) -> dict:
    """"Not duplicates": every pair of contents in each group, remembered in the store (CLI dedup honours it)."""
    lib = ctx.library
    with ctx.lock:
        groups = _chosen(ctx, tier, keys)
        if any(len({m.hash for m in g.members}) < 2 for g in groups):
            raise ApiError(400, "these files have identical bytes: copies of one photo are always duplicates")
        report = lib.dismiss(groups=groups)
        ctx.actions.append(Action("dismiss", pairs=list(report.pairs)))
    return {"dismissed_pairs": len(report.pairs), "already": report.already}


def undo(ctx: ServeContext, journal: str | None) -> dict:
    """Reverse one of this server's actions: the one with ``journal``, or else the last one."""
    lib = ctx.library
    with ctx.lock:
        if not ctx.actions:
            raise ApiError(404, "nothing to undo: this server has not changed anything yet")
        if journal is None:
            action = ctx.actions[-1]
        else:
            found = [a for a in ctx.actions if a.journal is not None and os.path.abspath(journal) == a.journal]
            if not found:
                raise ApiError(404, "not a journal this server wrote: undo it with `mcphotos undo JOURNAL`")
            action = found[-1]
        if action.journal is None:  # a dismissal: forget exactly the pairs it added
            restored = lib.undismiss(action.pairs)
            ctx.actions.remove(action)
            return {"undone": action.kind, "journal": None, "restored": restored, "already": 0, "failed": []}
        result = lib.undo(action.journal)
        ctx.actions.remove(action)
    return {"undone": action.kind, "journal": result.journal, "restored": result.done, "already": result.already,
            "failed": _failed(result)}


# -- internals -------------------------------------------------------------------------------------


def _report(ctx: ServeContext, tier: str) -> DedupReport:
    """``dedup``'s report for ``tier``, computed again only once the store has changed (an action
    here, an index, a move or a dismissal from the CLI)."""
    with ctx.lock:
        store = ctx.library.store(create=False)
        kept = ctx.dedup_reports.get(tier)
        if kept is not None and kept[0] == store.generation():
            return kept[1]
        report = ctx.library.dedup(tier=tier)
        ctx.dedup_reports[tier] = (store.generation(), report)  # after: what dedup itself wrote is in it
        return report


def _chosen(ctx: ServeContext, tier: str, keys: Sequence[str]) -> list[Group]:
    """The current groups named by ``keys``, or a 409 (acting on none) when any is gone."""
    if not keys:
        raise ApiError(400, "no groups named: give their keys")
    current = {group_key(g): g for g in _report(ctx, tier).groups}
    gone = [k for k in keys if k not in current]
    if gone:
        raise ApiError(409, f"{len(gone)} of the {len(keys)} groups changed since they were listed: reload the page")
    return [current[k] for k in dict.fromkeys(keys)]


def _group(g: Group, report: DedupReport) -> dict:
    return {"key": group_key(g), "tier": str(g.tier), "reason": _why(g, report), "keeper_reason": g.reason,
            "members": [_member(m) for m in g.members]}


def _why(g: Group, report: DedupReport) -> str:
    """Why these files are one group, in the words of ``dedup``'s summary."""
    if str(g.tier) == "exact":
        return "identical bytes"
    if str(g.tier) == "near":
        bits = max((m.hamming for m in g.duplicates if m.hamming is not None), default=None)
        return "the same picture" + (f" (pHash within {bits} bits)" if bits is not None else "")
    cos = min((m.cosine for m in g.duplicates if m.cosine is not None), default=None)
    return "the same scene" + (f" (cosine {cos:.3f} or more)" if cos is not None else "")


def _member(m: Any) -> dict:
    return {"id": m.hash, "path": m.path, "name": os.path.basename(m.path), "role": str(m.role),
            "tier": str(m.tier), "size": m.size, "width": m.width, "height": m.height,
            "format": file_format(m.path), "taken": m.taken_at, "hamming": m.hamming,
            "cosine": None if m.cosine is None else round(float(m.cosine), 4), "via": m.via}


def _failed(result: ActionReport) -> list[dict]:
    return [{"path": p, "reason": r} for p, r in result.skipped]
