"""String enums for the fixed choices (dedup tiers, tagging modes, ...), and their parsing.

A member *is* its string value: it compares equal to it, hashes like it, formats as it and is
written as it to JSON and SQLite, so stored and printed values stay the plain strings. Python 3.10
has no ``enum.StrEnum``; the small base below behaves the same for what mcphotos uses.
"""

from __future__ import annotations

import sys
from enum import Enum
from typing import TypeVar

from mcphotos.errors import UsageError

if sys.version_info >= (3, 11):
    from enum import StrEnum
else:  # pragma: no cover - exercised on Python 3.10 only

    class StrEnum(str, Enum):
        """``enum.StrEnum`` of Python 3.11: ``str()`` and ``format()`` give the value."""

        def __str__(self) -> str:
            return str.__str__(self)

        def __format__(self, format_spec: str) -> str:
            return str.__format__(str.__str__(self), format_spec)


__all__ = ["StrEnum", "choices_text", "parse_choice"]

E = TypeVar("E", bound=StrEnum)


def choices_text(cls: type[StrEnum]) -> str:
    """The values of ``cls`` for a hint: ``"exact, near or similar"``."""
    values = [m.value for m in cls]
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def parse_choice(cls: type[E], value: object, what: str, hint: str | None = None) -> E:
    """``value`` (a member, or its string value) as a member of ``cls``.

    Anything else raises :class:`UsageError` ``unknown <what> '<value>'`` with ``hint``
    (default: the valid values).
    """
    if isinstance(value, cls):
        return value
    raw = value.value if isinstance(value, Enum) else value  # another enum spelling the same value
    try:
        return cls(raw)
    except ValueError:
        raise UsageError(f"unknown {what} {raw!r}", hint or f"use {choices_text(cls)}") from None
