"""Label sets for zero-shot tagging: the file format, the shipped sets, name resolution.

A label file is plain UTF-8 text, one label per line::

    # Animals people photograph.          <- a comment; the first one describes the set
    animals/dog                           <- a hierarchical label: levels separated by '/'
    animals/cat = a photo of a cat | a cat sleeping on a sofa   <- the label's own prompts

``#`` starts a comment anywhere on a line; blank lines are ignored. A label without prompts is
embedded through :data:`TEMPLATES` ("a photo of a {}." ...) with its last level filled in; a
prompt may contain ``{}`` too. A label's prompts are averaged in embedding space (see tagging/scoring.py).

A prompt written ``text: word, word`` is not a prompt but words that raise the label when the
photo's recognized text (``mcphotos ocr``) holds them: ``receipt = a photo of a receipt | text: total,
subtotal, vat``. The words are matched like ``find --contains`` (case and accents folded, ``word*``
a prefix, ``"two words"`` a phrase); the rule is in tagging/scoring.py (:func:`text_evidence`).

``@background = prompt | prompt`` replaces the generic background prompts that multi-label mode
weighs each label against (tagging.py). Scores are then comparable only with sets that share
that background; the shipped sets keep the default.

Every problem is a :class:`~mcphotos.errors.UsageError` naming ``file:line``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mcphotos.errors import UsageError

# The prompt ensemble for labels without their own prompts, in CLIP zero-shot practice
# (Radford et al. 2021, sec. 3.1.4): several phrasings of "a photo of X", averaged, are more
# robust than the bare word. These fit personal photos (not ImageNet's "origami"/"video game").
TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a close-up photo of a {}.",
    "a cropped photo of the {}.",
    "a bright photo of a {}.",
    "a dark photo of the {}.",
    "a blurry photo of a {}.",
    "a good photo of a {}.",
)

MAX_LABEL_LENGTH = 200
SHIPPED_PACKAGE = "mcphotos.tagging"
SHIPPED_DIR = "label_sets"


@dataclass(frozen=True)
class Label:
    name: str                      # "animals/dog": levels joined by '/'
    prompts: tuple[str, ...] = ()  # the label's own prompts; empty means TEMPLATES
    line: int = 0
    words: tuple[str, ...] = ()    # "text:" words: found in the photo's text, they raise the label

    @property
    def levels(self) -> tuple[str, ...]:
        return tuple(self.name.split("/"))

    @property
    def leaf(self) -> str:
        return self.levels[-1]

    def prompt_texts(self, templates: tuple[str, ...] = TEMPLATES) -> list[str]:
        """The texts whose embeddings are averaged into this label's embedding."""
        return [p.replace("{}", self.leaf) for p in (self.prompts or templates)]


@dataclass(frozen=True)
class LabelSet:
    name: str          # what tags are stored under: the shipped name or the file's stem
    source: str        # the file it came from
    labels: tuple[Label, ...]
    description: str = ""
    background: tuple[str, ...] = ()  # own background prompts (@background); empty: the default

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class ShippedSet:
    name: str
    path: Path
    labels: int
    description: str


