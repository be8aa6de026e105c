"""External programs some tests read results back with (exiftool), and optional extras' packages
(rawpy): skipped where missing, except under CI=true, where a missing one fails the test, since CI
proves what a new machine sees."""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType

import pytest

INSTALL_HINTS = {
    "exiftool": "apt-get install libimage-exiftool-perl; macOS: brew install exiftool",
    "chromium": "apt-get install chromium (Debian's browser; Playwright never downloads one here)",
}


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")  # as conftest.IN_CI


def require_tool(name: str, why: str = "") -> str:
    """The path of program ``name``; if it is not on PATH: fail under CI=true, skip otherwise."""
    path = shutil.which(name)
    if path:
        return path
    message = f"{name} not installed ({INSTALL_HINTS.get(name, f'install {name}')})" + (f": {why}" if why else "")
    if under_ci():
        pytest.fail(f"{message}. CI=true: a missing tool fails instead of skipping", pytrace=False)
    pytest.skip(message)


def require_module(name: str, extra: str) -> ModuleType:
    """The Python module ``name`` of the optional extra ``extra``: fail under CI=true, skip otherwise."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} not installed (pip install 'mcphotos[{extra}]'; the test extra includes it)"
    if under_ci():
        pytest.fail(f"{message}. CI=true: a missing package fails instead of skipping", pytrace=False)
    pytest.skip(message)
