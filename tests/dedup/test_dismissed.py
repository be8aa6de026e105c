""""Not duplicates": dismissed pairs of content hashes are remembered and dedup honours them."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mcphotos.errors import UsageError
from mcphotos.indexing.indexer import IndexOptions
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.library import Library
from tests.support.cli import invoke
from tests.support.fakes import FakeEncoder
from tests.support.scenes import scene, variants

SPEC64 = PreprocessSpec(size=(64, 64), mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), interpolation="bilinear")


def make_lib(home: Path) -> Library:
    return Library(home=home, model="fake", engine_factory=FakeEncoder, preprocess=SPEC64)


def index(home: Path, root: Path) -> None:
    with make_lib(home) as lib:
        lib.index([str(root)], options=IndexOptions(workers=1))


@pytest.fixture(scope="module")
def pics(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A: a scene as PNG, A2: its exact copy, B: the same picture as JPEG q60, C: half size,
    D: another scene's PNG and E its WebP (an unrelated near pair)."""
    root = tmp_path_factory.mktemp("dismiss") / "pics"
    root.mkdir()
    img, other = scene(11), scene(12)
    out = {"A": root / "a.png", "A2": root / "a-copy.png", "D": root / "d.png"}
    img.save(out["A"])
    shutil.copy(out["A"], out["A2"])
    other.save(out["D"])
    for key, name, image in (("B", "jpeg-q60", img), ("C", "half", img), ("E", "webp", other)):
        ext, data = variants(image, [name])[name]
        out[key] = root / f"{key.lower()}{ext}"
        out[key].write_bytes(data)
    return out


@pytest.fixture()
def home(tmp_path: Path, pics: dict[str, Path]) -> Path:
    home = tmp_path / "home"
    index(home, pics["A"].parent)
    return home


def member_sets(report) -> list[set[str]]:
    return sorted(({Path(m.path).name for m in g.members} for g in report.groups), key=sorted)


def hash_of(lib: Library, path: Path) -> str:
    rec = lib.store(create=False).get_file(str(path))
    assert rec is not None and rec.hash
    return rec.hash


def test_the_fixture_makes_two_near_groups(home: Path) -> None:
    with make_lib(home) as lib:
        assert member_sets(lib.dedup()) == [{"a.png", "a-copy.png", "b.jpg", "c.jpg"}, {"d.png", "e.webp"}]


def test_a_dismissed_group_stays_apart_its_copies_stay_exact_and_undismiss_brings_it_back(home: Path) -> None:
    with make_lib(home) as lib:
        before = lib.dedup()
        group = next(g for g in before.groups if len(g.members) == 4)
        first = lib.dismiss(groups=[group])
        # three distinct hashes (A and its copy are one content): three pairs
        assert len(first.pairs) == 3 and first.already == 0
        after = lib.dedup()
        assert member_sets(after) == [{"a.png", "a-copy.png"}, {"d.png", "e.webp"}]
        assert after.dismissed == 3
        exact = next(g for g in after.groups if "a.png" in {Path(m.path).name for m in g.members})
        assert exact.tier == "exact"
        # dismissing again changes nothing and says so
        again = lib.dismiss(groups=[group])
        assert again.pairs == [] and again.already == 3
        assert lib.undismiss(first.pairs) == 3
        assert member_sets(lib.dedup()) == member_sets(before)
        assert lib.dismissed() == []


