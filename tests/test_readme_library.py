"""The Library examples, as written in README.md and in the package docstrings, run and do what they say.

The examples are read from the files themselves: the ```python blocks of the README's
``## Library`` section, and the ``::`` literal blocks of the docstrings of ``mcphotos`` and
``mcphotos.library``. Each runs unchanged, with ``HOME`` pointing at a temporary directory whose
``~/Pictures`` holds a few generated photos. The only substitution is the model: the examples
load MobileCLIP2-S0, which cannot be downloaded here, so ``mcphotos.library.Library`` is replaced
by a subclass that loads the suite's tiny trained CLIP instead (and records what the example
asked of it). Then the ``~`` roots the examples indexed are indexed again: nothing is re-hashed.
"""

from __future__ import annotations

import ast
import fnmatch
import inspect
import os
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import mcphotos
import mcphotos.library
from mcphotos.library import Library
from mcphotos.models.registry import resolve_model
from tests.support.photos import photo, shape_photo

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"


# -- extracting the examples --------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    code: str
    line: int  # of the block's first line in its file, so a traceback points at the file itself


def readme_library_blocks(text: str) -> list[Block]:
    """The ```python blocks of the README's ``## Library`` section (up to the next ``## `` heading)."""
    m = re.search(r"^## Library[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "README.md has no '## Library' section"
    return [Block(textwrap.dedent(b.group(1)), text.count("\n", 0, m.start(1) + b.start(1)) + 1)
            for b in re.finditer(r"^```python[ \t]*\n(.*?)^```", m.group(1), re.M | re.S)]


def docstring_blocks(source: str) -> list[Block]:
    """The ``::`` literal blocks of a module docstring that use ``Library``."""
    tree = ast.parse(source)
    doc = ast.get_docstring(tree) or ""
    first = tree.body[0].lineno if doc else 1  # the docstring's first line (not blank) is this one
    lines = doc.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].rstrip().endswith("::"):
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            start = j
            body: list[str] = []
            while j < len(lines) and (not lines[j].strip() or lines[j][:1].isspace()):
                body.append(lines[j])
                j += 1
            block = textwrap.dedent("\n".join(body)).rstrip("\n")
            if "Library" in block:
                blocks.append(Block(block + "\n", first + start))
            i = j
        else:
            i += 1
    return blocks


def _library_module_file() -> Path:
    pkg = REPO / "mcphotos" / "library"
    return pkg / "__init__.py" if pkg.is_dir() else REPO / "mcphotos" / "library.py"


def _examples() -> list[Any]:
    params = [pytest.param(b, README, id=f"README-{i}")
              for i, b in enumerate(readme_library_blocks(README.read_text(encoding="utf-8")))]
    for name, path in (("mcphotos", REPO / "mcphotos" / "__init__.py"), ("library", _library_module_file())):
        params += [pytest.param(b, path, id=f"{name}-docstring-{i}")
                   for i, b in enumerate(docstring_blocks(path.read_text(encoding="utf-8")))]
    return params


def test_the_examples_are_found() -> None:
    blocks = readme_library_blocks(README.read_text(encoding="utf-8"))
    assert blocks and all("Library" in b.code for b in blocks), "the README's Library section lost its example"
    assert docstring_blocks((REPO / "mcphotos" / "__init__.py").read_text(encoding="utf-8"))
    assert docstring_blocks(_library_module_file().read_text(encoding="utf-8"))


# -- running them --------------------------------------------------------------------------------

@dataclass
class Calls:
    models: list[str | None] = field(default_factory=list)
    index: list[tuple[list[str], Any, Any]] = field(default_factory=list)  # (roots, options, report)
    find: list[tuple[str, int, str | None, list[Any]]] = field(default_factory=list)  # (query, k, in_dir, hits)
    tag: list[tuple[list[str] | None, Any]] = field(default_factory=list)  # (roots, report)
    libraries: list[Library] = field(default_factory=list)


def _bind(method: Any, self: Any, args: tuple, kwargs: dict) -> inspect.BoundArguments:
    bound = inspect.signature(method).bind(self, *args, **kwargs)
    bound.apply_defaults()
    return bound


