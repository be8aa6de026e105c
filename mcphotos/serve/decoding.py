"""The server's decode workers: the indexer's crash-isolating pool (indexing/workers.py), shared by threads.

``WorkerPool`` is driven by one caller at a time, so one dispatcher thread owns it: request
threads hand it a task and wait on a future, and everything asked meanwhile runs in the same
round, in parallel across the workers. A task that crashes or hangs its worker fails alone (the
pool restarts and retries the others one by one), answering ``Crashed(reason)``.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from mcphotos.indexing.workers import WorkerPool

WAIT_S = 120.0  # a request waits at most this long (the pool's own timeout per task is shorter)


@dataclass(frozen=True)
class Crashed:
    reason: str  # "the decoder crashed on this file", "decoding took longer than 30 s", ...


def _call(task: tuple[int, Callable[..., Any], tuple]) -> tuple[int, Any]:
    """In a worker: run one task, keyed so the dispatcher finds whose it was."""
    key, fn, args = task
    return key, fn(*args)


class DecodePool:
    def __init__(self, workers: int | None = None, timeout: float = 30.0) -> None:
        self.workers = workers or max(1, min(4, os.cpu_count() or 1))
        self.timeout = timeout
        self._queue: queue.Queue[tuple[int, Callable[..., Any], tuple] | None] = queue.Queue()
        self._futures: dict[int, Future[Any]] = {}
        self._keys = itertools.count()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Future[Any]:
        """``fn(*args)`` in a worker (``fn`` a module-level function): its result, or :class:`Crashed`."""
        fut: Future[Any] = Future()
        with self._lock:
            key = next(self._keys)
            self._futures[key] = fut
            if self._thread is None:
                self._thread = threading.Thread(target=self._dispatch, name="decode-workers", daemon=True)
                self._thread.start()
        self._queue.put((key, fn, args))
        return fut

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``submit`` and wait: the result, or :class:`Crashed`."""
        try:
            return self.submit(fn, *args).result(timeout=WAIT_S)
        except Exception as e:  # the dispatcher itself broke or timed out: this task failed
            return Crashed(f"{type(e).__name__}: {e}")

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _dispatch(self) -> None:
        pool = WorkerPool(self.workers, timeout=self.timeout)
        try:
            while True:
                first = self._queue.get()
                if first is None:
                    return
                batch, stop = [first], False
                while not stop:  # everything asked meanwhile goes in the same round
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is None:
                        stop = True
                    else:
                        batch.append(nxt)
                self._round(pool, batch)
                if stop:
                    return
        finally:
            pool.terminate()

    def _round(self, pool: WorkerPool, batch: list[tuple[int, Callable[..., Any], tuple]]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results = pool.imap_unordered(_call, batch, on_failure=lambda task, why: (task[0], Crashed(why)))
            for key, result in results:
                with self._lock:
                    fut = self._futures.pop(key, None)
                if fut is not None:
                    fut.set_result(result)
