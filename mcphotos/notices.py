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


class Forwarding:
    """An open forwarding of the ``mcphotos`` logger's warnings to a callback; ``close()`` ends it."""

    def __init__(self, callback: WarningCallback) -> None:
        self._logger = logging.getLogger(LOGGER)
        self._handler = _Forward(callback)
        self._level, self._propagate = self._logger.level, self._logger.propagate
        self._logger.addHandler(self._handler)
        self._logger.setLevel(logging.WARNING)
        self._logger.propagate = False  # the callback speaks for these; no second copy via the root

    def close(self) -> None:
        self._logger.removeHandler(self._handler)
        if not any(isinstance(h, _Forward) for h in self._logger.handlers):
            self._logger.setLevel(self._level)
            self._logger.propagate = self._propagate


def forward_warnings(callback: WarningCallback) -> Forwarding:
    return Forwarding(callback)