def test_a_b_c_with_only_a_b_dismissed_c_stays_with_the_closer_one(home: Path, pics: dict[str, Path]) -> None:
    with make_lib(home) as lib:
        a, b, c = (hash_of(lib, pics[k]) for k in "ABC")
        phash = dict(lib.store(create=False).conn.execute("SELECT hash, phash FROM images"))
        bits = {k: bin((phash[h] ^ phash[c]) & (2 ** 64 - 1)).count("1") for k, h in (("A", a), ("B", b))}
        report = lib.dismiss(pairs=[(b, a)])  # any order
        assert report.pairs == [tuple(sorted((a, b)))]
        dedup = lib.dedup()
        groups = member_sets(dedup)
        # A and B never share a group, not even through C, which is near both
        assert not any({"b.jpg"} <= g and ({"a.png"} <= g or {"a-copy.png"} <= g) for g in groups)
        with_c = next(g for g in groups if "c.jpg" in g)
        assert with_c in ({"a.png", "a-copy.png", "c.jpg"}, {"b.jpg", "c.jpg"})
        if bits["A"] != bits["B"]:
            closer = "A" if bits["A"] < bits["B"] else "B"
            assert ("a.png" in with_c) == (closer == "A")
        assert dedup.dismissed == 1
        # every member's "via" names a member of its own group
        for g in dedup.groups:
            names = {m.path for m in g.members}
            assert all(m.via is None or m.via in names for m in g.members)
        assert member_sets(lib.dedup()) == groups  # the same store always gives the same groups
        # the similar tier honours it too
        sim = member_sets(lib.dedup(tier="similar", threshold=0.5))
        assert not any({"b.jpg"} <= g and {"a.png"} <= g for g in sim)


def test_dismiss_refuses_a_hash_with_itself_and_unknown_hashes(home: Path, pics: dict[str, Path]) -> None:
    with make_lib(home) as lib:
        a = hash_of(lib, pics["A"])
        with pytest.raises(UsageError, match="two different contents"):
            lib.dismiss(pairs=[(a, a)])
        with pytest.raises(UsageError, match="not an indexed photo"):
            lib.dismiss(pairs=[(a, "f" * 32)])
        with pytest.raises(UsageError, match="two different contents"):
            lib.undismiss([(a, a)])
        assert lib.dismissed() == []


def test_show_dismissed_lists_pairs_with_the_paths_that_carry_them_now(home: Path, pics: dict[str, Path]) -> None:
    with make_lib(home) as lib:
        a, b, d = (hash_of(lib, pics[k]) for k in "ABD")
        lib.dismiss(pairs=[(a, b)])
        lib.dismiss(pairs=[(a, d)])
    base = ["dedup", "--store", str(home), "--model", "fake"]
    lines = [json.loads(x) for x in invoke(*base, "--show-dismissed", "--json").stdout.splitlines()]
    assert [(x["hash_a"], x["hash_b"]) for x in lines] == [tuple(sorted((a, b))), tuple(sorted((a, d)))]
    first = lines[0]
    paths_of_a = first["paths_a"] if first["hash_a"] == a else first["paths_b"]
    assert paths_of_a == sorted([str(pics["A"]), str(pics["A2"])])
    assert "T" in first["dismissed_at"]
    table = invoke(*base, "--show-dismissed")
    assert table.stdout.count("# pair ") == 2 and str(pics["B"]) in table.stdout
    assert "2 pairs marked not duplicates" in table.stderr
    paths = invoke(*base, "--show-dismissed", "--paths").stdout.splitlines()
    assert sorted(paths) == sorted(str(pics[k]) for k in ("A", "A2", "B", "D"))
    # PATHS narrow the list to pairs with a file under them
    only = invoke(*base, "--show-dismissed", "--json", str(pics["D"])).stdout.splitlines()
    assert len(only) == 1 and d in json.loads(only[0]).values()
    # the groups' summary says what was kept apart
    groups = invoke(*base)
    assert "kept apart" in groups.stderr
    invoke(*base, "--show-dismissed", "--hardlink", code=2)


def test_merge_carries_dismissed_pairs(home: Path, pics: dict[str, Path], tmp_path: Path) -> None:
    with make_lib(home) as lib:
        a, b = hash_of(lib, pics["A"]), hash_of(lib, pics["B"])
        lib.dismiss(pairs=[(a, b)])
        source = lib.store_dir
    other = tmp_path / "other"
    with make_lib(other) as lib:
        report = lib.merge(source)
        assert report.dismissed == 1
        assert lib.merge(source).dismissed == 0  # idempotent
        [pair] = lib.dismissed()
        assert (pair.hash_a, pair.hash_b) == tuple(sorted((a, b))) and pair.paths_a == []
    index(other, pics["A"].parent)
    with make_lib(other) as lib:
        assert not any({"a.png", "b.jpg"} <= g for g in member_sets(lib.dedup()))
