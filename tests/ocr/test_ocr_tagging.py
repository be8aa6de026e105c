"""`tag` with "text:" words: recognized text raises a label by the documented noisy-OR rule.

The image side is the tiny trained CLIP (it knows colours and shapes, not receipts), the text
side the real OCR engine: the test checks the rule exactly, p' = 1 - (1 - p)·0.5^n, by tagging
the same photos with the same prompts with and without the words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcphotos import Library
from mcphotos.errors import UsageError
from mcphotos.ocr.engine import load_engine
from mcphotos.tagging.labels import parse_labels
from mcphotos.tagging.scoring import TEXT_WEIGHT, text_evidence
from mcphotos.tagging.tagger import TagMode, TagOptions
from tests.support.textphotos import blank_photo, text_photo

PROMPTS = "receipt = a white square | a photo of a white square{}\nsign = a blue circle{}\n"
BACKGROUND = "@background = a black circle | a black square\n"


def test_text_words_parse_and_stay_optional() -> None:
    ls = parse_labels("receipt = a photo of a receipt | text: total, subtotal, vat\nsky\n", "x.txt")
    receipt, sky = ls.labels
    assert (receipt.prompts, receipt.words) == (("a photo of a receipt",), ("total", "subtotal", "vat"))
    assert (sky.prompts, sky.words) == ((), ())
    only_words = parse_labels("receipt = text: total\n", "x.txt").labels[0]
    assert (only_words.prompts, only_words.words) == ((), ("total",))  # the templates embed "receipt"
    with pytest.raises(UsageError, match=r"x\.txt:1: empty word"):
        parse_labels("receipt = a receipt | text: total,,vat\n", "x.txt")
    with pytest.raises(UsageError, match="belong to a label"):
        parse_labels("@background = a wall | text: total\ndog\n", "x.txt")


def test_text_evidence_is_noisy_or() -> None:
    p = np.array([[0.1, 0.6]], dtype=np.float32)
    assert np.allclose(text_evidence(p, np.array([[0.0, 0.0]])), p)
    assert np.allclose(text_evidence(p, np.array([[1.0, 2.0]])), [[1 - 0.9 * TEXT_WEIGHT, 1 - 0.4 * TEXT_WEIGHT ** 2]])


def test_recognized_words_raise_labels(tmp_path: Path, tiny_clip: tuple[Path, Path]) -> None:
    pics = tmp_path / "pics"
    text_photo(pics / "receipt.png", ["SUBTOTAL 9.90", "VAT 1.88", "TOTAL 11.78"])
    text_photo(pics / "platform.png", ["Platform 9"])
    blank_photo(pics / "sky.png")
    cfg, weights = tiny_clip
    load_engine()
    with Library(home=tmp_path / "home", model=str(cfg), weights=str(weights)) as lib:
        lib.index([str(pics)])
        lib.ocr()
        everything = TagOptions(TagMode.MULTI, threshold=0.0, top_k=None)

        def scores(words_receipt: str, words_sign: str) -> dict[tuple[str, str], float]:
            ls = parse_labels(BACKGROUND + PROMPTS.format(words_receipt, words_sign), "set.txt")
            report = lib.tag(ls, options=everything, dry_run=True)
            return {(Path(p.path).stem, t.label): t.score for p in report.photos for t in p.tags}

        plain = scores("", "")
        raised = scores(" | text: total, subtotal, vat, iban", " | text: platform, gate*")
    assert set(plain) == set(raised) and len(plain) == 6
    found = {("receipt", "receipt"): 3, ("platform", "sign"): 1}  # iban and gate* are in no photo
    for key, p in plain.items():
        n = found.get(key, 0)
        assert raised[key] == pytest.approx(1 - (1 - p) * TEXT_WEIGHT ** n, abs=2e-6), key
    assert raised[("receipt", "receipt")] >= 1 - TEXT_WEIGHT ** 3
    assert raised[("sky", "receipt")] == pytest.approx(plain[("sky", "receipt")], abs=2e-6)
