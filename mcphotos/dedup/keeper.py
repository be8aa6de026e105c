"""Which copy of a duplicate group to keep, and why, in words a user can check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from mcphotos.units import human_bytes

KEEP_POLICIES = ("largest", "oldest", "newest", "shortest-path")


def _pixels(cat: Any, f: int) -> int:
    img = int(cat.file_image[f])
    return (cat.widths[img] or 0) * (cat.heights[img] or 0)


def _date(cat: Any, f: int) -> tuple[float, str]:
    """(timestamp, description): EXIF capture time when present, else the file's mtime."""
    img = int(cat.file_image[f])
    ts = float(cat.taken_ts[img])
    if ts == ts:  # not NaN
        return ts, f"taken {cat.taken_at[img]}"
    mtime = int(cat.mtimes[f]) / 1e9
    return mtime, f"modified {datetime.fromtimestamp(mtime).isoformat(timespec='seconds')}"


def choose_keeper(cat: Any, files: list[int], policy: str) -> tuple[int, str]:
    """(file, reason). Ties fall through to the largest picture, then the largest file, then the path."""

    def size_key(f: int) -> tuple:
        return (-_pixels(cat, f), -int(cat.sizes[f]), len(cat.paths[f]), cat.paths[f])

    if policy == "largest":
        ranked = sorted(files, key=size_key)
    elif policy in ("oldest", "newest"):
        sign = 1 if policy == "oldest" else -1
        ranked = sorted(files, key=lambda f: (sign * _date(cat, f)[0], *size_key(f)))
    elif policy == "shortest-path":
        ranked = sorted(files, key=lambda f: (len(cat.paths[f]), *size_key(f)))
    else:  # validated by the caller
        raise ValueError(policy)
    best, runner = ranked[0], ranked[1]
    return best, _reason(cat, policy, best, runner)


def _reason(cat: Any, policy: str, best: int, runner: int) -> str:
    img = int(cat.file_image[best])
    dims = f"{cat.widths[img]}x{cat.heights[img]}" if cat.widths[img] else "size unknown"
    if policy in ("oldest", "newest") and _date(cat, best)[0] != _date(cat, runner)[0]:
        return f"{policy}: {_date(cat, best)[1]}"
    if policy == "shortest-path" and len(cat.paths[best]) != len(cat.paths[runner]):
        return f"shortest path ({len(cat.paths[best])} characters)"
    prefix = "" if policy == "largest" else "tie, then "
    if _pixels(cat, best) != _pixels(cat, runner):
        return f"{prefix}most pixels: {dims}"
    if int(cat.sizes[best]) != int(cat.sizes[runner]):
        return f"{prefix}same pixels ({dims}), largest file: {human_bytes(int(cat.sizes[best]))}"
    return f"{prefix}identical size ({dims}, {human_bytes(int(cat.sizes[best]))}): shortest path"
