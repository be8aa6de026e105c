"""The warm model: CLI commands go through a running WarmServer, or fall back silently.

The store is indexed with the suite's tiny trained CLIP (its ONNX runtime prepared), the server
runs in a thread of this process, and the CLI runs as users run it: a fresh interpreter. That
it went through the server is shown twice: the server counts the request, and the CLI process
never imported ONNX Runtime, torch or hnswlib.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import socket
import sqlite3
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mcphotos.library import Library
from mcphotos.warm.client import connect
from mcphotos.warm.paths import runtime_dir, socket_path, store_id
from mcphotos.warm.server import WarmServer, WarmServerRunning
from tests.support.photos import shape_photo
from tests.support.warm import FakePeer, run_cli, short_runtime_dir

COLORS, SHAPES = ("red", "green", "blue", "yellow"), ("circle", "square", "star")


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """$XDG_RUNTIME_DIR for this module (the server here and the CLI processes both read it)."""
    folder = short_runtime_dir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("XDG_RUNTIME_DIR", str(folder))
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, tiny_clip: tuple[Path, Path]) -> tuple[Path, list[str]]:
    """(home, model args) of a tiny-CLIP store of 12 shape photos with its ONNX runtime prepared."""
    root = tmp_path_factory.mktemp("warm")
    for i, (c, s) in enumerate(itertools.product(COLORS, SHAPES)):
        shape_photo(root / "pics" / f"{c}-{s}.png", c, s, i)
    cfg, weights = tiny_clip
    home = root / "home"
    with Library(home=home, model=str(cfg), weights=str(weights)) as lib:
        lib.index([str(root / "pics")])
        assert lib.engines().manifest() is not None, "the tiny CLIP's runtime should be prepared"
    return home, ["--model", str(cfg), "--weights", str(weights)]


def library(store: tuple[Path, list[str]]) -> Library:
    home, args = store
    return Library(home=home, model=args[1], weights=args[3])


@pytest.fixture()
def server(store: tuple[Path, list[str]], runtime: Path) -> Iterator[WarmServer]:
    lib = library(store)
    srv = WarmServer(lib, url="http://127.0.0.1:8765/")
    srv.start()
    yield srv
    srv.close()
    lib.close()


def forget_texts(home: Path, texts: list[str]) -> None:
    """Drop texts from the store's cache, so the next query of them is new again."""
    [db] = home.glob("models/*/store.db")
    with sqlite3.connect(db) as conn:
        conn.executemany("DELETE FROM text_cache WHERE text = ?", [(t,) for t in texts])


