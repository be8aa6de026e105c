"""The StrEnum base and parse_choice of mcphotos.enums: members are their plain string values."""

from __future__ import annotations

import json
import sqlite3
from enum import Enum

import pytest

from mcphotos.enums import StrEnum, choices_text, parse_choice
from mcphotos.errors import UsageError


class Colour(StrEnum):
    RED = "red"
    DARK_GREEN = "dark-green"
    BLUE = "blue"


def test_a_member_is_its_value_everywhere_it_is_written() -> None:
    m = Colour.DARK_GREEN
    assert m == "dark-green" and str(m) == "dark-green" and f"{m}" == "dark-green" and f"{m:>11}" == " dark-green"
    assert hash(m) == hash("dark-green") and {"dark-green": 1}[m] == 1
    assert json.dumps({"c": m, m: [m]}) == '{"c": "dark-green", "dark-green": ["dark-green"]}'
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t(c TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (m,))
    assert conn.execute("SELECT c, typeof(c) FROM t").fetchone() == ("dark-green", "text")


def test_parse_choice_takes_members_values_and_other_enums_spelling_a_value() -> None:
    class Other(str, Enum):  # like a typer choice enum of the CLI
        blue = "blue"

    assert parse_choice(Colour, Colour.RED, "colour") is Colour.RED
    assert parse_choice(Colour, "dark-green", "colour") is Colour.DARK_GREEN
    assert parse_choice(Colour, Other.blue, "colour") is Colour.BLUE


@pytest.mark.parametrize("bad", ["Red", "RED", "purple", "", None, 3])
def test_an_unknown_value_is_a_usage_error_naming_the_choices(bad: object) -> None:
    with pytest.raises(UsageError) as e:
        parse_choice(Colour, bad, "colour")
    assert e.value.message == f"unknown colour {bad!r}"
    assert e.value.hint == "use red, dark-green or blue"
    assert e.value.exit_code == 2
    with pytest.raises(UsageError, match=r"unknown colour 'x' \(pick one\)"):
        parse_choice(Colour, "x", "colour", "pick one")


def test_choices_text() -> None:
    assert choices_text(Colour) == "red, dark-green or blue"

    class One(StrEnum):
        ONLY = "only"

    assert choices_text(One) == "only"
