"""``mcphotos serve``: a local web app over one store (search, duplicate review), kept off the network.

Modules, each owning one thing:

- ``security.py``: the token, and the guards every request passes (Host, token, same origin, headers);
- ``context.py``: what the routes share (the library behind one lock, uploads, the last action);
- ``app.py``: ``create_app``, the Starlette app: pages, static files, and the routes of
- ``searching.py`` (status, search, photo, upload), ``duplicates.py`` (groups and their actions, undo)
  and ``media.py`` (thumbnails and views by content hash, from ``thumbs.py``'s cache);
- ``runfile.py``: the 0600 file naming a running server (token, port, pid);
- ``server.py``: uvicorn on a loopback socket, the URL line, clean stop on Ctrl-C and SIGTERM.

Only ``server.py`` and ``app.py`` import starlette or uvicorn (``pip install mcphotos[serve]``);
nothing here imports torch. docs/serve-api.md is the contract with the pages in ``static/``.
"""

from __future__ import annotations

EXTRA_MISSING = "mcphotos serve needs its extra: pip install 'mcphotos[serve]'"


def serve_support() -> str | None:
    """None when starlette, uvicorn and python-multipart import, else the one line to show."""
    import importlib

    for module in ("starlette", "uvicorn", "multipart"):
        try:
            importlib.import_module(module)
        except ImportError:
            return f"{EXTRA_MISSING} ({module} is missing)"
    return None
