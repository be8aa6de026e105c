"""dedup's actions: opt-in, confirmed, journaled, reversible, never deleting or overwriting."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.dedup.test_dedup import index, make_lib
from tests.support.cli import invoke
from tests.support.scenes import scene


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    """pics/ with a photo, its exact copy in another folder, a smaller version, and an unrelated photo."""
    pics = tmp_path / "pics"
    (pics / "a").mkdir(parents=True)
    (pics / "b" / "deeper").mkdir(parents=True)
    scene(1).save(pics / "a" / "one.png")
    shutil.copy2(pics / "a" / "one.png", pics / "b" / "deeper" / "one-copy.png")
    scene(1).resize((160, 120)).save(pics / "b" / "one-small.jpg", quality=85)
    scene(2).save(pics / "a" / "two.png")
    home = tmp_path / "home"
    index(home, pics)
    return pics, home


def dedup(home: Path, *args: str, code: int = 0, input: str | None = None):
    return invoke("dedup", "--store", home, "--model", "fake", *args, code=code, input=input)


def undo(journal: Path | str, code: int = 0):
    return invoke("undo", journal, "--yes", code=code)


def store_paths(home: Path) -> set[str]:
    with make_lib(home) as lib:
        return set(lib.store().files_under())


def test_move_to_keeps_relative_paths_journals_and_undo_restores(library, tmp_path: Path) -> None:
    pics, home = library
    dest = tmp_path / "dups"
    before = store_paths(home)
    r = dedup(home, str(pics), "--move-to", str(dest), "--yes")
    moved = {dest / "b" / "deeper" / "one-copy.png", dest / "b" / "one-small.jpg"}
    assert all(p.exists() for p in moved)
    assert not (pics / "b" / "deeper" / "one-copy.png").exists() and (pics / "a" / "one.png").exists()
    journal = next(dest.glob("mcphotos-journal-move-*.jsonl"))
    entries = [json.loads(ln) for ln in journal.read_text().splitlines()]
    assert entries[0]["op"] == "begin" and {e["dst"] for e in entries[1:]} == {str(p) for p in moved}
    assert "mcphotos undo" in r.stderr
    # the store follows the files, and a later dedup does not offer the moved copies again
    paths = store_paths(home)
    assert {str(p) for p in moved} <= paths and len(paths) == len(before)
    assert dedup(home, "--paths").stdout == ""
    # undo puts everything back, in place and in the store
    undo(journal)
    assert (pics / "b" / "deeper" / "one-copy.png").exists() and not any(p.exists() for p in moved)
    assert store_paths(home) == before
    again = undo(journal)
    assert "2 were restored before" in again.stderr
    assert len(dedup(home, "--paths").stdout.splitlines()) == 2


def test_move_never_overwrites(library, tmp_path: Path) -> None:
    pics, home = library
    dest = tmp_path / "dups"
    (dest / "b").mkdir(parents=True)
    (dest / "b" / "one-small.jpg").write_bytes(b"someone else's file")
    dedup(home, str(pics), "--move-to", str(dest), "--yes")
    assert (dest / "b" / "one-small.jpg").read_bytes() == b"someone else's file"
    assert (dest / "b" / "one-small~1.jpg").exists()


def test_actions_need_confirmation(library, tmp_path: Path) -> None:
    pics, home = library
    before = sorted(p for p in pics.rglob("*") if p.is_file())
    r = dedup(home, "--move-to", str(tmp_path / "dups"), code=2)  # CliRunner's stdin is not a terminal
    assert "--yes" in r.stderr
    assert sorted(p for p in pics.rglob("*") if p.is_file()) == before
    assert not (tmp_path / "dups").exists()
    dedup(home, "--tier", "exact", "--hardlink", code=2)


def test_a_file_changed_since_indexing_is_not_moved(library, tmp_path: Path) -> None:
    pics, home = library
    victim = pics / "b" / "one-small.jpg"
    victim.write_bytes(victim.read_bytes() + b"\0")
    r = dedup(home, "--move-to", str(tmp_path / "dups"), "--yes", code=1)
    assert "changed since it was indexed" in r.stderr
    assert victim.exists()


def test_hardlink_exact_duplicates_and_undo(library) -> None:
    pics, home = library
    keeper, dup = pics / "a" / "one.png", pics / "b" / "deeper" / "one-copy.png"
    os.chmod(dup, 0o600)
    dedup(home, "--tier", "near", "--hardlink", "--yes", code=2)  # exact tier only
    r = dedup(home, "--tier", "exact", "--hardlink", "--yes")
    assert os.path.samefile(keeper, dup) and (pics / "b" / "one-small.jpg").exists()
    assert dedup(home, "--tier", "exact", "--paths").stdout.strip() == str(dup)  # still indexed, unchanged
    journal = r.stderr.split("undo with: mcphotos undo ")[1].split()[0]
    undo(journal)
    assert not os.path.samefile(keeper, dup) and dup.read_bytes() == keeper.read_bytes()
    assert (os.stat(dup).st_mode & 0o777) == 0o600


def test_hardlink_refuses_bytes_that_differ(library) -> None:
    pics, home = library
    dup = pics / "b" / "deeper" / "one-copy.png"
    st = os.stat(dup)
    data = bytearray(dup.read_bytes())
    data[-1] ^= 0xFF  # same size, same mtime, different bytes: only a byte compare notices
    dup.write_bytes(bytes(data))
    os.utime(dup, ns=(st.st_atime_ns, st.st_mtime_ns))
    r = dedup(home, "--tier", "exact", "--hardlink", "--yes", code=1)
    assert "bytes differ" in r.stderr
    assert not os.path.samefile(pics / "a" / "one.png", dup)


def test_contact_sheet(library, tmp_path: Path) -> None:
    from PIL import Image

    from mcphotos.cli.sheets import HIGHLIGHT

    _, home = library
    out = tmp_path / "sheet.jpg"
    dedup(home, "--sheet", str(out))
    sheet = Image.open(out)
    assert sheet.format == "JPEG" and sheet.width >= 3 * 160 and sheet.height > 160
    # the keeper (first cell, below the title) is framed in the highlight colour, the next cell is not
    px = sheet.convert("RGB").load()

    def highlighted(x: int, y: int) -> bool:
        return max(abs(a - b) for a, b in zip(px[x, y], HIGHLIGHT, strict=True)) < 60

    top = next(y for y in range(sheet.height) if highlighted(2, y))  # the keeper's frame, below the title
    assert highlighted(2, top + 20) and not highlighted(sheet.width // 3 + 2, top + 20)
