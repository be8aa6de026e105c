"""The torch-free tokenizer gives open_clip's token ids, string for string."""

from __future__ import annotations

import random

import numpy as np
import pytest

from mcphotos.models.registry import entries
from mcphotos.models.tokenizer import ClipTokenizer, build_bpe, open_clip_vocab_path

WORDS = ["photo", "dog", "Cat", "BEACH", "sunset", "receipt", "naïve", "café", "Zürich", "straße", "don't",
         "it's", "we'll", "they're", "I'm", "you've", "she'd", "ÉCOLE", "İstanbul", "ǅemal", "ﬁsh", "Ωmega"]
ENTITIES = ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&eacute;", "&#x1F600;", "&nbsp;", "&amp;amp;", "&copy;",
            "&notanentity;", "&#0;", "&#xD800;"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇩🇪", "❤️", "🐶", "🍕", "✈︎", "🫠"]
SCRIPTS = [(0x4E00, 0x9FFF), (0x0600, 0x06FF), (0x0400, 0x04FF), (0x0900, 0x097F), (0x3040, 0x30FF),
           (0xAC00, 0xD7A3), (0x0300, 0x036F), (0x2000, 0x206F), (0x0E00, 0x0E7F), (0x1F300, 0x1FAFF),
           (0x20, 0x7E), (0xA0, 0x24F)]
PUNCTUATION = "!?.,;:-_()[]{}'\"/\\@#$%^&*+=~`|<>"
SPECIALS = ["<start_of_text>", "<end_of_text>", "<START_OF_TEXT>", "x<<start_of_text>", "<end_of_text>>"]


def random_strings(n: int, seed: int = 0) -> list[str]:
    """Unicode, emoji, mixed case, HTML entities, text longer than the context, empty and blank."""
    rng = random.Random(seed)
    out = ["", " ", "\t\n", "a", "A", "'s", "1234567890", " ".join(WORDS * 8)]
    while len(out) < n:
        parts = []
        for _ in range(rng.choice([1, 2, 3, 5, 8, 20, 60])):
            kind = rng.random()
            if kind < 0.35:
                w = rng.choice(WORDS)
                parts.append(rng.choice([w, w.upper(), w.lower(), w.title(), w.swapcase()]))
            elif kind < 0.5:
                lo, hi = rng.choice(SCRIPTS)
                parts.append("".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6))))
            elif kind < 0.6:
                parts.append(rng.choice(ENTITIES))
            elif kind < 0.7:
                parts.append(rng.choice(EMOJI))
            elif kind < 0.8:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 9))))
            elif kind < 0.85:
                parts.append(rng.choice(SPECIALS))
            else:
                parts.append("".join(rng.choice(PUNCTUATION) for _ in range(rng.randint(1, 4))))
        out.append(rng.choice(["", " ", "  ", "\n", "", ""]).join(parts) if rng.random() < 0.3 else " ".join(parts))
    return out[:n]


@pytest.fixture(scope="module")
def bpe():
    return build_bpe(open_clip_vocab_path())


def test_ids_match_open_clip_on_10000_strings(bpe):
    import open_clip

    reference = open_clip.get_tokenizer("MobileCLIP2-S0")
    ours = ClipTokenizer(bpe, reference.context_length)
    texts = random_strings(10_000)
    assert len({t for t in texts}) > 9_000
    expected = reference(texts).numpy()
    got = ours(texts)
    mismatched = [texts[i] for i in np.flatnonzero((expected != got).any(axis=1))]
    assert not mismatched, f"{len(mismatched)} strings differ, e.g. {mismatched[:3]!r}"
    # Long texts really were truncated, with the end token forced into the last place.
    long_rows = got[:, -1] != 0
    assert long_rows.sum() > 100 and (got[long_rows, -1] == ours.eot).all()


def test_every_registry_model_uses_this_tokenizer(bpe, tmp_path):
    """Each known model's open_clip tokenizer is SimpleTokenizer with the same vocabulary and cleaning."""
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    texts = random_strings(300, seed=1)
    for e in entries("clip"):
        reference = open_clip.get_tokenizer(e.name)
        assert isinstance(reference, SimpleTokenizer) and reference.reduction_fn is None, e.name
        ours = ClipTokenizer(bpe, reference.context_length)
        assert (ours(texts) == reference(texts).numpy()).all(), e.name


def test_saved_tokenizer_loads_identically_at_another_context(bpe, tmp_path):
    import open_clip

    path = tmp_path / "tokenizer.json"
    ClipTokenizer(bpe, 77).save(path)
    short = ClipTokenizer.from_file(path, 16)  # the tiny CLIP's context
    texts = random_strings(500, seed=2)
    assert (short(texts) == open_clip.tokenizer.SimpleTokenizer(context_length=16)(texts).numpy()).all()


def test_plain_ascii_shortcut_matches_open_clip(bpe):
    """Printable ASCII skips ftfy (models/tokenizer.py): every such string still tokenizes the same."""
    import string

    import open_clip

    rng = random.Random(3)
    alphabet = string.ascii_letters + string.digits + string.punctuation.replace("&", "") + "    "
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120))) for _ in range(3000)]
    texts += [" ".join(rng.choice(WORDS[:9]) for _ in range(rng.randint(1, 30))) for _ in range(1000)]
    reference = open_clip.get_tokenizer("MobileCLIP2-S0")
    assert (ClipTokenizer(bpe, 77)(texts) == reference(texts).numpy()).all()
