"""Index a tree with the fake encoder in a child process (for kill and interrupt tests).

usage: python tests/index_driver.py HOME ROOT
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from fakes import SPEC, FakeEncoder

from mcphotos.indexer import IndexOptions
from mcphotos.library import Library

if __name__ == "__main__":
    home, root = sys.argv[1], sys.argv[2]
    with Library(home=home, engine_factory=FakeEncoder, preprocess=SPEC) as lib:
        report = lib.index([root], options=IndexOptions(batch_size=4, workers=2))
    print(report.new, report.reused, report.unchanged, report.failed, report.removed)
