"""Task functions for worker-pool tests; they run in spawned worker processes."""

from __future__ import annotations

import os
import signal
import time


def misbehave(item: str) -> str:
    if item == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)  # what a C decoder bug looks like
    if item == "hang":
        time.sleep(600)
    return f"ok:{item}"
