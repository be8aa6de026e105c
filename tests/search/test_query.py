"""The combined-query syntax, dates, extensions and cut-off math: pure functions, no model."""

from __future__ import annotations

import numpy as np
import pytest

from mcphotos.errors import UsageError
from mcphotos.search.cutoff import Background, Cut, background_stats, cut_count, gap_count, relative_count, robust_sigma
from mcphotos.search.query import FindSpec, Term, TermKind, combine, describe, parse_date, parse_exts, parse_query


def test_plain_text_is_one_term_kept_verbatim() -> None:
    assert parse_query("a dog on a beach") == [Term("text", "a dog on a beach", 1.0)]
    assert parse_query("black-and-white t-shirt") == [Term("text", "black-and-white t-shirt", 1.0)]


def test_operators_weights_and_images() -> None:
    terms = parse_query('beach + sunset - people + 2*@"my pics/a - b.jpg" -0.5*@x.png')
    assert terms == [Term("text", "beach", 1.0), Term("text", "sunset", 1.0), Term("text", "people", -1.0),
                     Term("image", "my pics/a - b.jpg", 2.0), Term("image", "x.png", -0.5)]
    assert parse_query("red -circle") == parse_query("red - circle") == [Term("text", "red", 1.0),
                                                                         Term("text", "circle", -1.0)]
    assert parse_query("2 × sunset") == [Term("text", "sunset", 2.0)]
    assert parse_query('"rock - paper"') == [Term("text", "rock - paper", 1.0)]
    assert parse_query("- people") == [Term("text", "people", -1.0)]
    assert parse_query("3 dogs") == [Term("text", "3 dogs", 1.0)]  # a number without '*' is text


def test_describe_round_trips() -> None:
    for q in ('beach + sunset - people + 2*@"my pics/a - b.jpg"', "red - 0.5*circle", '"+1 day"', "@/a b/c.jpg"):
        terms = parse_query(q)
        assert parse_query(describe(terms)) == terms


@pytest.mark.parametrize(("query", "message"), [
    ("", "empty"),
    ("   ", "empty"),
    ("beach +", "ends with an operator"),
    ("beach + - sunset", "two operators in a row"),
    ("2*", "has no term"),
    ("beach + 2* ", "has no term"),
    ("0*beach", "weight 0"),
    ("*beach", "without a number"),
    ("@", "without a path"),
    ('"beach', "unterminated"),
    ('beach + ""', "empty term"),
])
def test_malformed_queries_are_clear_usage_errors(query: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_query(query)


def test_combine_is_a_renormalized_weighted_sum_of_unit_vectors() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=8), rng.normal(size=8) * 5  # b not unit: it must not outweigh a
    v = combine(np.stack([a, b]), [2.0, -1.0])
    expected = 2 * a / np.linalg.norm(a) - b / np.linalg.norm(b)
    assert np.allclose(v, expected / np.linalg.norm(expected), atol=1e-6)
    assert abs(np.linalg.norm(v) - 1) < 1e-6
    with pytest.raises(UsageError, match="cancel"):
        combine(np.stack([a, a]), [1.0, -1.0])


def test_dates_and_extensions() -> None:
    assert parse_date("2024") == "2024-01-01T00:00:00"
    assert parse_date("2024-06") == "2024-06-01T00:00:00"
    assert parse_date("2024-06-30") == "2024-06-30T00:00:00"
    assert parse_date("2024-06-30 18:05") == "2024-06-30T18:05:00"
    with pytest.raises(UsageError, match="not a date"):
        parse_date("yesterday")
    with pytest.raises(UsageError, match="not a date"):
        parse_date("2024-13")
    assert parse_exts(["JPG", ".png,webp"]) == (".jpg", ".jpeg", ".jpe", ".png", ".webp")
    with pytest.raises(UsageError):
        parse_exts(["*.jpg"])


def test_find_spec_round_trips_and_needs_something_to_find() -> None:
    spec = FindSpec(text="red - circle", images=("/a.jpg",), k=7, exts=(".png",), after="2024-01-01T00:00:00",
                    relative=0.8, auto_cut=True)
    assert FindSpec.from_dict(spec.to_dict()) == spec
    assert "--relative 0.8" in spec.summary() and "+ @/a.jpg" in spec.summary()
    with pytest.raises(UsageError, match="nothing to search"):
        FindSpec().terms()


def test_relative_cut() -> None:
    assert relative_count([0.5, 0.46, 0.44, 0.2], 0.9) == 2  # floor 0.45
    assert relative_count([-0.1, -0.105, -0.3], 0.9) == 2  # negative best: floor -0.11
    assert relative_count([0.5, 0.1], 1.0) == 1
    with pytest.raises(UsageError):
        Cut(relative=1.5)


def _top(scores: np.ndarray, k: int = 20) -> np.ndarray:
    return np.sort(scores)[::-1][:k + 1]


