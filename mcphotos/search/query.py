"""The combined-query syntax: weighted text and image terms, added and subtracted.

A query is a sequence of terms joined by ``+`` and ``-``::

    beach + sunset - people + 2*@~/Pictures/IMG_1.jpg

- A term is text (``sunset``, ``a red bicycle``) or an image: ``@PATH``.
- ``+`` and ``-`` are operators only at the start of the query or after whitespace, so
  hyphenated words (``black-and-white``, ``t-shirt``) stay text. ``red -circle`` and
  ``red - circle`` mean the same.
- A weight ``N*`` may prefix a term: ``2*sunset``, ``0.5*@photo.jpg`` (``N×`` works too).
- Double quotes protect anything, operators included: ``"rock - paper" + @"my pics/a.jpg"``.

The vector searched for is the weighted sum of the terms' unit embeddings, renormalized::

    q = Σ sᵢ·wᵢ·eᵢ / ‖Σ sᵢ·wᵢ·eᵢ‖      (sᵢ = ±1 from the operator, wᵢ the weight)

Each eᵢ is L2-normalized first, so a long caption does not outweigh a short one and a
photo counts as much as a sentence. Terms that cancel out exactly are an error.

This module is pure: it parses and combines, it never loads a model or reads a file.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcphotos.enums import StrEnum, parse_choice
from mcphotos.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

_WEIGHT = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*[*×]\s*")


class TermKind(StrEnum):
    """What a query term is: words, or an example photo (``@PATH``)."""

    TEXT = "text"
    IMAGE = "image"


@dataclass(frozen=True, init=False)
class Term:
    """One term: ``kind`` is text or image; ``value`` the text or the image path."""

    kind: TermKind
    value: str
    weight: float = 1.0  # signed: negative for a subtracted term

    def __init__(self, kind: TermKind | str, value: str, weight: float = 1.0) -> None:
        """``kind`` takes a :class:`TermKind` or its value ("text", "image")."""
        object.__setattr__(self, "kind", parse_choice(TermKind, kind, "query term kind"))
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "weight", weight)

    def describe(self) -> str:
        sign = "-" if self.weight < 0 else "+"
        mag = abs(self.weight)
        w = "" if mag == 1 else f"{mag:g}*"
        v = _quoted(self.value)
        return f"{sign} {w}{'@' if self.kind is TermKind.IMAGE else ''}{v}"


def parse_query(text: str) -> list[Term]:
    """Parse the combined syntax into terms. Raises UsageError on malformed input."""
    terms: list[Term] = []
    for sign, chunk in _split(text):
        terms.append(_term(sign, chunk, text))
    if not terms:
        raise UsageError("the query is empty", "give some words, or an image as @PATH")
    return terms


def describe(terms: Sequence[Term]) -> str:
    """A canonical one-line form of ``terms`` (parses back to the same terms)."""
    return " ".join(t.describe() for t in terms).removeprefix("+ ")


def combine(vectors: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    """Weighted sum of the (re-normalized) rows of ``vectors``, normalized to unit length."""
    import numpy as np  # here, not above: a find answered by the warm server never combines

    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or len(v) != len(weights) or len(v) == 0:
        raise ValueError("one weight per vector, at least one vector")
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    total = (np.asarray(weights, dtype=np.float64)[:, None] * unit).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-6:
        raise UsageError("the query's terms cancel each other out", "change a weight or drop a term")
    return (total / norm).astype(np.float32)


def _quoted(value: str) -> str:
    """``value`` in double quotes when it would not parse back as one plain term."""
    risky = any(c.isspace() for c in value) and any(c in "+-" for c in value)
    risky = risky or value[:1] in "+-@*" or bool(_WEIGHT.match(value))
    return f'"{value}"' if risky else value


# -- parsing internals ---------------------------------------------------------------------------


def _split(text: str) -> list[tuple[int, str]]:
    """Split at top-level operators into (sign, raw term) pairs, keeping quotes in the terms."""
    out: list[tuple[int, str]] = []
    sign = 1
    buf: list[str] = []
    pending_op = False  # an operator was read and still needs its term
    in_quote = False
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            in_quote = not in_quote
            buf.append(ch)
        elif not in_quote and ch in "+-" and (i == 0 or text[i - 1].isspace()):
            raw = "".join(buf).strip()
            if raw:
                out.append((sign, raw))
            elif pending_op:
                raise UsageError(f"two operators in a row at column {i + 1} of {text!r}",
                                 "write a term between them, e.g. 'beach + sunset - people'")
            buf = []
            sign = 1 if ch == "+" else -1
            pending_op = True
        else:
            buf.append(ch)
        i += 1
    if in_quote:
        raise UsageError(f"unterminated double quote in {text!r}", 'close it: "like this"')
    raw = "".join(buf).strip()
    if raw:
        out.append((sign, raw))
    elif pending_op:
        raise UsageError(f"the query {text!r} ends with an operator", "add a term after the last + or -")
    return out


def _term(sign: int, raw: str, whole: str) -> Term:
    weight = 1.0
    m = _WEIGHT.match(raw)
    if m:
        weight = float(m.group(1))
        raw = raw[m.end():]
        if not raw.strip():
            raise UsageError(f"the weight {m.group(1)}* in {whole!r} has no term after it",
                             "write e.g. 2*sunset or 2*@photo.jpg")
        if weight == 0:
            raise UsageError(f"a term in {whole!r} has weight 0", "drop the term instead")
    elif re.match(r"\s*[*×]", raw):
        raise UsageError(f"'*' without a number in {whole!r}", "weights go before a term: 2*sunset")
    raw = raw.strip()
    if raw.startswith("@"):
        path = _unquote(raw[1:].strip(), whole)
        if not path:
            raise UsageError(f"'@' without a path in {whole!r}", "write @PATH, e.g. @~/Pictures/a.jpg")
        return Term(TermKind.IMAGE, path, sign * weight)
    value = _unquote(raw, whole)
    if not value:
        raise UsageError(f"an empty term in {whole!r}", "remove the empty quotes")
    return Term(TermKind.TEXT, value, sign * weight)


def _unquote(raw: str, whole: str) -> str:
    """Remove the quotes of quoted parts; text outside quotes is kept as written."""
    if '"' not in raw:
        return raw.strip()
    return raw.replace('"', "").strip()


# -- a whole find request: terms, filters and cut-off (what `album save` stores) ----------------


@dataclass(frozen=True)
class FindSpec:
    """Everything a search needs besides the store; JSON-serializable for saved albums.

    ``images`` are absolute paths of ``--image`` examples, each a ``+1`` term.
    """

    text: str | None = None
    images: tuple[str, ...] = ()
    k: int = 20
    in_dirs: tuple[str, ...] = ()
    exts: tuple[str, ...] = ()
    after: str | None = None
    before: str | None = None
    tags: tuple[str, ...] = ()
    min_score: float | None = None
    relative: float | None = None
    auto_cut: bool = False
    contains: tuple[str, ...] = ()  # words the photo's recognized text must hold (ocr/textstore.py)

    def terms(self) -> list[Term]:
        terms = parse_query(self.text) if self.text and self.text.strip() else []
        terms += [Term(TermKind.IMAGE, p, 1.0) for p in self.images]
        if not terms and not self.tags and not self.contains:
            raise UsageError("nothing to search for", "give a QUERY, --image PHOTO, --tag TAG or --contains WORDS")
        return terms  # empty only for a search by tags or text alone

    def to_dict(self) -> dict[str, Any]:
        d = {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}
        return {k: v for k, v in d.items() if v not in (None, [], False)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FindSpec:
        """The spec :meth:`to_dict` wrote (parsed JSON); keys it does not know are ignored."""
        known = set(cls.__dataclass_fields__)
        fields: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in known}
        return cls(**fields)

    def summary(self) -> str:
        """One line for `album list`: the query and its filters, as the CLI would spell them."""
        parts = [describe(self.terms())] if self.text or self.images else []
        parts += [f"--in {d}" for d in self.in_dirs] + [f"--ext {e.lstrip('.')}" for e in self.exts]
        parts += [f"--tag {t}" for t in self.tags]
        parts += [f"--contains {_shell_word(c)}" for c in self.contains]
        for flag, value in (("--after", self.after), ("--before", self.before), ("--min-score", self.min_score),
                            ("--relative", self.relative)):
            if value is not None:
                parts.append(f"{flag} {value}")
        if self.auto_cut:
            parts.append("--auto-cut")
        parts.append(f"-k {self.k}")
        return " ".join(parts)


def _shell_word(value: str) -> str:
    """``value`` as one shell word: quoted when it holds spaces or quotes."""
    return value if value and not any(c.isspace() or c in "\"'\\$`" for c in value) else \
        "'" + value.replace("'", "'\\''") + "'"


_DATE_FORMATS = (("%Y", 4), ("%Y-%m", 7), ("%Y-%m-%d", 10))


def parse_date(value: str, flag: str = "--after") -> str:
    """A user's date (2024, 2024-06, 2024-06-30, 2024-06-30T18:00) as the ISO string filters compare.

    A partial date means its first moment: ``--after 2024`` is from 2024-01-01T00:00:00 on,
    ``--before 2024`` ends just before it.
    """
    from datetime import datetime

    v = value.strip()
    for fmt, length in _DATE_FORMATS:
        if len(v) == length:
            try:
                return datetime.strptime(v, fmt).isoformat(timespec="seconds")
            except ValueError:
                break
    try:
        dt = datetime.fromisoformat(v.replace(" ", "T"))
    except ValueError:
        raise UsageError(f"{flag} {value!r} is not a date", "use YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDTHH:MM") \
            from None
    if dt.tzinfo is not None:  # capture times are naive local times; compare like with like
        dt = dt.astimezone().replace(tzinfo=None)
    return dt.isoformat(timespec="seconds")


# ``--ext jpg`` also matches the other spellings of the same format.
_EXT_ALIASES = {".jpg": (".jpg", ".jpeg", ".jpe"), ".jpeg": (".jpg", ".jpeg", ".jpe"),
                ".tif": (".tif", ".tiff"), ".tiff": (".tif", ".tiff"), ".heic": (".heic", ".heif"),
                ".heif": (".heic", ".heif")}


def parse_exts(values: Sequence[str]) -> tuple[str, ...]:
    """``["jpg", ".PNG", "heic,webp"]`` -> lower-case extensions with a dot, aliases included."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            e = part.strip().lower()
            if not e:
                continue
            e = e if e.startswith(".") else "." + e
            if len(e) < 2 or "/" in e or "*" in e:
                raise UsageError(f"--ext {part!r} is not a file extension", "e.g. --ext jpg --ext heic")
            out += _EXT_ALIASES.get(e, (e,))
    return tuple(dict.fromkeys(out))
