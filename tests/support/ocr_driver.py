"""Run an OCR pass over an indexed store in a child process (for the kill -9 test).

usage: python -m tests.support.ocr_driver HOME ROOT   (from the repository root)
"""

from __future__ import annotations

import sys

from mcphotos.library import Library
from mcphotos.ocr.runner import OcrOptions
from tests.support.fakes import SPEC, FakeEncoder

if __name__ == "__main__":
    home, root = sys.argv[1], sys.argv[2]
    with Library(home=home, engine_factory=FakeEncoder, preprocess=SPEC) as lib:
        report = lib.ocr([root], options=OcrOptions(batch_size=1, workers=1))
    print(report.read, report.already, report.failed)
