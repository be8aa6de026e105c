"""Each guard of `mcphotos serve` (issue 14 section 6), tested on a real app over a real store."""

from __future__ import annotations

import base64
import hashlib
import io
import re
from pathlib import Path

import pytest

from tests.support.serving import ORIGIN, PORT, TOKEN, bomb_png, client_for

pytest.importorskip("starlette")  # under CI=true the test extra installs it (pyproject), so this never skips

CSP = "default-src 'self'"


@pytest.fixture
def anon(shapes_library, tmp_path: Path):
    return client_for(shapes_library, tmp_path, auth=False)


@pytest.fixture
def client(shapes_library, tmp_path: Path):
    return client_for(shapes_library, tmp_path)


def some_id(client) -> str:
    return client.get("/api/search", params={"q": "red circle", "k": 1}).json()["hits"][0]["id"]


@pytest.mark.parametrize("path", ["/api/status", "/api/search?q=red", "/api/dedup", "/thumb/" + "a" * 40,
                                  "/static/app.css", "/review"])
def test_no_token_is_refused_everywhere(anon, path: str) -> None:
    r = anon.get(path)
    assert r.status_code == 401, (path, r.text)
    assert "open the URL" in r.json()["error"]
    assert r.headers["content-security-policy"].startswith(CSP) and r.headers["x-content-type-options"] == "nosniff"


def test_wrong_token_is_refused_as_bearer_and_cookie(anon) -> None:
    assert anon.get("/api/status", headers={"Authorization": "Bearer " + TOKEN[:-1] + "y"}).status_code == 401
    anon.cookies.set("mcphotos_token", "guessed")
    assert anon.get("/api/status").status_code == 401
    assert anon.get("/?token=guessed", follow_redirects=False).status_code == 401


def test_token_url_sets_a_strict_cookie_and_redirects_without_the_token(anon) -> None:
    r = anon.get(f"/?token={TOKEN}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    cookie = r.headers["set-cookie"]
    assert f"mcphotos_token={TOKEN}" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert anon.get("/api/status").status_code == 200  # the cookie alone now authenticates
    browser = anon.get("/api/photo/" + "0" * 40, headers={"Accept": "text/html"})
    assert browser.status_code == 404


def test_a_browser_without_the_token_gets_a_page_saying_what_to_open(anon) -> None:
    r = anon.get("/", headers={"Accept": "text/html,application/xhtml+xml"})
    assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
    assert "mcphotos serve" in r.text and TOKEN not in r.text
    # Its one inline style is allowed by its hash; nothing else may load or run on it.
    policy = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'" and "script-src" not in policy
    style = re.search(r"<style>(.*?)</style>", r.text, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert policy["style-src"] == f"'sha256-{digest}'"


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{PORT}", "127.0.0.1:1", f"192.168.1.2:{PORT}", ""])
def test_wrong_host_is_refused_even_with_the_token(client, host: str) -> None:
    r = client.get("/api/status", headers={"Host": host})
    assert r.status_code == 421, (host, r.text)


@pytest.mark.parametrize("host", [f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"])
def test_loopback_names_are_accepted(client, host: str) -> None:
    assert client.get("/api/status", headers={"Host": host}).status_code == 200


def test_cross_origin_posts_are_refused(anon, client) -> None:
    anon.get(f"/?token={TOKEN}", follow_redirects=False)  # a browser with the cookie
    body = {"keys": ["k"]}
    assert anon.post("/api/dedup/move", json=body, headers={"Origin": "http://evil.example"}).status_code == 403
    assert anon.post("/api/dedup/move", json=body, headers={"Origin": "null"}).status_code == 403
    assert anon.post("/api/dedup/move", json=body).status_code == 403  # no Origin, no Referer: not a page of ours
    assert anon.post("/api/undo", headers={"Referer": "http://evil.example/page"}).status_code == 403
    # The same origin passes the guard (and then fails for its own reason: no quarantine folder).
    same = anon.post("/api/dedup/move", json=body, headers={"Origin": ORIGIN})
    assert same.status_code == 400 and "quarantine" in same.json()["error"]
    assert anon.post("/api/undo", headers={"Referer": ORIGIN + "/review"}).status_code == 404  # nothing to undo
    # A Bearer client (the CLI, a script) needs no Origin, but a foreign one is still refused.
    assert client.post("/api/undo").status_code == 404
    assert client.post("/api/undo", headers={"Origin": "http://evil.example"}).status_code == 403


@pytest.mark.parametrize("path", ["/thumb/..%2F..%2Fetc%2Fpasswd", "/thumb/../../etc/passwd", "/view/%2Fetc%2Fpasswd",
                                  "/api/photo/..%2F..%2Fetc%2Fpasswd", "/api/photo/%2Fetc%2Fpasswd",
                                  "/static/../../../../etc/passwd", "/static/..%2F..%2F..%2Fetc%2Fpasswd",
                                  "/static/%2Fetc%2Fpasswd", "//etc/passwd", "/thumb/" + "g" * 40])
def test_paths_never_reach_a_file(client, path: str) -> None:
    r = client.get(path)
    assert r.status_code in (400, 404), (path, r.status_code)
    assert b"root:" not in r.content


def test_files_are_served_only_by_an_indexed_hash(client) -> None:
    assert client.get("/thumb/" + "ab" * 20).status_code == 404  # well-formed, not indexed
    assert client.get("/api/photo/" + "ab" * 20).status_code == 404
    assert client.get("/thumb/" + some_id(client)).status_code == 200


def test_no_directory_listing(client) -> None:
    for path in ("/static/", "/static", "/thumb/", "/api/", "/view"):
        r = client.get(path)
        assert r.status_code == 404, (path, r.status_code)


def test_every_answer_carries_the_security_headers(client) -> None:
    for r in (client.get("/api/status"), client.get("/api/photo/zz"), client.get("/thumb/" + some_id(client))):
        assert r.headers["content-security-policy"].startswith(CSP) and "frame-ancestors 'none'" in \
            r.headers["content-security-policy"]
        assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
    assert client.get("/api/status").headers["cache-control"] == "no-store"
    assert client.get("/thumb/" + some_id(client)).headers["cache-control"] == "private, max-age=86400"


def test_a_decompression_bomb_upload_is_refused(client) -> None:
    r = client.post("/api/upload", files={"file": ("bomb.png", io.BytesIO(bomb_png()), "image/png")})
    assert r.status_code == 413 and "decompression bomb" in r.json()["error"]


def test_uploads_are_size_capped_and_must_be_images(shapes_library, tmp_path: Path) -> None:
    small = client_for(shapes_library, tmp_path, max_upload_bytes=10_000)
    r = small.post("/api/upload", files={"file": ("big.jpg", io.BytesIO(b"\xff" * 200_000), "image/jpeg")})
    assert r.status_code == 413 and "MB" in r.json()["error"]
    r = small.post("/api/upload", files={"file": ("notes.jpg", io.BytesIO(b"just text"), "image/jpeg")})
    assert r.status_code == 415 and "not a supported image" in r.json()["error"]
    assert small.post("/api/upload", data={"other": "x"}).status_code == 400


def test_a_wildcard_host_answers_to_this_machines_names_only() -> None:
    import socket

    from mcphotos.serve.security import host_names

    names = host_names("0.0.0.0", PORT)
    assert f"127.0.0.1:{PORT}" in names and f"{socket.gethostname()}:{PORT}".lower() in names
    assert f"evil.example:{PORT}" not in names
    assert host_names("192.168.1.5", PORT) == frozenset(
        {f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}", f"192.168.1.5:{PORT}"})
