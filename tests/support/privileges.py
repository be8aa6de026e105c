"""Run Python code where file permissions bind, even when the tests run as root.

Root ignores ``chmod 000`` (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a test of an unreadable
folder would prove nothing there. :func:`run_unprivileged` runs the code in a child process that
first drops those two capabilities from its bounding set and re-executes itself: after the exec
the kernel gives root only what the bounding set still holds, so permissions are enforced as
for any user. Where the drop is refused (no CAP_SETPCAP) the test is skipped.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

_DROP = r"""
import ctypes, os, sys
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2
libc = ctypes.CDLL(None, use_errno=True)
for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
    if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
        sys.exit(77)
os.execv(sys.executable, [sys.executable, "-c", os.environ["MCPHOTOS_TEST_CODE"]])
"""


def run_unprivileged(code: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where permissions are enforced; skip where impossible."""
    env = {**os.environ, "MCPHOTOS_TEST_CODE": code,
           "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH"))
                                         if p)}
    argv = [sys.executable, "-c", _DROP] if os.geteuid() == 0 else [sys.executable, "-c", code]
    out = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd)
    if out.returncode == 77:
        pytest.skip("running as root without CAP_SETPCAP: cannot make a folder unreadable")
    assert out.returncode == 0, out.stdout + out.stderr
    return out
