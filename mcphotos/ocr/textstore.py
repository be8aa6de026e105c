"""Recognized text in the store (table ``ocr``, one row per content hash) and the text search.

``--contains`` values are turned into an FTS5 query by :func:`fts_query`, never passed through
raw, so a word such as ``AND``, ``4711-A`` or a stray ``"`` is searched for, not parsed:

- a bare word matches that word (``lidl``), case and diacritics folded (``cafe`` finds ``Café``);
- ``word*`` matches words starting with it (``invo*``);
- ``"two words"`` matches the phrase, in order and adjacent (``"invoice 4711"``); ``"total 12"*``
  ends in a prefix;
- every word and phrase of every ``--contains`` must match (AND).

The index tokenizes as SQLite's ``unicode61`` does: letters and digits make words, anything else
separates them, so ``wi-fi`` is the phrase ``wi fi`` and ``12.50`` the phrase ``12 50``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mcphotos.errors import UsageError
from mcphotos.ocr.engine import OcrLine, OcrResult
from mcphotos.store.database import Store
from mcphotos.store.sql import chunks

log = logging.getLogger(__name__)

SNIPPET_OPEN, SNIPPET_CLOSE = "[", "]"  # around each matched word in a snippet
SNIPPET_WORDS = 12


@dataclass(frozen=True)
class StoredText:
    """One photo's stored recognition: the result (lines empty: no text), or why it failed."""

    hash: str
    result: OcrResult
    error: str | None = None


@dataclass(frozen=True)
class TextMatch:
    """A photo whose text matches: its BM25 relevance (higher is better) and the matching passage."""

    image_id: int
    hash: str
    score: float
    snippet: str


# -- writing ---------------------------------------------------------------------------------------


def put_results(store: Store, results: Iterable[tuple[str, OcrResult]]) -> None:
    """Store (hash, result) pairs, replacing earlier rows. Call inside a transaction."""
    now = time.time()
    store.conn.executemany(
        "INSERT INTO ocr(hash, engine, version, models, text, lines, confidence, error, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?) ON CONFLICT(hash) DO UPDATE SET engine = excluded.engine, "
        "version = excluded.version, models = excluded.models, text = excluded.text, lines = excluded.lines, "
        "confidence = excluded.confidence, error = NULL, created_at = excluded.created_at",
        [(h, r.engine, r.version, r.models, r.text, json.dumps([line.to_dict() for line in r.lines]),
          r.confidence, now) for h, r in results],
    )


def put_failures(store: Store, failures: Iterable[tuple[str, str]], engine: str, version: str) -> None:
    """Record (hash, reason) pairs for photos that could not be read. Call inside a transaction."""
    now = time.time()
    store.conn.executemany(
        "INSERT INTO ocr(hash, engine, version, models, text, lines, confidence, error, created_at) "
        "VALUES (?, ?, ?, '', '', '[]', NULL, ?, ?) ON CONFLICT(hash) DO UPDATE SET error = excluded.error, "
        "text = '', lines = '[]', confidence = NULL, created_at = excluded.created_at",
        [(h, engine, version, reason, now) for h, reason in failures],
    )


# -- reading ---------------------------------------------------------------------------------------


def done_hashes(store: Store, hashes: Iterable[str], retry_failed: bool = False) -> set[str]:
    """Which of ``hashes`` need no recognition: a row exists (one that failed counts unless ``retry_failed``)."""
    found: set[str] = set()
    cond = " AND error IS NULL" if retry_failed else ""
    for part, marks in chunks(list(hashes)):
        found.update(r[0] for r in store.conn.execute(f"SELECT hash FROM ocr WHERE hash IN ({marks}){cond}", part))
    return found


def stored_texts(store: Store, hashes: Iterable[str]) -> dict[str, StoredText]:
    """The stored recognition of each of ``hashes`` that has one."""
    out: dict[str, StoredText] = {}
    for part, marks in chunks(list(dict.fromkeys(hashes))):
        q = f"SELECT hash, engine, version, models, lines, error FROM ocr WHERE hash IN ({marks})"
        for h, engine, version, models, lines, error in store.conn.execute(q, part):
            parsed = tuple(OcrLine.from_dict(d) for d in json.loads(lines))
            out[h] = StoredText(h, OcrResult(parsed, engine, version, models), error)
    return out