def cli(store: tuple[Path, list[str]], tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    home, model = store
    return run_cli([*args, "--store", str(home), *model], env or {}, tmp_path)


def test_cli_find_goes_through_the_server_and_matches_a_local_find(store, server, tmp_path: Path) -> None:
    query = ["find", "a red circle + a red square", "-k", "5", "--json"]
    forget_texts(store[0], ["a red circle", "a red square"])
    warm = cli(store, tmp_path, *query)
    assert warm.code == 0, warm.stderr
    assert server.requests["find"] == 1
    assert warm.modules == [], f"the CLI opened {warm.modules} itself"
    assert warm.stderr == ""
    server.close()
    forget_texts(store[0], ["a red circle", "a red square"])
    local = cli(store, tmp_path, *query)
    assert local.code == 0 and "onnxruntime" in local.modules  # it really encoded by itself
    w, lo = warm.json_lines(), local.json_lines()
    assert [x["path"] for x in w] == [x["path"] for x in lo] and len(w) == 5
    assert Path(w[0]["path"]).name in ("red-circle.png", "red-square.png")
    np.testing.assert_allclose([x["score"] for x in w], [x["score"] for x in lo], atol=2e-6)


def test_filters_and_cut_offs_behave_the_same_through_the_server(store, server, tmp_path: Path) -> None:
    root = store[0].parent
    # a relative --in means this process's folder, not the server's (which runs elsewhere)
    query = ["find", "a blue star", "--in", "pics", "--ext", "png", "--relative", "0.5", "--json"]
    warm = run_cli([*query, "--store", str(store[0]), *store[1]], {}, tmp_path, cwd=root)
    assert warm.code == 0 and server.requests["find"] == 1, warm.stderr
    local = run_cli([*query, "--store", str(store[0]), *store[1]], {"MCPHOTOS_NO_WARM": "1"}, tmp_path, cwd=root)
    assert warm.json_lines() == local.json_lines() and warm.json_lines()
    auto = ["find", "a yellow circle", "--auto-cut", "--paths"]
    warm_auto = cli(store, tmp_path, *auto)
    local_auto = cli(store, tmp_path, *auto, env={"MCPHOTOS_NO_WARM": "1"})
    assert warm_auto.stdout == local_auto.stdout and warm_auto.stdout
    assert server.requests["find"] == 2
    # a query the CLI refuses is refused the same way, with the same message and exit code
    bad = cli(store, tmp_path, "find", "beach +")
    assert bad.code == 2 and "ends with an operator" in bad.stderr and server.requests["find"] == 2


def test_embed_tag_and_score_encode_through_the_server(store, server, tmp_path: Path) -> None:
    forget_texts(store[0], ["a green star"])
    warm = cli(store, tmp_path, "embed", "--text", "a green star")
    assert warm.code == 0 and server.requests["encode_text"] == 1, warm.stderr
    assert not set(warm.modules) & {"onnxruntime", "torch"}
    forget_texts(store[0], ["a green star"])
    local = cli(store, tmp_path, "embed", "--text", "a green star", env={"MCPHOTOS_NO_WARM": "1"})
    assert "onnxruntime" in local.modules  # encoded by itself this time
    np.testing.assert_allclose(warm.json_lines()[0]["vector"], local.json_lines()[0]["vector"], atol=1e-6)

    labels = tmp_path / "shapes.txt"
    labels.write_text("# Shapes\nstar = a star | a {} shape\ncircle = a circle\n")
    before = server.requests["encode_text"]
    tagged = cli(store, tmp_path, "tag", "--labels", str(labels), "--json", "--single")
    assert tagged.code == 0, tagged.stderr
    assert server.requests["encode_text"] > before and not set(tagged.modules) & {"onnxruntime", "torch"}
    star = next(x for x in tagged.json_lines() if x["path"].endswith("red-star.png"))
    assert [t["label"] for t in star["tags"]][:1] == ["star"]

    photo = Path(store[0]).parent / "pics" / "green-square.png"
    before = server.requests["encode_text"]
    scored = cli(store, tmp_path, "score", str(photo), "a green square, new words", "--json")
    assert scored.code == 0 and server.requests["encode_text"] == before + 1, scored.stderr
    assert not set(scored.modules) & {"onnxruntime", "torch"}


def test_a_photo_outside_the_store_is_encoded_by_the_server(store, server, tmp_path: Path) -> None:
    outside = shape_photo(tmp_path / "elsewhere" / "purple-circle.png", "purple", "circle", 99)
    warm = cli(store, tmp_path, "find", "--image", str(outside), "-k", "3", "--json")
    assert warm.code == 0 and server.requests["encode_images"] == 1, warm.stderr
    assert "onnxruntime" not in warm.modules and "torch" not in warm.modules
    local = cli(store, tmp_path, "find", "--image", str(outside), "-k", "3", "--json", env={"MCPHOTOS_NO_WARM": "1"})
    assert [x["path"] for x in warm.json_lines()] == [x["path"] for x in local.json_lines()]
    np.testing.assert_allclose([x["score"] for x in warm.json_lines()], [x["score"] for x in local.json_lines()],
                               atol=2e-6)


def test_socket_is_0600_in_a_0700_folder_and_a_second_server_is_refused(store, server, runtime: Path) -> None:
    assert server.path is not None and server.path.parent == runtime / "mcphotos"
    assert stat.S_IMODE(os.stat(server.path).st_mode) == 0o600 and stat.S_ISSOCK(os.stat(server.path).st_mode)
    assert stat.S_IMODE(os.stat(server.path.parent).st_mode) == 0o700
    other = library(store)
    with pytest.raises(WarmServerRunning):
        WarmServer(other).start()
    other.close()
    server.close()
    assert not server.path.exists()


def test_a_stale_socket_is_ignored_by_the_cli_and_replaced_by_the_next_server(store, runtime: Path,
                                                                              tmp_path: Path) -> None:
    lib = library(store)
    path = socket_path(lib.store_dir, create=True)
    assert path is not None
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(path))
    dead.close()  # the socket file stays, nobody listens: a server that was killed
    assert path.exists()
    forget_texts(store[0], ["a yellow star"])
    run = cli(store, tmp_path, "find", "a yellow star", "-k", "2", "--paths")
    assert run.code == 0 and run.stderr == "" and run.stdout.splitlines()[0].endswith("yellow-star.png")
    with WarmServer(lib) as srv:  # replaces the dead socket
        assert srv.path == path
        again = cli(store, tmp_path, "find", "a yellow star", "-k", "2", "--paths")
        assert again.stdout == run.stdout and srv.requests["find"] == 1
    lib.close()