def test_gap_cut_finds_a_cluster_above_unrelated_photos() -> None:
    rng = np.random.default_rng(1)
    unrelated = rng.normal(0.2, 0.01, 2000)
    sigma = robust_sigma(unrelated)
    assert 0.009 < sigma < 0.011
    with_matches = np.concatenate([[0.33, 0.32, 0.318], _top(unrelated, 40)])
    assert gap_count(with_matches, 20, background_stats(unrelated)) == 3
    assert robust_sigma(np.concatenate([[0.33, 0.32, 0.318], unrelated])) < 0.011  # matches barely move it
    assert gap_count([0.3, 0.2], 20, Background(0.0, 0.0, 2)) == 2  # no spread known: no cut
    assert gap_count([0.3, 0.2], 20, None) == 2
    assert cut_count(list(with_matches), Cut(auto=True), k=2, background=background_stats(unrelated)) == 2


def test_a_deeper_larger_gap_does_not_hide_the_first_real_step() -> None:
    # The tiny CLIP a fresh machine trained: three red circles a clear step above a red square,
    # and further down, among unrelated photos, an even larger gap. The single largest gap
    # used to win, fail its own test, and leave everything uncut.
    rng = np.random.default_rng(2)
    lower = np.concatenate([np.linspace(0.744, 0.55, 11), np.linspace(0.314, -0.5, 34)])
    scores = np.concatenate([[0.980, 0.979, 0.956], lower])
    gaps = scores[:-1] - scores[1:]
    assert gaps.argmax() > 3 and gaps.max() > gaps[2]  # the deeper gap is the larger one
    background = background_stats(rng.permutation(scores))
    assert gap_count(scores[:21], 20, background) == 3
    assert cut_count(list(scores[:21]), Cut(auto=True), 20, background) == 3


def test_a_gap_between_two_clear_matches_is_not_the_cut() -> None:
    unrelated = np.random.default_rng(3).normal(0.2, 0.01, 2000)
    # A tight pair, a clear step, then a third match still far above anything unrelated.
    scores = np.concatenate([[0.33, 0.329, 0.29], _top(unrelated)])
    assert gap_count(scores, 20, background_stats(unrelated)) == 3


@pytest.mark.parametrize("matches", [1, 2, 3, 5, 10])
def test_real_clip_like_scores_cut_exactly_at_the_matches(matches: int) -> None:
    # Unrelated photos bunched within ±0.03 of their median, matches 0.05 to 0.10 above it.
    rng = np.random.default_rng(100 + matches)
    for _ in range(100):
        median = rng.uniform(-0.05, 0.3)
        unrelated = np.clip(rng.normal(median, 0.01, 2000), median - 0.03, median + 0.03)
        found = median + rng.uniform(0.05, 0.10, matches)
        library = np.concatenate([found, unrelated])
        background = background_stats(library[rng.choice(len(library), 1024, replace=False)], len(library))
        assert gap_count(_top(library), 20, background) == matches, np.sort(found)


def test_nothing_matches_is_rarely_cut() -> None:
    # Gaussian libraries of 2,000 unrelated photos: the top of the distribution is not a step.
    cut = 0
    for seed in range(400):
        rng = np.random.default_rng(seed)
        b = rng.normal(0.2, 0.01, 2000)
        cut += gap_count(_top(b), 20, background_stats(b[rng.choice(2000, 1024, replace=False)], 2000)) < 21
    assert cut <= 12, cut  # bench/cutoff_rates.py measures 1.3 %
    # Widely spread unrelated scores (the tiny CLIP's picture) with nothing standing out.
    cut = 0
    for seed in range(200):
        wide = np.random.default_rng(seed).uniform(-0.6, 0.66, 48)
        cut += gap_count(_top(wide), 20, background_stats(wide)) < 21
    assert cut <= 30, cut


def test_widely_spread_scores_still_show_a_tight_cluster() -> None:
    rng = np.random.default_rng(1)
    wide = np.concatenate([[0.97, 0.965, 0.96], np.sort(rng.uniform(-0.6, 0.66, 45))[::-1]])
    assert gap_count(wide, 20, background_stats(wide)) == 3


def test_term_kinds_are_plain_strings_and_an_unknown_kind_is_a_usage_error() -> None:
    import dataclasses
    import json

    assert [*TermKind] == ["text", "image"]
    terms = parse_query("beach - @x.png")
    assert [t.kind for t in terms] == [TermKind.TEXT, TermKind.IMAGE] and terms[1].kind is TermKind.IMAGE
    assert Term("image", "x.png", -1.0) == terms[1] and Term("text", "beach").kind is TermKind.TEXT
    assert json.dumps(dataclasses.asdict(terms[1])) == '{"kind": "image", "value": "x.png", "weight": -1.0}'
    with pytest.raises(UsageError) as e:
        Term("picture", "x.png")
    assert (e.value.message, e.value.hint) == ("unknown query term kind 'picture'", "use text or image")