@dataclass(frozen=True)
class OcrCounts:
    photos: int  # distinct contents with a row
    with_text: int
    failed: int


def counts(store: Store) -> OcrCounts:
    n, text, failed = store.conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(text != ''), 0), COALESCE(SUM(error IS NOT NULL), 0) FROM ocr").fetchone()
    return OcrCounts(n, text, failed)


# -- searching -------------------------------------------------------------------------------------


def fts_query(values: Sequence[str]) -> str:
    """The FTS5 MATCH expression for ``--contains`` values (see the module docstring)."""
    parts: list[str] = []
    for value in values:
        items = _split_terms(value)
        if not items:
            raise UsageError(f"--contains {value!r} has no words in it",
                             "e.g. --contains lidl --contains '\"invoice 4711\"'")
        parts += items
    return " AND ".join(parts)


def _split_terms(value: str) -> list[str]:
    """FTS5 strings for one value: bare words and quoted phrases, each with its optional ``*``."""
    out: list[str] = []
    i, n = 0, len(value)
    while i < n:
        ch = value[i]
        if ch.isspace():
            i += 1
            continue
        if ch == '"':
            end = value.find('"', i + 1)
            if end < 0:
                raise UsageError(f"unterminated double quote in --contains {value!r}", 'close it: "like this"')
            body, i = value[i + 1:end], end + 1
        else:
            j = i
            while j < n and not value[j].isspace() and value[j] != '"':
                j += 1
            body, i = value[i:j], j
        prefix = body.endswith("*") or (i < n and value[i] == "*")
        if i < n and value[i] == "*":
            i += 1
        body = body.rstrip("*")
        if not any(c.isalnum() for c in body):
            continue  # punctuation alone: the tokenizer keeps no word of it
        out.append('"' + body.replace('"', '""') + '"' + ("*" if prefix else ""))
    return out


def text_matches(store: Store, values: Sequence[str]) -> dict[int, TextMatch]:
    """image id -> match, for the photos whose recognized text matches every ``--contains`` value."""
    query = fts_query(values)
    if store.conn.execute("SELECT 1 FROM ocr LIMIT 1").fetchone() is None:
        log.warning("no photo's text has been read yet: run `mcphotos ocr` (or `mcphotos index --ocr`) first")
    sql = (f"SELECT images.id, ocr.hash, bm25(ocr_fts), snippet(ocr_fts, 0, '{SNIPPET_OPEN}', '{SNIPPET_CLOSE}', "
           f"'…', {SNIPPET_WORDS}) FROM ocr_fts JOIN ocr ON ocr.id = ocr_fts.rowid "
           "JOIN images ON images.hash = ocr.hash WHERE ocr_fts MATCH ?")
    out: dict[int, TextMatch] = {}
    for image_id, h, rank, snippet in store.conn.execute(sql, (query,)):
        # bm25() is smaller for better matches; flipped so that, like cosine, higher is better.
        out[image_id] = TextMatch(image_id, h, -float(rank), " ".join(str(snippet).split()))
    return out


def hashes_with_words(store: Store, words: Sequence[str], among: Sequence[str] | None = None) -> dict[str, set[str]]:
    """word -> the content hashes whose text contains it (tagging's ``text:`` evidence)."""
    wanted = set(among) if among is not None else None
    out: dict[str, set[str]] = {}
    for word in dict.fromkeys(words):
        query = fts_query([word])
        rows = store.conn.execute("SELECT ocr.hash FROM ocr_fts JOIN ocr ON ocr.id = ocr_fts.rowid "
                                  "WHERE ocr_fts MATCH ?", (query,))
        out[word] = {r[0] for r in rows if wanted is None or r[0] in wanted}
    return out
