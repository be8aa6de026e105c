"""Helpers for the warm-model tests: a short private runtime dir, a CLI run in a fresh process that
reports what it imported, and a stand-in peer that listens on a store's socket but is no server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a CLI process that goes through the warm server must never open itself. A text find through
# it imports not even numpy or Pillow: those were a fifth of such a find's whole-process time.
HEAVY = ("onnxruntime", "torch", "open_clip", "hnswlib", "numpy", "PIL")
_WRAPPER = """
import atexit, json, os, runpy, sys
def _report():
    with open(os.environ["MCPHOTOS_TEST_MODULES"], "w") as f:
        json.dump([m for m in {heavy!r} if m in sys.modules], f)
atexit.register(_report)
sys.argv = ["mcphotos", *sys.argv[1:]]
runpy.run_module("mcphotos", run_name="__main__", alter_sys=True)
"""


def short_runtime_dir() -> Path:
    """A private folder under /tmp to stand for $XDG_RUNTIME_DIR: short enough for a socket path
    (a pytest tmp_path can exceed sun_path's 108 bytes)."""
    return Path(tempfile.mkdtemp(prefix="mcw", dir="/tmp"))


@dataclass
class CliRun:
    code: int
    stdout: str
    stderr: str
    modules: list[str]  # the HEAVY modules the process imported

    def json_lines(self) -> list[dict]:
        return [json.loads(x) for x in self.stdout.splitlines() if x.strip()]


def run_cli(args: list[str], env: dict[str, str], tmp: Path, cwd: Path | None = None) -> CliRun:
    """``mcphotos ARGS`` in a fresh interpreter (as a user runs it), with the imports it made."""
    report = Path(tempfile.mkstemp(dir=tmp, suffix=".json")[1])
    full = {**os.environ, **env, "MCPHOTOS_TEST_MODULES": str(report),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", _WRAPPER.format(heavy=HEAVY), *args], env=full,
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=300)
    modules = json.loads(report.read_text() or "[]") if report.stat().st_size else []
    return CliRun(proc.returncode, proc.stdout, proc.stderr, modules)


class FakePeer:
    """Listens on ``path`` and answers each line with ``reply(request)`` (None: never answers).

    It stands for a process that is not this store's server (another identity, a hung peer), to
    show the client leaves it alone; it counts the requests it saw."""

    def __init__(self, path: Path, reply: Callable[[dict], dict | None]) -> None:
        self.path, self.reply = path, reply
        self.seen: list[dict] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(os.fspath(path))
        os.chmod(path, 0o600)
        self.sock.listen(4)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            for line in f:
                request = json.loads(line)
                self.seen.append(request)
                out = self.reply(request)
                if out is None:
                    self._stop.wait(5)
                    return
                f.write(json.dumps(out).encode() + b"\n")
                f.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()
        if self.path.exists():
            self.path.unlink()
