"""`mcphotos serve` as a user runs it: a real process, its URL line, its run file, SIGTERM."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]


def serve_env(tmp_path: Path) -> dict[str, str]:
    """A private runtime dir short enough for the warm socket's path (sun_path: ~100 bytes), and a cache dir."""
    run = Path(tempfile.mkdtemp(prefix="mcp-", dir="/tmp"))
    os.chmod(run, 0o700)
    atexit.register(shutil.rmtree, run, True)
    (tmp_path / "run").symlink_to(run)
    return {**os.environ, "XDG_RUNTIME_DIR": str(run), "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def start(args: list[str], env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "mcphotos", "serve", "--no-browser", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line:
        proc.kill()
        raise AssertionError(f"no URL line; stderr: {proc.communicate()[1]}")
    return proc, line


def get(url: str, token: str | None = None, host: str | None = None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if host:
        headers["Host"] = host
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def test_serve_prints_the_url_answers_and_stops_cleanly_on_sigterm(shapes_store, tiny_args, tmp_path: Path) -> None:
    home, _ = shapes_store
    env = serve_env(tmp_path)
    proc, url = start(["--port", "0", "--store", str(home), *tiny_args], env)
    try:
        assert url.startswith("http://127.0.0.1:") and "/?token=" in url
        base, token = url.split("/?token=")
        assert len(token) >= 43  # 256 bits, URL-safe base64
        code, body = get(base + "/api/search?q=red%20circle&k=2", token)
        assert code == 200 and len(json.loads(body)["hits"]) == 2
        assert get(base + "/api/status")[0] == 401
        runfiles = list((tmp_path / "run" / "mcphotos").glob("serve-*.json"))
        assert len(runfiles) == 1 and (runfiles[0].stat().st_mode & 0o777) == 0o600
        record = json.loads(runfiles[0].read_text())
        assert (record["token"], record["pid"], record["port"]) == (token, proc.pid, int(base.rsplit(":", 1)[1]))
        assert len(list((tmp_path / "run" / "mcphotos").glob("warm-*.sock"))) == 1  # the CLI's warm model
        # A CLI find of the same store answers through this process: it imports neither ONNX Runtime nor hnswlib.
        probe = ("import sys, runpy; sys.argv = ['mcphotos', *sys.argv[1:]]\n"
                 "try:\n    runpy.run_module('mcphotos', run_name='__main__')\n"
                 "finally:\n    print(sorted(m for m in ('onnxruntime', 'hnswlib') if m in sys.modules),"
                 " file=sys.stderr)\n")
        found = subprocess.run([sys.executable, "-c", probe, "find", "a purple star never asked", "-k", "2",
                                "--paths", "--store", str(home), *tiny_args], env=env, capture_output=True,
                               text=True, timeout=60)
        assert found.returncode == 0 and len(found.stdout.splitlines()) == 2, found.stderr
        assert found.stderr.strip().splitlines()[-1] == "[]", found.stderr
        status = json.loads(subprocess.run([sys.executable, "-m", "mcphotos", "status", "--json", "--store",
                                            str(home), *tiny_args], env=env, capture_output=True, text=True,
                                           timeout=60, check=True).stdout)["server"]
        assert status["pid"] == proc.pid and status["requests"].get("find") == 1
        second = subprocess.run([sys.executable, "-m", "mcphotos", "serve", "--no-browser", "--port", "0",
                                 "--store", str(home), *tiny_args], env=env, capture_output=True, text=True,
                                timeout=60)
        assert second.returncode == 1 and second.stdout == "" and len(second.stderr.strip().splitlines()) == 1
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert out == ""  # the URL was the only line on stdout
    assert not list((tmp_path / "run" / "mcphotos").glob("serve-*.json"))
    assert not list((tmp_path / "run" / "mcphotos").glob("warm-*.sock"))


def test_another_host_warns_and_still_needs_the_token(shapes_store, tiny_args, tmp_path: Path) -> None:
    home, _ = shapes_store
    proc, url = start(["--port", "0", "--host", "0.0.0.0", "--store", str(home), *tiny_args], serve_env(tmp_path))
    try:
        base, token = url.split("/?token=")
        assert get(base + "/api/status")[0] == 401 and get(base + "/api/status", token)[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "warning: --host 0.0.0.0 makes your photos reachable from other computers" in err


def test_missing_extra_is_one_clear_line(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['uvicorn'] = None\n"
            "from mcphotos.cli import main; sys.argv = ['mcphotos', 'serve', '--no-browser']; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=serve_env(tmp_path))
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr.strip().splitlines() == ["mcphotos: mcphotos serve needs its extra: pip install 'mcphotos[serve]' "
                                             "(uvicorn is missing)"]


def test_serving_searches_never_import_torch(shapes_store, tiny_clip, tmp_path: Path) -> None:
    home, _ = shapes_store
    cfg, weights = tiny_clip
    code = (
        "import sys\n"
        "from mcphotos.library import Library\n"
        "from tests.support.serving import client_for\n"
        "from pathlib import Path\n"
        f"lib = Library(home={str(home)!r}, model={str(cfg)!r}, weights={str(weights)!r})\n"
        f"c = client_for(lib, Path({str(tmp_path)!r}))\n"
        "assert c.get('/api/search', params={'q': 'a never asked yellow star'}).status_code == 200\n"
        "hit = c.get('/api/search', params={'q': 'green'}).json()['hits'][0]['id']\n"
        "assert c.get('/api/search', params={'like': hit}).status_code == 200\n"
        "assert c.get('/api/dedup').status_code == 200 and c.get('/thumb/' + hit).status_code == 200\n"
        "print(sorted(m for m in ('torch', 'open_clip', 'timm') if m in sys.modules))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=serve_env(tmp_path),
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
