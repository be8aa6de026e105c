"""/api/status, /api/search, /api/photo and /api/upload on the tiny trained CLIP's store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.support.photos import shape_photo
from tests.support.serving import client_for

pytest.importorskip("starlette")


@pytest.fixture
def client(shapes_library, tmp_path: Path):
    return client_for(shapes_library, tmp_path)


def classes(hits: list[dict]) -> list[str]:
    """'red circle 1.png', 'red circle 1 copy.png' -> 'red circle'."""
    return [" ".join(Path(h["name"]).stem.split()[:2]) for h in hits]


def test_status(client, shapes_store) -> None:
    s = client.get("/api/status").json()
    assert s["photos"] == 34 and s["files"] == 35  # 32 shapes, the large and broken photos; one exact copy
    assert s["engine"].startswith("onnx") and s["quarantine"] is None and s["version"]


def test_search_finds_by_meaning_with_the_command_line(client) -> None:
    r = client.get("/api/search", params={"q": "red circle", "k": 3}).json()
    assert classes(r["hits"]) == ["red circle"] * 3  # two photos and the exact copy
    assert r["command"] == "mcphotos find 'red circle' -k 3" and r["more"] and r["offset"] == 0
    hit = r["hits"][0]
    assert set(hit) == {"id", "path", "name", "score", "taken", "frame_s", "snippet"} and len(hit["id"]) == 40


def test_search_pages_and_filters_like_find(client, shapes_store) -> None:
    _, root = shapes_store
    everything = client.get("/api/search", params={"q": "blue star", "k": 500}).json()
    assert not everything["more"] and len(everything["hits"]) == 35
    second = client.get("/api/search", params={"q": "blue star", "k": 10, "offset": 10}).json()
    assert [h["path"] for h in second["hits"]] == [h["path"] for h in everything["hits"][10:20]] and second["more"]
    jpgs = client.get("/api/search", params={"q": "blue star", "ext": "jpg", "k": 100}).json()
    assert jpgs["hits"] and all(h["name"].endswith(".jpg") for h in jpgs["hits"]) and "--ext jpg" in jpgs["command"]
    under = client.get("/api/search", params={"q": "blue star", "in": str(root / "pngs"), "k": 100}).json()
    assert under["hits"] and all(h["path"].startswith(str(root / "pngs")) for h in under["hits"])
    cut = client.get("/api/search", params={"q": "red circle", "relative": "0.98", "k": 100}).json()
    assert 0 < len(cut["hits"]) < 35 and "--relative 0.98" in cut["command"]
    minus = client.get("/api/search", params={"q": "red - circle", "k": 6}).json()
    assert "red circle" not in classes(minus["hits"])[:3]


def test_more_like_this_and_combined_with_words(client) -> None:
    first = client.get("/api/search", params={"q": "green triangle", "k": 1}).json()["hits"][0]
    like = client.get("/api/search", params={"like": first["id"], "k": 2}).json()
    assert like["hits"][0]["id"] == first["id"] and classes(like["hits"]) == ["green triangle"] * 2
    assert like["command"] == f"mcphotos find --image '{first['path']}' -k 2"
    both = client.get("/api/search", params={"like": first["id"], "q": "green", "k": 2}).json()
    assert classes(both["hits"]) == ["green triangle"] * 2
    assert both["command"] == f"mcphotos find green --image '{first['path']}' -k 2"


def test_query_by_an_uploaded_photo(client, tmp_path: Path) -> None:
    photo = shape_photo(tmp_path / "q.png", "yellow", "square", seed=123)
    up = client.post("/api/upload", files={"file": ("q.png", io.BytesIO(photo.read_bytes()), "image/png")}).json()
    r = client.get("/api/search", params={"upload": up["upload"], "k": 2}).json()
    assert classes(r["hits"]) == ["yellow square"] * 2 and "--image q.png" in r["command"]
    assert client.get("/api/search", params={"upload": "nope"}).status_code == 404


@pytest.mark.parametrize("params, message", [
    ({}, "nothing to search for"), ({"q": "red + + circle"}, "two operators"),
    ({"q": "@/etc/passwd"}, "@PATH"), ({"q": "red", "k": "many"}, "whole number"), ({"q": "red", "k": "0"}, "range"),
    ({"q": "red", "after": "yesterday"}, "not a date"), ({"like": "../x"}, "not a photo id"),
    ({"like": "ab" * 20}, "no indexed photo")])
def test_bad_searches_are_one_clear_line(client, params: dict, message: str) -> None:
    r = client.get("/api/search", params=params)
    assert r.status_code in (400, 404) and message in r.json()["error"], r.text


def test_search_by_tag_alone_lists_tagged_photos(client, shapes_library) -> None:
    r = client.get("/api/search", params={"tag": "nothing-tagged-yet"}).json()
    assert r["hits"] == [] and "--tag nothing-tagged-yet" in r["command"]


def test_photo_details(client, shapes_store) -> None:
    _, root = shapes_store
    hit = client.get("/api/search", params={"q": "red circle", "k": 3}).json()["hits"]
    copy = next(h for h in hit if "copy" in h["name"])
    p = client.get(f"/api/photo/{copy['id']}").json()
    assert p["paths"] == sorted([str(root / "copies" / "red circle 1 copy.png"),
                                 str(root / "pngs" / "red circle 1.png")])
    assert (p["width"], p["height"], p["format"]) == (96, 96, "PNG") and p["size"] > 0
    assert p["tags"] == [] and p["caption"] is None and p["text"] is None
    assert client.get("/api/photo/" + "0" * 40).status_code == 404
