"""dedup's choices are StrEnums: plain strings in reports, JSON and journals; a typo is a UsageError."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mcphotos.dedup.actions import move_duplicates, plan_moves, read_journal
from mcphotos.dedup.choices import Action, KeepPolicy, Role, Tier
from mcphotos.dedup.finder import TIERS, check_options
from mcphotos.dedup.keeper import KEEP_POLICIES
from mcphotos.errors import UsageError
from tests.dedup.test_dedup import index, make_lib
from tests.support.scenes import scene


@pytest.mark.parametrize("enum", [Tier, Role, KeepPolicy, Action])
def test_members_are_their_string_values(enum: type) -> None:
    for m in enum:
        assert m == m.value and str(m) == m.value and json.dumps(m) == f'"{m.value}"' and enum(m.value) is m


def test_the_values_are_the_documented_strings() -> None:
    assert [*Tier] == ["exact", "near", "similar"] == list(TIERS)
    assert [t.rank for t in Tier] == [0, 1, 2]
    assert [*Role] == ["keeper", "duplicate"]
    assert [*KeepPolicy] == ["largest", "oldest", "newest", "shortest-path"] == list(KEEP_POLICIES)
    assert [*Action] == ["move", "hardlink"]


def test_unknown_tier_and_keeper_policy_are_clear_usage_errors() -> None:
    with pytest.raises(UsageError) as e:
        check_options("nearish", None, "largest")
    assert (e.value.message, e.value.hint) == ("unknown tier 'nearish'", "use exact, near or similar")
    with pytest.raises(UsageError) as e:
        check_options(Tier.NEAR, None, "biggest")
    assert e.value.message == "unknown keeper policy 'biggest'"
    assert e.value.hint == "use one of largest, oldest, newest, shortest-path"
    assert check_options("near", None, "largest") == check_options(Tier.NEAR, None, KeepPolicy.LARGEST) == 14


@pytest.fixture
def library(tmp_path: Path) -> tuple[Path, Path]:
    pics = tmp_path / "pics"
    pics.mkdir()
    scene(1).save(pics / "one.png")
    shutil.copy2(pics / "one.png", pics / "one-copy.png")
    scene(1).resize((160, 120)).save(pics / "one-small.jpg", quality=85)
    home = tmp_path / "home"
    index(home, pics)
    return pics, home


def test_reports_and_their_json_carry_plain_strings(library: tuple[Path, Path]) -> None:
    _pics, home = library
    with make_lib(home) as lib:
        by_string = lib.dedup(tier="near", keep="largest")
        by_member = lib.dedup(tier=Tier.NEAR, keep=KeepPolicy.LARGEST)
    assert by_string.tier is Tier.NEAR and by_string.keep is KeepPolicy.LARGEST
    [group] = by_string.groups
    assert group.tier is Tier.NEAR
    assert [m.role for m in group.members] == [Role.KEEPER, Role.DUPLICATE, Role.DUPLICATE]
    lines = [json.dumps(vars(m), sort_keys=True) for m in group.members]
    assert lines == [json.dumps(vars(m), sort_keys=True) for m in by_member.groups[0].members]
    roles_tiers = [(json.loads(ln)["role"], json.loads(ln)["tier"]) for ln in lines]
    assert roles_tiers == [("keeper", "keeper"), ("duplicate", "exact"), ("duplicate", "near")]
    assert '"role": "keeper"' in lines[0] and '"tier": "keeper"' in lines[0]


def test_the_journal_writes_the_action_as_a_plain_string(library: tuple[Path, Path], tmp_path: Path) -> None:
    pics, home = library
    dest = tmp_path / "dups"
    with make_lib(home) as lib:
        groups = lib.dedup(tier="exact").groups
        store = lib.store()
        with store.writer_lock():
            report = move_duplicates(store, plan_moves(groups, str(dest), [str(pics)]), str(dest))
    text = Path(report.journal).read_text()
    assert '"kind": "move"' in text and '"op": "move"' in text
    entries = read_journal(report.journal)
    assert [type(e["op"]) for e in entries] == [str, str] and entries[1]["op"] == Action.MOVE
