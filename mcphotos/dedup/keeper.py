"""Which copy of a duplicate group to keep, and why, in words a user can check."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from mcphotos.dedup.choices import KeepPolicy
from mcphotos.enums import parse_choice
from mcphotos.units import human_bytes

if TYPE_CHECKING:
    from mcphotos.dedup.catalog import Catalog

KEEP_POLICIES: tuple[KeepPolicy, ...] = tuple(KeepPolicy)


def parse_policy(policy: KeepPolicy | str) -> KeepPolicy:
    """``policy`` as a :class:`KeepPolicy`; UsageError for anything else."""
    return parse_choice(KeepPolicy, policy, "keeper policy", f"use one of {', '.join(KEEP_POLICIES)}")


def _pixels(cat: Catalog, f: int) -> int:
    img = int(cat.file_image[f])
    return (cat.widths[img] or 0) * (cat.heights[img] or 0)


def _date(cat: Catalog, f: int) -> tuple[float, str]:
    """(timestamp, description): EXIF capture time when present, else the file's mtime."""
    img = int(cat.file_image[f])
    ts = float(cat.taken_ts[img])
    if ts == ts:  # not NaN
        return ts, f"taken {cat.taken_at[img]}"
    mtime = int(cat.mtimes[f]) / 1e9
    return mtime, f"modified {datetime.fromtimestamp(mtime).isoformat(timespec='seconds')}"


def choose_keeper(cat: Catalog, files: list[int], policy: KeepPolicy | str) -> tuple[int, str]:
    """(file, reason). Ties fall through to the largest picture, then the largest file, then the path."""
    policy = parse_policy(policy)

    def size_key(f: int) -> tuple[int, int, int, str]:
        return (-_pixels(cat, f), -int(cat.sizes[f]), len(cat.paths[f]), cat.paths[f])

    if policy is KeepPolicy.LARGEST:
        ranked = sorted(files, key=size_key)
    elif policy in (KeepPolicy.OLDEST, KeepPolicy.NEWEST):
        sign = 1 if policy is KeepPolicy.OLDEST else -1
        ranked = sorted(files, key=lambda f: (sign * _date(cat, f)[0], *size_key(f)))
    else:
        ranked = sorted(files, key=lambda f: (len(cat.paths[f]), *size_key(f)))
    best, runner = ranked[0], ranked[1]
    return best, _reason(cat, policy, best, runner)


def _reason(cat: Catalog, policy: KeepPolicy, best: int, runner: int) -> str:
    img = int(cat.file_image[best])
    dims = f"{cat.widths[img]}x{cat.heights[img]}" if cat.widths[img] else "size unknown"
    if policy in (KeepPolicy.OLDEST, KeepPolicy.NEWEST) and _date(cat, best)[0] != _date(cat, runner)[0]:
        return f"{policy}: {_date(cat, best)[1]}"
    if policy is KeepPolicy.SHORTEST_PATH and len(cat.paths[best]) != len(cat.paths[runner]):
        return f"shortest path ({len(cat.paths[best])} characters)"
    prefix = "" if policy is KeepPolicy.LARGEST else "tie, then "
    if _pixels(cat, best) != _pixels(cat, runner):
        return f"{prefix}most pixels: {dims}"
    if int(cat.sizes[best]) != int(cat.sizes[runner]):
        return f"{prefix}same pixels ({dims}), largest file: {human_bytes(int(cat.sizes[best]))}"
    return f"{prefix}identical size ({dims}, {human_bytes(int(cat.sizes[best]))}): shortest path"
