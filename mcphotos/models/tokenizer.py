"""CLIP's tokenizer without torch: open_clip's ``SimpleTokenizer``, rebuilt on Hugging Face ``tokenizers``.

The BPE itself is the ``tokenizers`` library's (Rust), built from the vocabulary file open_clip
ships (``bpe_simple_vocab_16e6.txt.gz``) exactly as ``SimpleTokenizer.__init__`` builds its
tables. What stays in Python is the part of open_clip's ``encode`` around the BPE, kept
identical so the token ids are too (checked on 10,000 strings in tests/models/test_tokenizer.py):

1. cleaning: ``ftfy.fix_text``, HTML entities unescaped twice, whitespace collapsed, lower case;
2. the pre-tokenizing regex, with the special tokens first, run by the same ``regex`` module;
3. a word that is a special token maps to its id; the others go through byte-level BPE;
4. ``[sot] + ids + [eot]``, truncated to the context with the last id forced to ``eot``, zero padded.
"""

from __future__ import annotations

import gzip
import html
import importlib.util
import os
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from mcphotos.errors import ModelLoadError

SPECIAL_TOKENS = ("<start_of_text>", "<end_of_text>")
# open_clip reads merges[1 : 49152 - 256 - 2 + 1] of its vocabulary file (the first line is a header).
MERGES = 49152 - 256 - 2
WORD_PATTERN = r"""|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""


def open_clip_vocab_path() -> str:
    """The BPE vocabulary file inside the installed open_clip package, found without importing it."""
    spec = importlib.util.find_spec("open_clip")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = os.path.join(folder, "bpe_simple_vocab_16e6.txt.gz")
        if os.path.isfile(path):
            return path
    raise ModelLoadError("open_clip's BPE vocabulary is not installed", "pip install open_clip_torch")


def byte_alphabet() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table, which CLIP's vocabulary is written in."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(keep, map(chr, chars), strict=True))


def build_bpe(vocab_path: str) -> Any:
    """A ``tokenizers.Tokenizer`` with SimpleTokenizer's vocabulary, merges and ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    with gzip.open(vocab_path) as f:
        lines = f.read().decode("utf-8").split("\n")[1:MERGES + 1]
    merges = [(a, b) for a, b in (line.split() for line in lines)]
    chars = list(byte_alphabet().values())
    vocab = [*chars, *(c + "</w>" for c in chars), *("".join(m) for m in merges), *SPECIAL_TOKENS]
    bpe = models.BPE(vocab={v: i for i, v in enumerate(vocab)}, merges=merges, end_of_word_suffix="</w>",
                     continuing_subword_prefix="", fuse_unk=False)
    tok = Tokenizer(bpe)
    # Words arrive already split (step 2); only the byte → character mapping is left to do.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return tok


@lru_cache(maxsize=1)
def _ftfy() -> Any:
    import ftfy

    return ftfy


@lru_cache(maxsize=1)
def _word_regex(specials: tuple[str, ...]) -> Any:
    import regex

    return regex.compile("|".join(specials) + WORD_PATTERN, regex.IGNORECASE)


def _needs_ftfy(text: str) -> bool:
    """False for plain printable ASCII with no entity, which ``ftfy.fix_text`` returns unchanged.

    Importing ftfy costs ~0.1 s (its wcwidth tables), a sixth of a new query's budget, and most
    queries are plain ASCII words. Every fix ftfy makes needs a non-ASCII character, a control
    character or an HTML entity; the 10,000-string test checks the shortcut against open_clip.
    """
    return not (text.isascii() and text.isprintable() and "&" not in text)


def clean(text: str) -> str:
    """open_clip's ``_clean_lower``."""
    if _needs_ftfy(text):
        text = _ftfy().fix_text(text)
    text = html.unescape(html.unescape(text)).strip()
    return " ".join(text.split()).strip().lower()


class ClipTokenizer:
    """Texts → (N, context_length) int64 token ids, as open_clip's ``SimpleTokenizer`` gives them."""

    def __init__(self, bpe: Any, context_length: int) -> None:
        self._bpe = bpe
        self.context_length = context_length
        self._special = {t: bpe.token_to_id(t) for t in SPECIAL_TOKENS}
        self.sot, self.eot = self._special[SPECIAL_TOKENS[0]], self._special[SPECIAL_TOKENS[1]]

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], context_length: int) -> ClipTokenizer:
        """Load a tokenizer saved by :meth:`save` (``tokenizer.json`` of a prepared runtime)."""
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(str(path)), context_length)

    def save(self, path: str | os.PathLike[str]) -> None:
        self._bpe.save(str(path))

    def encode(self, text: str) -> list[int]:
        """The ids of ``text`` without start and end tokens (``SimpleTokenizer.encode``)."""
        ids: list[int] = []
        run: list[str] = []
        for word in _word_regex(SPECIAL_TOKENS).findall(clean(text)):
            special = self._special.get(word)
            if special is None:
                run.append(word)
                continue
            ids.extend(self._bpe_ids(run))
            run = []
            ids.append(special)
        ids.extend(self._bpe_ids(run))
        return ids

    def _bpe_ids(self, words: list[str]) -> list[int]:
        if not words:
            return []
        return list(self._bpe.encode(words, is_pretokenized=True, add_special_tokens=False).ids)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot, *self.encode(text), self.eot]
            if len(ids) > self.context_length:
                ids = ids[:self.context_length]
                ids[-1] = self.eot
            out[row, :len(ids)] = ids
        return out