def offline_library(tiny_clip: tuple[Path, Path], calls: Calls) -> type[Library]:
    cfg, weights = tiny_clip

    class OfflineLibrary(Library):
        """The real Library with the tiny CLIP in place of the model the example names."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            bound = _bind(Library.__init__, self, args, kwargs)
            calls.models.append(bound.arguments.get("model"))
            bound.arguments.update(model=str(cfg), weights=str(weights), pretrained=None)
            super().__init__(*bound.args[1:], **bound.kwargs)
            calls.libraries.append(self)

        def index(self, *args: Any, **kwargs: Any) -> Any:
            report = super().index(*args, **kwargs)
            a = _bind(Library.index, self, args, kwargs).arguments
            calls.index.append((list(a["roots"]), a.get("options"), report))
            return report

        def find(self, *args: Any, **kwargs: Any) -> Any:
            hits = super().find(*args, **kwargs)
            a = _bind(Library.find, self, args, kwargs).arguments
            calls.find.append((a["query"], a["k"], a.get("in_dir"), list(hits)))
            return hits

        def tag(self, *args: Any, **kwargs: Any) -> Any:
            report = super().tag(*args, **kwargs)
            a = _bind(Library.tag, self, args, kwargs).arguments
            calls.tag.append((list(a["roots"]) if a.get("roots") else None, report))
            return report

    return OfflineLibrary


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with ~/Pictures (a few shapes, a JPEG, a 2024 folder and a Trash)."""
    me = tmp_path / "me"
    pics = me / "Pictures"
    for i, (color, shape) in enumerate([("red", "circle"), ("blue", "square"), ("green", "triangle"),
                                        ("yellow", "star")]):
        shape_photo(pics / f"{color} {shape}.png", color, shape, seed=10 + i)
    shape_photo(pics / "a.jpg", "red", "square", seed=20, fmt="JPEG")
    shape_photo(pics / "2024" / "beach.png", "yellow", "circle", seed=21)
    photo(pics / "2024" / "texture.png", seed=22)
    photo(pics / "Trash" / "old.png", seed=23)
    monkeypatch.setenv("HOME", str(me))
    monkeypatch.delenv("USERPROFILE", raising=False)
    # Anything the example writes to a relative path (say a literal "~/...") lands here, not in the repo.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return me


def _photos_under(root: Path, exclude: Any) -> set[str]:
    patterns = tuple(exclude or ())
    return {str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in (".png", ".jpg")
            and not any(fnmatch.fnmatchcase(str(p), pat) or fnmatch.fnmatchcase(p.name, pat) for pat in patterns)}


@pytest.mark.parametrize(("block", "source"), _examples())
def test_the_library_example_runs_as_written(block: Block, source: Path, user_home: Path, tiny_clip: tuple[Path, Path],
                                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                             home: Path) -> None:
    code, origin = block.code, f"{source.relative_to(REPO)}:{block.line}"
    calls = Calls()
    Offline = offline_library(tiny_clip, calls)
    # `from mcphotos import Library` and `from mcphotos.library import Library` both read this attribute.
    monkeypatch.setattr(mcphotos.library, "Library", Offline)
    assert mcphotos.Library is Offline

    try:
        # Numbered as in its file: a failure's traceback shows the README's (or docstring's) lines.
        compiled = compile(code, str(source), "exec").replace(co_firstlineno=block.line)
        exec(compiled, {"__name__": "__example__"})
    finally:
        for lib in calls.libraries:
            lib.close()
    out = capsys.readouterr().out

    pictures = user_home / "Pictures"
    assert os.path.expanduser("~/Pictures") == str(pictures)
    # The model the example asks for is one mcphotos knows (it is then swapped for the tiny CLIP).
    for model in calls.models:
        resolve_model(model)
    assert calls.index, "the example indexes nothing"
    roots = [r for rs, _, _ in calls.index for r in rs]
    assert any(r.startswith("~") for r in roots), \
        f"{origin}: the example indexes {roots}; it should show a '~' root such as '~/Pictures'"
    assert not (Path.cwd() / "~").exists(), f"{origin}: the example wrote under a literal '~' directory"
    # What the example writes lives in the isolated mcphotos home.
    assert all(lib.home == home for lib in calls.libraries)

    indexed: set[str] = set()
    for rs, options, report in calls.index:
        expected: set[str] = set()
        for r in rs:
            root = Path(os.path.expanduser(r))
            assert root.is_dir(), f"{origin}: the example indexes {r!r}, which the test's home lacks"
            expected |= _photos_under(root, options.exclude if options else ())
        assert (report.new, report.failed) == (len(expected), 0)
        indexed |= expected
        if "print(report." in code:
            shown = re.search(r"print\(report\.(\w+), report\.(\w+), report\.(\w+)\)", code)
            if shown:
                line = " ".join(str(getattr(report, f)) for f in shown.groups())
                assert line in out.splitlines(), out

    for query, k, in_dir, hits in calls.find:
        within = Path(os.path.expanduser(in_dir)) if in_dir else pictures
        # No cut-off unless asked for: the k best of the photos searched (all of them, here).
        assert len(hits) == min(k, sum(Path(p).is_relative_to(within) for p in indexed)), (query, hits)
        for hit in hits:
            assert os.path.isabs(hit.path) and Path(hit.path).is_relative_to(within), hit.path
            assert hit.path in indexed
            if "print(" in code and "hit.path" in code:
                assert f"{hit.score:.3f} {hit.path}" in out or f"{hit.score} {hit.path}" in out, out

    for tag_roots, report in calls.tag:
        under = [Path(os.path.expanduser(r)) for r in tag_roots] if tag_roots else [pictures]
        for p in report.photos:
            assert any(Path(p.path).is_relative_to(u) for u in under), p.path
            if "print(photo.path" in code:
                assert p.path in out, out

    if "update_sidecar(" in code:
        assert list(pictures.glob("*.xmp")), f"{origin}: the sidecar is not next to the photo in ~/Pictures"

    # Indexing the same '~' roots again re-hashes nothing: they name the stored absolute paths.
    with Offline() as lib:
        for rs, options, report in list(calls.index):
            again = lib.index(rs, options=options)
            seen = report.new + report.reused + report.unchanged
            assert (again.unchanged, again.hashed, again.new, again.removed) == (seen, 0, 0, 0), (rs, again)
