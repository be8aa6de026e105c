"""The choices of dedup: tiers, member roles, keeper policies and the actions on files.

Kept apart from the finder (no numpy here), so the CLI can offer them cheaply. Each member is
its string value, which is what reports, JSON lines and journals carry.
"""

from __future__ import annotations

from mcphotos.enums import StrEnum


class Tier(StrEnum):
    """How alike duplicates are; each tier includes the ones before it."""

    EXACT = "exact"  # the same bytes
    NEAR = "near"  # the same picture, re-encoded, resized, slightly cropped...
    SIMILAR = "similar"  # another shot of the same scene

    @property
    def rank(self) -> int:
        """0 for exact, 1 for near, 2 for similar: a group's tier is its members' loosest."""
        return list(Tier).index(self)


class Role(StrEnum):
    """A group member's part: the copy to keep, or a duplicate of it."""

    KEEPER = "keeper"
    DUPLICATE = "duplicate"


class KeepPolicy(StrEnum):
    """Which copy of a group to keep."""

    LARGEST = "largest"
    OLDEST = "oldest"
    NEWEST = "newest"
    SHORTEST_PATH = "shortest-path"


class Action(StrEnum):
    """What dedup may do to duplicates: the kind of a journal, and the ``op`` of its entries."""

    MOVE = "move"
    HARDLINK = "hardlink"
