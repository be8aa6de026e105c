"""Real-browser tests of the web app: Debian's chromium driven by Playwright, never a browser download.

- ``chromium()``: the system browser's path; missing, it fails under CI=true and skips otherwise.
- ``gallery(root)``: a small photo library: coloured shapes (the tiny CLIP's world, so a text query
  has right answers) and three scenes with copies (exact, resized, re-coloured) for dedup.
- ``ServeProcess``: the real ``mcphotos serve`` in a subprocess on a free port, stopped with SIGTERM.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from PIL import Image, ImageEnhance

from tests.support import tinyclip
from tests.support.scenes import scene
from tests.support.tools import require_module, require_tool

SYSTEM_CHROMIUM = "/usr/bin/chromium"  # Debian's package (.ci/run installs it with apt)
COLORS = ("red", "green", "blue", "yellow")
SHAPE_SIZE = 256  # drawn larger than the model's input: the thumbnails look like photos, not icons


def chromium() -> str:
    """The system chromium, and Playwright importable: fail under CI=true, skip elsewhere."""
    require_module("playwright.sync_api", "test")
    if os.access(SYSTEM_CHROMIUM, os.X_OK):
        return SYSTEM_CHROMIUM
    return require_tool("chromium", "the web app's tests run in a real browser")


def launch_args() -> list[str]:
    """Chromium refuses its sandbox as root (containers, CI): run without it there only."""
    return ["--no-sandbox"] if os.geteuid() == 0 else []


def _with_date(img: Image.Image, path: Path, taken: str, **save: object) -> Path:
    """Save a JPEG carrying EXIF DateTimeOriginal ``taken`` ("2024:07:14 18:32:10")."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = taken
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", exif=exif.tobytes(), **save)
    return path


def gallery(root: Path) -> dict[str, Path]:
    """Write the library under ``root``; returns the duplicate files by name (see the module doc).

    Groups (near tier): beach (original, an exact copy in backup/, a half-size version),
    lake (original and a re-coloured edit), forest (original and a half-size version).
    """
    (root / "shapes").mkdir(parents=True, exist_ok=True)
    for ci, color in enumerate(COLORS):
        for si, shape in enumerate(tinyclip.SHAPES):
            for k in range(2):
                rng = random.Random(7000 + 100 * ci + 10 * si + k)
                img = tinyclip.draw_shape(color, shape, size=SHAPE_SIZE, rng=rng)
                img.save(root / "shapes" / f"{color} {shape} {k}.png")
    beach, lake, forest = scene(11, (800, 600)), scene(12, (800, 600)), scene(13, (800, 600))
    files = {
        "beach": _with_date(beach, root / "trips" / "beach.jpg", "2024:07:14 18:32:10", quality=92),
        "beach-small": _with_date(beach.resize((400, 300), Image.Resampling.LANCZOS),
                                  root / "phone" / "beach-small.jpg", "2024:07:14 18:32:10", quality=80),
        "lake": _with_date(lake, root / "trips" / "lake.jpg", "2024:08:02 09:05:44", quality=92),
        "lake-edit": _with_date(ImageEnhance.Color(lake).enhance(1.15), root / "edits" / "lake-edit.jpg",
                                "2024:08:02 09:05:44", quality=88),
        "forest": _with_date(forest, root / "trips" / "forest.jpg", "2024:09:21 16:40:03", quality=92),
        "forest-small": _with_date(forest.resize((400, 300), Image.Resampling.LANCZOS),
                                   root / "phone" / "forest-small.jpg", "2024:09:21 16:40:03", quality=80),
    }
    files["beach-copy"] = root / "backup" / "beach.jpg"
    files["beach-copy"].parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(files["beach"], files["beach-copy"])
    return files


class ServeProcess:
    """``mcphotos serve --port 0 --no-browser ARGS`` until the ``with`` block ends; ``url`` has the token."""

    def __init__(self, args: Sequence[str], env: dict[str, str], startup_s: float = 60.0) -> None:
        self.args = [sys.executable, "-m", "mcphotos", "serve", "--port", "0", "--no-browser", *args]
        self.env = env
        self.startup_s = startup_s
        self.url = ""
        self.stderr: list[str] = []

    def __enter__(self) -> ServeProcess:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=self.env)
        threading.Thread(target=self._drain, daemon=True).start()
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(self.startup_s)
        if not line or not line[0].startswith("http://"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"mcphotos serve did not print its URL: {line!r}\n" + "".join(self.stderr))
        self.url = line[0].strip()
        return self

    def _drain(self) -> None:
        for text in self.proc.stderr:  # type: ignore[union-attr]
            self.stderr.append(text)

    @property
    def origin(self) -> str:
        return self.url.split("/?", 1)[0]

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
