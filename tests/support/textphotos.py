"""Photos with text rendered in them, for the OCR tests (real RapidOCR models read them back).

The font is DejaVu Sans from Debian's fonts-dejavu-core (.ci/run installs it): Pillow's built-in
font has no accented letters, and "cafe" finding "Café" needs an é. Missing, it skips the test,
and under CI=true fails it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from tests.support.tools import under_ci

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/TTF", "/usr/share/fonts/dejavu")
FONT_FILE = "DejaVuSans.ttf"


def font(size: int = 24) -> ImageFont.FreeTypeFont:
    for d in FONT_DIRS:
        path = Path(d) / FONT_FILE
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    message = f"{FONT_FILE} not found (apt-get install fonts-dejavu-core)"
    if under_ci():
        pytest.fail(f"{message}. CI=true: a missing font fails instead of skipping", pytrace=False)
    pytest.skip(message)


def text_photo(path: Path, lines: list[str], size: int = 24, bg: str = "white", fg: str = "black",
               fmt: str | None = None, width: int = 360) -> Path:
    """A small image with ``lines`` of text, one under the other."""
    f = font(size)
    pad = size // 2
    img = Image.new("RGB", (width, 2 * pad + int(size * 1.5) * len(lines)), bg)
    draw = ImageDraw.Draw(img)
    for i, line in enumerate(lines):
        draw.text((pad, pad + int(size * 1.5) * i), line, font=f, fill=fg)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def blank_photo(path: Path, color: tuple[int, int, int] = (40, 120, 200), size: tuple[int, int] = (300, 200)) -> Path:
    """A photo without text: a smooth two-colour gradient."""
    import numpy as np

    w, h = size
    t = np.linspace(0, 1, w, dtype=np.float32)[None, :, None]
    a, b = np.array(color, np.float32), np.array(color[::-1], np.float32)
    pixels = np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def scene_with_text(size: tuple[int, int], text_px: int, lines: list[str]) -> bytes:
    """A large photo-like JPEG (a gradient) with a small block of dark text on a light card
    (``text_px``: the font size; no ``lines``: no card either)."""
    import io

    import numpy as np

    w, h = size
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    pixels = np.broadcast_to(np.array([70, 110, 160]) * (1 - t) + np.array([160, 130, 90]) * t, (h, w, 3))
    img = Image.fromarray(pixels.astype(np.uint8))
    if lines:
        f = font(text_px)
        card_w = int(max(f.getlength(line) for line in lines)) + 2 * text_px
        card_h = int(1.5 * text_px) * len(lines) + 2 * text_px
        x0, y0 = int(w * 0.6), int(h * 0.3)
        d = ImageDraw.Draw(img)
        d.rectangle((x0, y0, x0 + card_w, y0 + card_h), fill=(248, 246, 238))
        for i, line in enumerate(lines):
            d.text((x0 + text_px, y0 + text_px + int(1.5 * text_px) * i), line, font=f, fill=(20, 20, 30))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()
