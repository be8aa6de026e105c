"""Inline image previews in the terminal: the kitty graphics protocol or iTerm2's, else nothing.

Detection reads the environment only (no terminal queries, which hang on some terminals):

- kitty protocol: ``TERM=xterm-kitty``, ``KITTY_WINDOW_ID``, or Ghostty (``TERM_PROGRAM=ghostty``);
- iTerm2 protocol: ``TERM_PROGRAM`` iTerm.app or WezTerm, or ``LC_TERMINAL=iTerm2``;
- ``MCPHOTOS_PREVIEW=kitty|iterm|none`` overrides detection.

Inside tmux or screen, or when stdout is not a terminal, there is no preview: escape codes
in a pipe would corrupt the results. The caller then shows the plain table (the fallback).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Mapping
from typing import TextIO

from PIL import Image

KITTY = "kitty"
ITERM = "iterm"
CHUNK = 4096  # kitty's maximum payload per escape sequence


def detect(env: Mapping[str, str] | None = None, is_tty: bool = True) -> str | None:
    """The image protocol the terminal speaks, or None."""
    env = os.environ if env is None else env
    forced = env.get("MCPHOTOS_PREVIEW", "").strip().lower()
    if forced in (KITTY, ITERM):
        return forced
    if forced in ("none", "off", "0"):
        return None
    if not is_tty or env.get("TMUX") or env.get("TERM", "").startswith("screen"):
        return None
    if env.get("TERM") == "xterm-kitty" or env.get("KITTY_WINDOW_ID") or env.get("TERM_PROGRAM") == "ghostty":
        return KITTY
    if env.get("TERM_PROGRAM") in ("iTerm.app", "WezTerm") or env.get("LC_TERMINAL") == "iTerm2":
        return ITERM
    return None


def encode(img: Image.Image, protocol: str, rows: int = 6) -> str:
    """The escape sequence that draws ``img`` at the cursor, about ``rows`` text rows high."""
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG")
    data = base64.standard_b64encode(buf.getvalue()).decode("ascii")
    if protocol == ITERM:
        return f"\x1b]1337;File=inline=1;size={len(buf.getvalue())};height={rows};preserveAspectRatio=1:{data}\x07"
    if protocol == KITTY:
        parts = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
        out = []
        for i, part in enumerate(parts):
            more = 1 if i < len(parts) - 1 else 0
            head = f"a=T,f=100,r={rows},q=2,m={more}" if i == 0 else f"m={more}"
            out.append(f"\x1b_G{head};{part}\x1b\\")
        return "".join(out)
    raise ValueError(f"unknown preview protocol {protocol!r}")


def show(img: Image.Image, protocol: str, out: TextIO, rows: int = 6) -> None:
    out.write(encode(img, protocol, rows) + "\n")
