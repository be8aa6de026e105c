"""Helpers for the tests of ``mcphotos serve``: an app over a library, a client that passes the guards."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

TOKEN = "test-token-" + "x" * 40
PORT = 8123
ORIGIN = f"http://127.0.0.1:{PORT}"


def client_for(library: Any, tmp_path: Path, *, quarantine: Path | None = None, auth: bool = True,
               max_upload_bytes: int = 25 * 1024 * 1024, thumbs: Any = None) -> Any:
    """A Starlette TestClient of ``create_app(library)``, at the server's own origin, with the Bearer token."""
    from starlette.testclient import TestClient

    from mcphotos.serve.app import create_app
    from mcphotos.serve.thumbs import ThumbnailCache

    app = create_app(library, TOKEN, "127.0.0.1", PORT, str(quarantine) if quarantine else None,
                     thumbs=thumbs or ThumbnailCache(tmp_path / "thumbs", workers=1),
                     max_upload_bytes=max_upload_bytes)
    headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
    return TestClient(app, base_url=ORIGIN, headers=headers)


def bomb_png(width: int = 40_000, height: int = 40_000) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb's shape)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