@pytest.mark.parametrize("peer", ["other identity", "other store", "never answers"])
def test_a_socket_that_is_not_this_stores_server_is_left_alone(store, runtime: Path, tmp_path: Path,
                                                               peer: str) -> None:
    lib = library(store)
    path = socket_path(lib.store_dir, create=True)
    assert path is not None
    hello = {"protocol": 1, "store": os.path.realpath(lib.store_dir), "identity": lib.identity(), "engine": "auto",
             "pid": 1}
    if peer == "other identity":
        hello["identity"] = {**lib.identity(), "source": "weights:0000"}
    elif peer == "other store":
        hello["store"] = "/somewhere/else"
    fake = FakePeer(path, lambda r: None if peer == "never answers" else hello)
    try:
        assert connect(lib.store_dir, lib.identity()) is None
        forget_texts(store[0], ["a blue circle"])
        run = cli(store, tmp_path, "find", "a blue circle", "-k", "1", "--paths")
        assert run.code == 0 and run.stderr == "" and run.stdout.strip().endswith("blue-circle.png")
        assert [r["op"] for r in fake.seen] == ["hello", "hello"]  # nothing but hello was ever sent
        assert "onnxruntime" in run.modules  # it encoded by itself
    finally:
        fake.close()
        lib.close()


def test_the_encoder_falls_back_when_the_server_stops_mid_command(store, runtime: Path) -> None:
    srv_lib = library(store)
    srv = WarmServer(srv_lib)
    srv.start()
    lib = library(store)
    try:
        engine = lib.engine()
        assert engine.describe().startswith("warm")
        first = engine.encode_texts(["a red star"])
        assert srv.requests["encode_text"] == 1
        srv.close()
        second = engine.encode_texts(["a red star"])  # the server is gone: the local engine answers
        assert engine.describe().startswith("onnx")
        np.testing.assert_allclose(first, second, atol=1e-6)
    finally:
        lib.close()
        srv_lib.close()


def test_status_shows_the_running_server(store, server, tmp_path: Path) -> None:
    run = cli(store, tmp_path, "status", "--json")
    data = json.loads(run.stdout)
    assert data["server"]["pid"] == os.getpid() and data["server"]["same_identity"] is True
    assert data["server"]["url"] == "http://127.0.0.1:8765/"
    table = cli(store, tmp_path, "status")
    assert f"running (pid {os.getpid()}, http://127.0.0.1:8765/)" in table.stdout
    server.close()
    assert "none running" in cli(store, tmp_path, "status").stdout


def test_the_runtime_dir_falls_back_to_a_private_temporary_folder(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    xdg = short_runtime_dir()
    temp = Path(tempfile.mkdtemp(prefix="mct", dir="/tmp"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    try:
        assert runtime_dir() is None  # nothing there yet, and a client never creates anything
        (xdg / "mcphotos").write_text("")  # the runtime dir cannot hold our folder
        folder = runtime_dir(create=True)
        assert folder == temp / f"mcphotos-{os.getuid()}"
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        assert socket_path("/some/store", create=True) == folder / f"warm-{store_id('/some/store')}.sock"
        os.chmod(folder, 0o755)  # opened up by someone: a client does not trust it, the server closes it again
        assert runtime_dir() is None
        assert runtime_dir(create=True) == folder and stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        os.rmdir(folder)
        folder.symlink_to(tmp_path)  # a symlink is never the folder
        assert runtime_dir() is None and runtime_dir(create=True) is None
        (xdg / "mcphotos").unlink()  # the runtime dir is usable again: it comes first
        assert runtime_dir(create=True) == xdg / "mcphotos"
        assert stat.S_IMODE(os.stat(xdg / "mcphotos").st_mode) == 0o700
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        shutil.rmtree(xdg, ignore_errors=True)
