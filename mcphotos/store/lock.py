"""The one-writer rule for a store, as an OS file lock."""

from __future__ import annotations

from pathlib import Path

from mcphotos.errors import StoreLockedError


class WriterLock:
    """The one-writer rule, as an OS file lock: released by the kernel if the holder dies."""

    def __init__(self, path: Path) -> None:
        from filelock import FileLock

        self.path = path
        self._lock = FileLock(str(path))

    def acquire(self, wait: float = 0.0) -> None:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=wait)
        except Timeout:
            raise StoreLockedError(
                f"another mcphotos process is writing to the store at {self.path.parent}",
                "wait for it to finish; searches keep working meanwhile",
            ) from None

    def try_acquire(self) -> bool:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=0)
            return True
        except Timeout:
            return False

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
