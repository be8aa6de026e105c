"""Index a tree on the test run's Ray runtime from a child process (for the kill -9 test).

usage: python -m tests.support.ray_index_driver GCS_ADDRESS HOME ROOT   (from the repository root)
"""

from __future__ import annotations

import sys

import ray

from mcphotos.distributed.pipeline import RayOptions
from mcphotos.indexing.indexer import IndexOptions
from mcphotos.library import Library
from tests.support.fakes import SPEC, FakeEncoder

if __name__ == "__main__":
    address, home, root = sys.argv[1:4]
    ray.init(address=address, include_dashboard=False, log_to_driver=False)
    with Library(home=home, engine_factory=FakeEncoder, preprocess=SPEC) as lib:
        report = lib.index([root], options=IndexOptions(batch_size=4), ray=RayOptions(batch_size=4))
    print(report.new, report.embedded)
