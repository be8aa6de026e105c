"""The tagging math and tag storage, on hand-made vectors (meaning is tested with the tiny CLIP)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mcphotos.errors import UsageError
from mcphotos.store.database import FileRecord, ImageRecord, Store
from mcphotos.tagging.tagger import (
    TagOptions,
    decide,
    delete_tags,
    files_with_tags,
    image_ids_with_tags,
    multi_label_probs,
    replace_tags,
    single_label_probs,
    tags_for_hashes,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=-1, keepdims=True)).astype(np.float32)


def test_multi_label_scores_do_not_depend_on_the_other_labels() -> None:
    rng = np.random.default_rng(0)
    images, labels, extra, background = (unit(rng.normal(size=(n, 16))) for n in (50, 5, 20, 6))
    alone = multi_label_probs(images, labels, background, 100.0)
    together = multi_label_probs(images, np.vstack([labels, extra]), background, 100.0)
    # Equal up to float32 rounding, which logit scale 100 amplifies to ~1e-5 relative: the BLAS
    # kernel for a 5-column product may differ from the 25-column one (OPENBLAS_CORETYPE, CPU kind).
    np.testing.assert_allclose(alone, together[:, :5], rtol=1e-4, atol=1e-30)
    # ... while single-label probabilities are a softmax over the set, so they do.
    single_alone = single_label_probs(images, labels, 100.0)
    single_together = single_label_probs(images, np.vstack([labels, extra]), 100.0)
    assert not np.allclose(single_alone, single_together[:, :5])
    np.testing.assert_allclose(single_alone.sum(axis=1), 1.0, rtol=1e-5)


def test_multi_label_is_a_softmax_against_the_background() -> None:
    img = unit(np.array([[1.0, 0.2, 0.0]]))
    label = unit(np.array([[1.0, 0.0, 0.0]]))
    background = unit(np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]))
    s = 20.0
    z, zb = s * float((img @ label.T)[0, 0]), s * (img @ background.T)[0]
    expected = np.exp(z) / (np.exp(z) + np.exp(zb).sum())
    assert multi_label_probs(img, label, background, s)[0, 0] == pytest.approx(expected, rel=1e-5)
    # An image exactly between label and background loses to the background's several prompts.
    mid = unit(np.array([[1.0, 1.0, 1.0]]))
    assert multi_label_probs(mid, label, background, s)[0, 0] < 0.5


def test_prompt_plan_default_and_own_background() -> None:
    from mcphotos.tagging.labels import TEMPLATES, parse_labels
    from mcphotos.tagging.tagger import BACKGROUND_WORDS, prompt_plan

    texts, per_label, per_bg = prompt_plan(parse_labels("dog\ncat = a cat | a {} asleep\n", "x.txt"))
    assert [texts[i] for i in per_label[1]] == ["a cat", "a cat asleep"]
    assert len(per_bg) == len(BACKGROUND_WORDS) and all(len(g) == len(TEMPLATES) for g in per_bg)
    texts, _, per_bg = prompt_plan(parse_labels("@background = a wall | a floor\ndog\n", "x.txt"))
    assert [[texts[i] for i in g] for g in per_bg] == [["a wall"], ["a floor"]]


def test_decide_threshold_top_k_and_single_min_prob() -> None:
    probs = np.array([[0.9, 0.2, 0.7, 0.6], [0.1, 0.3, 0.2, 0.4]], dtype=np.float32)
    got = decide(probs, TagOptions(threshold=0.5, top_k=2))
    assert [[j for j, _ in row] for row in got] == [[0, 2], []]
    got = decide(probs, TagOptions(threshold=0.15, top_k=None))
    assert [[j for j, _ in row] for row in got] == [[0, 2, 3, 1], [3, 1, 2]]
    single = np.array([[0.7, 0.1, 0.2], [0.4, 0.35, 0.25]], dtype=np.float32)
    assert decide(single, TagOptions(mode="single", min_prob=0.5)) == [[(0, pytest.approx(0.7))], []]
    with pytest.raises(UsageError):
        TagOptions(threshold=1.5)
    with pytest.raises(UsageError):
        TagOptions(mode="fuzzy")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store", {"name": "fake", "source": "test"})
    rng = np.random.default_rng(0)
    with s.transaction():
        s.put_images(ImageRecord(f"h{i}", unit(rng.normal(size=8))) for i in range(4))
        s.put_files(FileRecord(str(tmp_path / f"p{i}.jpg"), 1, 1, f"h{i}", "ok") for i in range(4))
    yield s
    s.close()


def test_rerunning_a_set_replaces_only_that_sets_tags(store: Store) -> None:
    replace_tags(store, "animals", ["h0", "h1"], [[("animals/dog", 0.9)], [("animals/cat", 0.8)]])
    replace_tags(store, "scenes", ["h0"], [[("scenes/beach", 0.7)]])
    replace_tags(store, "animals", ["h0"], [[("animals/hot_dog", 0.6)]])
    tags = tags_for_hashes(store, ["h0", "h1"])
    assert [(t.label_set, t.label) for t in tags["h0"]] == [("animals", "animals/hot_dog"), ("scenes", "scenes/beach")]
    assert [t.label for t in tags["h1"]] == ["animals/cat"]  # not re-scored: kept
    assert delete_tags(store, ["h0"], "scenes", dry_run=True) == 1 and len(tags_for_hashes(store, ["h0"])["h0"]) == 2
    assert delete_tags(store, ["h0"], "scenes") == 1
    assert delete_tags(store, None) == 2 and tags_for_hashes(store, ["h0", "h1"]) == {}


def test_tag_filter_matches_whole_levels(store: Store, tmp_path: Path) -> None:
    replace_tags(store, "animals", ["h0", "h1", "h2"],
                 [[("animals/dog", 0.9)], [("animals/hot_dog", 0.8), ("food/dog food", 0.5)], [("Animals/Doge", 0.7)]])
    ids = {h: i for i, h in store.conn.execute("SELECT id, hash FROM images")}
    assert image_ids_with_tags(store, ["dog"]) == {ids["h0"]}
    assert image_ids_with_tags(store, ["DOG"]) == {ids["h0"]}
    assert image_ids_with_tags(store, ["animals"]) == {ids["h0"], ids["h1"], ids["h2"]}
    assert image_ids_with_tags(store, ["animals/dog"]) == {ids["h0"]}
    assert image_ids_with_tags(store, ["hot_dog"]) == {ids["h1"]}   # '_' is not a wildcard
    assert image_ids_with_tags(store, ["hot%"]) == set()            # nor is '%'
    assert image_ids_with_tags(store, ["animals", "food"]) == {ids["h1"]}  # several: all of them
    rows = files_with_tags(store, ["animals"])
    assert [r[1] for r in rows] == ["h0", "h1", "h2"] and rows[0][2] == pytest.approx(0.9)
    with pytest.raises(UsageError):
        image_ids_with_tags(store, [" / "])


def test_tag_modes_are_plain_strings_and_an_unknown_mode_is_a_usage_error() -> None:
    import dataclasses
    import json

    from mcphotos.tagging.tagger import TagMode, TagReport

    assert [*TagMode] == ["multi", "single"]
    assert TagOptions().mode is TagMode.MULTI and TagOptions("single").mode is TagMode.SINGLE
    assert TagOptions(mode="single") == TagOptions(mode=TagMode.SINGLE)
    assert dataclasses.replace(TagOptions(), mode="single").mode is TagMode.SINGLE
    report = TagReport("objects", TagOptions("single").mode)
    assert json.loads(json.dumps(dataclasses.asdict(report)))["mode"] == "single"
    assert '"mode": "single"' in json.dumps(dataclasses.asdict(TagOptions("single")))
    with pytest.raises(UsageError) as e:
        TagOptions(mode="fuzzy")
    assert (e.value.message, e.value.hint) == ("unknown tagging mode 'fuzzy'", "use multi or single")

