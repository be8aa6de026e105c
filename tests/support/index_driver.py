"""Index a tree with the fake encoder in a child process (for kill and interrupt tests).

usage: python -m tests.support.index_driver HOME ROOT   (from the repository root)
"""

from __future__ import annotations

import sys

from mcphotos.indexing.indexer import IndexOptions
from mcphotos.library import Library
from tests.support.fakes import SPEC, FakeEncoder

if __name__ == "__main__":
    home, root = sys.argv[1], sys.argv[2]
    with Library(home=home, engine_factory=FakeEncoder, preprocess=SPEC) as lib:
        report = lib.index([root], options=IndexOptions(batch_size=4, workers=2))
    print(report.new, report.reused, report.unchanged, report.failed, report.removed)
