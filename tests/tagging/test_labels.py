"""Label files: the format, errors with file:line, name resolution, the shipped sets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mcphotos.cli import app
from mcphotos.errors import UsageError
from mcphotos.tagging.labels import TEMPLATES, load_label_file, parse_labels, resolve_labels, shipped_dir, shipped_sets
from tests.support.cli import runner

REPO = Path(__file__).resolve().parents[2]


def test_format_comments_prompts_and_hierarchy() -> None:
    text = (
        "# Things on my desk.\n"
        "\n"
        "animals/dog\n"
        "  receipt = a photo of a receipt | a crumpled shop receipt   # inline comment\n"
        "documents / business   card\n"
        "cat = a {} on a sofa\n"
    )
    ls = parse_labels(text, "desk.txt")
    assert ls.name == "desk" and ls.description == "Things on my desk."
    assert [lb.name for lb in ls.labels] == ["animals/dog", "receipt", "documents/business card", "cat"]
    dog, receipt, card, cat = ls.labels
    assert dog.levels == ("animals", "dog") and dog.line == 3
    assert dog.prompt_texts() == [t.replace("{}", "dog") for t in TEMPLATES]
    assert receipt.prompt_texts() == ["a photo of a receipt", "a crumpled shop receipt"]
    assert card.leaf == "business card" and "a photo of a business card." in card.prompt_texts()
    assert cat.prompt_texts() == ["a cat on a sofa"]


@pytest.mark.parametrize(("text", "line", "needle"), [
    ("dog\ncat\nDog\n", 3, "already defined on line 1"),
    ("dog = a dog | \n", 1, "empty prompt"),
    ("ok\n = a photo\n", 2, "missing label name"),
    ("ok\n\nanimals//dog\n", 3, "empty level"),
    ("dog =\n", 1, "must be followed by prompts"),
    ("a|b\n", 1, "'|' is not allowed"),
])
def test_errors_name_file_and_line(tmp_path: Path, text: str, line: int, needle: str) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(text)
    with pytest.raises(UsageError) as e:
        load_label_file(f)
    assert str(e.value).startswith(f"{f}:{line}: ") and needle in str(e.value)


def test_background_directive(tmp_path: Path) -> None:
    ls = parse_labels("@background = a wall | a floor\ndog\n", "x.txt")
    assert ls.background == ("a wall", "a floor") and [lb.name for lb in ls.labels] == ["dog"]
    assert parse_labels("dog\n", "x.txt").background == ()
    for text, needle in (("@foreground = x\n", "unknown directive"), ("@background = a\n@background = b\nx\n",
                                                                       "given twice")):
        with pytest.raises(UsageError, match=needle):
            parse_labels(text, "x.txt")


def test_empty_and_undecodable_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# only a comment\n\n")
    with pytest.raises(UsageError, match="no labels"):
        load_label_file(empty)
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"dog\ncat\n\xff\xfe\n")
    with pytest.raises(UsageError, match=r"bin\.txt:3: not valid UTF-8"):
        load_label_file(binary)


def test_cli_reports_label_errors_with_exit_2(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text("dog\ndog\n")
    r = runner.invoke(app, ["tag", "--labels", str(f)])
    assert r.exit_code == 2 and "bad.txt:2" in r.output and "Traceback" not in r.output
    r = runner.invoke(app, ["tag", "--labels", "no-such-set"])
    assert r.exit_code == 2 and "animals" in r.output  # the error lists the shipped sets


def test_resolution_path_first_then_shipped_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_labels("animals").name == "animals"
    assert resolve_labels("animals.txt").source == resolve_labels("animals").source
    monkeypatch.chdir(tmp_path)
    (tmp_path / "animals").write_text("unicorn\n")  # a file of that name wins over the shipped set
    own = resolve_labels("animals")
    assert [lb.name for lb in own.labels] == ["unicorn"] and own.source == "animals"
    (tmp_path / "mine.txt").write_text("x\n")
    assert resolve_labels(str(tmp_path / "mine.txt")).name == "mine"
    with pytest.raises(UsageError):
        resolve_labels("../animals")  # names never escape the shipped directory


def test_shipped_sets_are_curated_and_parse() -> None:
    sets = {s.name: s for s in shipped_sets()}
    assert {"animals", "scenes", "documents", "food", "events", "vehicles", "objects", "sensitive"} <= set(sets)
    for s in sets.values():
        assert 15 <= s.labels <= 100, (s.name, s.labels)
        assert s.description, s.name
        ls = load_label_file(s.path)
        # every label sits under its set's own root, so XMP keywords read mcphotos|animals|...
        assert all(lb.levels[0] == s.name for lb in ls.labels), s.name
    docs = [lb.leaf for lb in load_label_file(sets["documents"].path).labels]
    assert {"receipt", "invoice", "screenshot", "whiteboard", "handwritten note", "menu", "ticket",
            "business card"} <= set(docs)
    sensitive = [lb.leaf for lb in load_label_file(sets["sensitive"].path).labels]
    assert {"passport", "id card", "credit card", "bank statement", "medical document", "chat screenshot"} <= set(
        sensitive)


def test_top_level_labels_dir_is_the_packaged_one() -> None:
    top = REPO / "labels"
    assert top.is_dir() and os.path.samefile(top, shipped_dir())
    assert sorted(p.name for p in top.glob("*.txt")) == sorted(p.name for p in shipped_dir().glob("*.txt"))


def test_labels_commands() -> None:
    r = runner.invoke(app, ["labels"])
    assert r.exit_code == 0 and "animals" in r.stdout and "sensitive" in r.stdout
    r = runner.invoke(app, ["labels", "--json"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == len(shipped_sets())
    r = runner.invoke(app, ["labels", "show", "documents"])
    assert r.exit_code == 0 and r.stdout == (shipped_dir() / "documents.txt").read_text()
    r = runner.invoke(app, ["labels", "show", "nope"])
    assert r.exit_code == 2
