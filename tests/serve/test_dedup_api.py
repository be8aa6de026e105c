"""/api/dedup and its actions: the CLI's rules, library methods and journal (so `mcphotos undo` reverses them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import invoke
from tests.support.serving import client_for

pytest.importorskip("starlette")


@pytest.fixture
def served(dup_library, tmp_path: Path):
    lib, pics = dup_library
    return client_for(lib, tmp_path, quarantine=tmp_path / "quarantine"), pics, tmp_path / "quarantine"


def test_groups_show_keeper_reason_and_each_member(served) -> None:
    client, pics, _ = served
    r = client.get("/api/dedup", params={"tier": "near"}).json()
    assert (r["tier"], r["page"], r["pages"], r["groups_total"]) == ("near", 0, 1, 1)
    (g,) = r["groups"]
    # dedup's rule: the most pixels, then the largest file, then the shortest path (the exact copy ties)
    assert g["keeper_reason"].startswith("identical size (320x240") and "shortest path" in g["keeper_reason"]
    roles = {m["path"]: m["role"] for m in g["members"]}
    assert roles == {str(pics / "a" / "one.png"): "keeper", str(pics / "b" / "one-copy.png"): "duplicate",
                     str(pics / "b" / "one-small.jpg"): "duplicate"}
    small = next(m for m in g["members"] if m["name"] == "one-small.jpg")
    assert (small["width"], small["height"], small["format"]) == (160, 120, "JPEG")
    assert small["size"] == (pics / "b" / "one-small.jpg").stat().st_size and small["hamming"] is not None
    assert r["reclaimable_bytes"] == sum(m["size"] for m in g["members"] if m["role"] == "duplicate")
    exact = client.get("/api/dedup", params={"tier": "exact"}).json()
    assert exact["groups"][0]["reason"] == "identical bytes" and len(exact["groups"][0]["members"]) == 2
    paged = client.get("/api/dedup", params={"tier": "near", "page": 1, "per_page": 1}).json()
    assert paged["groups"] == [] and paged["groups_total"] == 1
    assert client.get("/api/dedup", params={"tier": "nearish"}).status_code == 400


def test_move_to_quarantine_then_undo_in_the_page(served) -> None:
    client, pics, quarantine = served
    key = client.get("/api/dedup").json()["groups"][0]["key"]
    moved = client.post("/api/dedup/move", json={"keys": [key]}).json()
    assert moved["moved"] == 2 and moved["failed"] == [] and Path(moved["journal"]).is_file()
    assert not (pics / "b" / "one-small.jpg").exists() and (pics / "a" / "one.png").exists()
    assert (quarantine / "b" / "one-small.jpg").exists()
    assert client.get("/api/dedup").json()["groups"] == []
    assert client.post("/api/dedup/move", json={"keys": [key]}).status_code == 409  # that group is gone
    undone = client.post("/api/undo").json()
    assert undone["restored"] == 2 and undone["undone"] == "move"
    assert (pics / "b" / "one-small.jpg").exists() and not (quarantine / "b" / "one-small.jpg").exists()
    assert client.get("/api/dedup").json()["groups"][0]["key"] == key
    assert client.post("/api/undo").status_code == 404  # nothing left to undo


def test_cli_undo_reverses_a_move_made_in_the_page(served) -> None:
    client, pics, _ = served
    key = client.get("/api/dedup").json()["groups"][0]["key"]
    journal = client.post("/api/dedup/move", json={"keys": [key]}).json()["journal"]
    invoke("undo", journal, "--yes")
    assert (pics / "b" / "one-small.jpg").exists() and (pics / "b" / "one-copy.png").exists()


def test_a_stale_key_acts_on_nothing(served) -> None:
    client, pics, _ = served
    key = client.get("/api/dedup").json()["groups"][0]["key"]
    r = client.post("/api/dedup/move", json={"keys": [key, "0" * 32]})
    assert r.status_code == 409 and "reload" in r.json()["error"]
    assert (pics / "b" / "one-small.jpg").exists() and (pics / "b" / "one-copy.png").exists()
    assert client.post("/api/dedup/move", json={"keys": "all"}).status_code == 400
    assert client.post("/api/dedup/move", content=b"not json").status_code == 400


def test_hardlink_exact_copies(served) -> None:
    client, pics, _ = served
    key = client.get("/api/dedup", params={"tier": "exact"}).json()["groups"][0]["key"]
    near_key = client.get("/api/dedup").json()["groups"][0]["key"]
    assert client.post("/api/dedup/hardlink", json={"keys": [near_key], "tier": "near"}).status_code == 400
    r = client.post("/api/dedup/hardlink", json={"keys": [key], "tier": "exact"}).json()
    assert r["linked"] == 1 and r["failed"] == []
    assert (pics / "a" / "one.png").stat().st_ino == (pics / "b" / "one-copy.png").stat().st_ino
    assert client.post("/api/undo", json={"journal": r["journal"]}).json()["restored"] == 1
    assert (pics / "a" / "one.png").stat().st_ino != (pics / "b" / "one-copy.png").stat().st_ino


def test_undo_takes_only_this_servers_journals(served, tmp_path: Path) -> None:
    client, _, _ = served
    key = client.get("/api/dedup").json()["groups"][0]["key"]
    client.post("/api/dedup/move", json={"keys": [key]})
    r = client.post("/api/undo", json={"journal": str(tmp_path / "elsewhere.jsonl")})
    assert r.status_code == 404 and "mcphotos undo" in r.json()["error"]


def test_move_needs_a_quarantine_folder(dup_library, tmp_path: Path) -> None:
    lib, _ = dup_library
    client = client_for(lib, tmp_path)
    key = client.get("/api/dedup").json()["groups"][0]["key"]
    r = client.post("/api/dedup/move", json={"keys": [key]})
    assert r.status_code == 400 and "--quarantine" in r.json()["error"]


def test_not_duplicates_is_remembered_for_the_cli_and_undone(served, tmp_path: Path) -> None:
    client, _, _ = served
    group = client.get("/api/dedup").json()["groups"][0]
    r = client.post("/api/dedup/dismiss", json={"keys": [group["key"]]}).json()
    assert r["dismissed_pairs"] == 1  # one.png and its copy share a content: one pair with one-small.jpg
    home = tmp_path / "home"
    listed = invoke("dedup", "--store", home, "--model", "fake", "--paths").stdout
    assert "one-small.jpg" not in listed  # CLI dedup honours it
    shown = invoke("dedup", "--store", home, "--model", "fake", "--show-dismissed", "--paths").stdout
    assert "one-small.jpg" in shown
    (left,) = client.get("/api/dedup").json()["groups"]  # the exact copies stay a group, without one-small.jpg
    assert sorted(m["name"] for m in left["members"]) == ["one-copy.png", "one.png"]
    exact = client.get("/api/dedup", params={"tier": "exact"}).json()["groups"][0]["key"]
    refused = client.post("/api/dedup/dismiss", json={"keys": [exact], "tier": "exact"})
    assert refused.status_code == 400 and "identical bytes" in refused.json()["error"]
    undone = client.post("/api/undo").json()
    assert (undone["undone"], undone["restored"]) == ("dismiss", 1)
    assert client.get("/api/dedup").json()["groups"][0]["key"] == group["key"]


def test_groups_are_computed_again_only_once_the_store_changes(served, dup_library, monkeypatch) -> None:
    client, _, _ = served
    lib, _ = dup_library
    calls = []
    real = type(lib).dedup

    def counting(self, *args, **kwargs):
        calls.append(kwargs.get("tier"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(type(lib), "dedup", counting)
    first = client.get("/api/dedup").json()
    assert client.get("/api/dedup", params={"page": 0, "per_page": 1}).json()["groups"] == first["groups"][:1]
    assert calls == ["near"]  # the second page came from the kept report
    # Another process dismisses the pair (the CLI, its own connection): the page sees it at once.
    from tests.dedup.test_dedup import make_lib

    with make_lib(lib.home) as other:
        other.dismiss(groups=other.dedup(tier="near").groups)
    (left,) = client.get("/api/dedup").json()["groups"]
    assert "one-small.jpg" not in [m["name"] for m in left["members"]]
    assert calls == ["near", "near", "near"]  # the other process's own dedup, then the page's new one
