"""One exception hierarchy for mcphotos.

Every error the core raises on purpose derives from :class:`McPhotosError`. The CLI
translates each one into a single stderr line and an exit code, so a user never sees a
traceback for a condition we anticipated.
"""

from __future__ import annotations


class McPhotosError(Exception):
    """Base class. ``message`` says what went wrong, ``hint`` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(McPhotosError):
    """The user asked for something malformed: exit code 2, like a bad option."""

    exit_code = 2


class ModelLoadError(McPhotosError):
    """The model could not be built or its weights could not be loaded."""


class StoreError(McPhotosError):
    """The store cannot be opened or used."""


class StoreVersionError(StoreError):
    """The store was written by a newer mcphotos."""


class StoreLockedError(StoreError):
    """Another process holds the writer lock."""


class OcrUnavailableError(McPhotosError):
    """Text recognition was asked for but its optional extra (mcphotos[ocr]) or models are missing."""


class ImageError(McPhotosError):
    """One image could not be read; the indexer records it and moves on."""


class Interrupted(McPhotosError):
    """The run was interrupted (Ctrl-C); committed work is kept."""

    exit_code = 130
