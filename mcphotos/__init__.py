"""mcphotos: organize your own photos locally with Apple's MobileCLIP2.

The library API (no torch is imported until a model is needed)::

    from mcphotos import Library
    with Library() as lib:
        report = lib.index(["~/Pictures"])
        hits = lib.find("a receipt", k=5)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from mcphotos.errors import McPhotosError
    from mcphotos.indexing.indexer import IndexOptions, IndexReport
    from mcphotos.library import Library
    from mcphotos.search.nearest import SearchHit

_LAZY = {
    "Library": ".library",
    "IndexOptions": ".indexing.indexer",
    "IndexReport": ".indexing.indexer",
    "SearchHit": ".search.nearest",
    "McPhotosError": ".errors",
}


def __getattr__(name: str) -> Any:
    # Lazy, so `import mcphotos` stays instant for the CLI's --help.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


__all__ = ["IndexOptions", "IndexReport", "Library", "McPhotosError", "SearchHit", "__version__"]