def parse_labels(text: str, source: str, name: str | None = None) -> LabelSet:
    """Parse the text of a label file; ``source`` is used in error messages (``source:line``)."""
    labels: list[Label] = []
    seen: dict[str, int] = {}
    description = ""
    background: tuple[str, ...] = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        where = f"{source}:{number}"
        body, hash_, comment = raw.partition("#")
        if hash_ and not description and not labels and not body.strip():
            description = comment.strip()
        line = body.strip()
        if not line:
            continue
        label_part, eq, prompt_part = line.partition("=")
        directive = label_part.strip().startswith("@")
        label_name = label_part.strip() if directive else _check_name(label_part, where)
        prompts: tuple[str, ...] = ()
        if eq:
            prompts = tuple(p.strip() for p in prompt_part.split("|"))
            if not prompt_part.strip():
                raise UsageError(f"{where}: '=' must be followed by prompts, e.g. "
                                 f"'{label_name} = a photo of a ... | another prompt'")
            if any(not p for p in prompts):
                raise UsageError(f"{where}: empty prompt in the '|'-separated list")
        words: tuple[str, ...] = ()
        if any(p.lower().startswith("text:") for p in prompts):
            words = tuple(w.strip() for p in prompts if p.lower().startswith("text:") for w in p[5:].split(","))
            prompts = tuple(p for p in prompts if not p.lower().startswith("text:"))
            if directive:
                raise UsageError(f"{where}: 'text:' words belong to a label, not to {label_name}")
            if any(not w for w in words):
                raise UsageError(f"{where}: empty word after 'text:' (write 'text: total, subtotal, vat')")
        if directive:
            if label_name != "@background" or not prompts:
                raise UsageError(f"{where}: unknown directive '{label_name}' "
                                 "(the only one is '@background = prompt | prompt')")
            if background:
                raise UsageError(f"{where}: @background is given twice")
            background = prompts
            continue
        key = label_name.casefold()
        if key in seen:
            raise UsageError(f"{where}: label '{label_name}' is already defined on line {seen[key]}")
        seen[key] = number
        labels.append(Label(label_name, prompts, number, words))
    if not labels:
        raise UsageError(f"{source}: no labels (one label per line; '#' starts a comment)")
    set_name = name or Path(source).stem
    return LabelSet(set_name, source, tuple(labels), description, background)


def _check_name(raw: str, where: str) -> str:
    levels = [level.strip() for level in raw.split("/")]
    if not raw.strip():
        raise UsageError(f"{where}: missing label name before '='")
    if any(not level for level in levels):
        raise UsageError(f"{where}: empty level in hierarchical label '{raw.strip()}' "
                         "(write levels as 'animals/dog')")
    name = "/".join(" ".join(level.split()) for level in levels)
    if "|" in name:
        raise UsageError(f"{where}: '|' is not allowed in a label name (it separates prompts after '=')")
    if len(name) > MAX_LABEL_LENGTH:
        raise UsageError(f"{where}: label is longer than {MAX_LABEL_LENGTH} characters")
    if not name.isprintable():
        raise UsageError(f"{where}: label contains control characters")
    return name


def load_label_file(path: str | os.PathLike[str], name: str | None = None) -> LabelSet:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read label file {p}: {e.strerror or e}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise UsageError(f"{p}:{line}: not valid UTF-8") from None
    return parse_labels(text, str(p), name)


def shipped_dir() -> Path:
    return Path(str(resources.files(SHIPPED_PACKAGE).joinpath(SHIPPED_DIR)))


def shipped_sets() -> list[ShippedSet]:
    out = []
    for path in sorted(shipped_dir().glob("*.txt")):
        ls = load_label_file(path)
        out.append(ShippedSet(path.stem, path, len(ls), ls.description))
    return out


def shipped_path(name: str) -> Path | None:
    stem = name[:-4] if name.endswith(".txt") else name
    if not stem or "/" in stem or os.sep in stem or stem.startswith("."):
        return None
    path = shipped_dir() / f"{stem}.txt"
    return path if path.is_file() else None


def resolve_labels(spec: str) -> LabelSet:
    """``--labels X``: a path first, then the name of a shipped set, with or without ``.txt``."""
    expanded = os.path.expanduser(spec)
    if os.path.isfile(expanded):
        return load_label_file(expanded)
    if os.path.isdir(expanded):
        raise UsageError(f"--labels {spec}: is a directory, not a label file")
    shipped = shipped_path(spec)
    if shipped is not None:
        return load_label_file(shipped)
    names = ", ".join(s.stem for s in sorted(shipped_dir().glob("*.txt")))
    raise UsageError(f"no label file and no shipped label set named {spec!r}",
                     f"shipped sets: {names}; see `mcphotos labels`")


def set_name(spec: str) -> str:
    """The stored name of a set given as on the command line (a label file or a shipped name)."""
    expanded = os.path.expanduser(spec)
    if os.path.isfile(expanded):
        return Path(expanded).stem
    return spec[:-4] if spec.endswith(".txt") else spec
