"""Warnings from the core reach the caller through a callback, never through print.

The core warns with :mod:`logging` under the ``mcphotos`` logger ("no pretrained weights:
the model is randomly initialized", "the search index is unreadable and will be rebuilt").
A caller that passes ``on_warning`` (the CLI prints each on stderr) gets every such message
for as long as its :class:`~mcphotos.library.Library` is open, whatever the root logger's
level: the CLI silences third-party chatter at the root, and that must not swallow ours.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

WarningCallback = Callable[[str], None]
LOGGER = "mcphotos"


class _Forward(logging.Handler):
    def __init__(self, callback: WarningCallback) -> None:
        super().__init__(logging.WARNING)
        self.callback = callback

    def emit(self, record: logging.LogRecord) -> None:
        self.callback(record.getMessage())


# The logger's own settings from before the first forwarding opened, restored when the last
# one closes (several libraries may be open at once, closed in any order).
_saved: tuple[int, bool] | None = None


class Forwarding:
    """An open forwarding of the ``mcphotos`` logger's warnings to a callback; ``close()`` ends it."""

    def __init__(self, callback: WarningCallback) -> None:
        global _saved
        logger = logging.getLogger(LOGGER)
        if _saved is None:
            _saved = (logger.level, logger.propagate)
        self._handler = _Forward(callback)
        logger.addHandler(self._handler)
        logger.setLevel(logging.WARNING)
        logger.propagate = False  # the callback speaks for these; no second copy via the root

    def close(self) -> None:
        global _saved
        logger = logging.getLogger(LOGGER)
        logger.removeHandler(self._handler)
        if _saved is not None and not any(isinstance(h, _Forward) for h in logger.handlers):
            logger.setLevel(_saved[0])
            logger.propagate = _saved[1]
            _saved = None
