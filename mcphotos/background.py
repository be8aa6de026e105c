"""A value built once, in a background thread, so other work goes on while it loads.

The indexer loads the model this way while the first photos decode, and the ONNX engine opens
its sessions and tokenizer this way while the store opens. ``get()`` waits for the value and
re-raises, in the caller's thread, whatever building it raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Background(Generic[T]):
    def __init__(self, build: Callable[[], T], name: str = "loader", daemon: bool = True) -> None:
        self._build = build
        self._name = name
        self._daemon = daemon
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._value: T | None = None
        self._error: BaseException | None = None

    def start(self) -> None:
        with self._lock:
            if self._thread is None and self._value is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=self._daemon)
                self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._build()
        except BaseException as e:  # re-raised by get() in the caller's thread
            self._error = e

    def get(self) -> T:
        if self._value is None:
            self.start()
            assert self._thread is not None
            self._thread.join()
            if self._error is not None:
                raise self._error
        assert self._value is not None
        return self._value
