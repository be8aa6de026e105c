"""OCR runs with the real RapidOCR models: bad files, Ctrl-C and kill -9 with resume, the CLI's
`ocr` and `index --ocr`, the progress bar (a terminal only), --ocr-models, the missing extra."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import signal
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from mcphotos import Library
from mcphotos.errors import Interrupted, OcrUnavailableError, UsageError
from mcphotos.ocr.engine import OcrEngine, OcrSettings, load_engine, shipped_models
from mcphotos.ocr.runner import OcrOptions
from mcphotos.ocr.textstore import counts, stored_texts
from mcphotos.search.query import FindSpec
from tests.search.test_search_filters import FakeEngine
from tests.support.fakes import SPEC
from tests.support.textphotos import text_photo


@pytest.fixture(scope="module")
def engine() -> OcrEngine:
    return load_engine()  # the process-wide engine: the library and the CLI below reuse it


def text_of(library: Library, path: Path) -> str:
    store = library.store()
    rec = store.get_file(str(path))
    assert rec is not None and rec.hash
    return stored_texts(store, [rec.hash])[rec.hash].result.text


# -- failures, resume, models ----------------------------------------------------------------------


@pytest.fixture
def small_lib(tmp_path: Path, engine: OcrEngine):
    pics = tmp_path / "pics"
    for i in range(4):
        text_photo(pics / f"p{i}.png", [f"Ticket {1000 + i}"])
    encoder = FakeEngine()
    library = Library(home=tmp_path / "home", engine_factory=lambda: encoder, preprocess=SPEC)
    library.index([str(pics)])
    yield library, pics
    library.close()


def test_bad_file_costs_one_line_and_is_not_retried(small_lib, cli) -> None:
    library, pics = small_lib
    bad = pics / "p0.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # broken after it was indexed
    lines: list[tuple[str, str]] = []
    report = library.ocr(on_skip=lambda p, r: lines.append((p, r)))
    assert (report.read, report.failed) == (3, 1)
    assert [p for p, _ in lines] == [str(bad)]
    again: list[tuple[str, str]] = []
    assert library.ocr(on_skip=lambda p, r: again.append((p, r))).read == 0 and again == []
    retried = library.ocr(options=OcrOptions(retry_failed=True), on_skip=lambda p, r: again.append((p, r)))
    assert (retried.read, retried.failed, len(again)) == (0, 1, 1)
    r = cli("text", str(bad), str(pics / "p1.png"), "--store", str(library.home), code=1)
    assert r.stdout == f"{pics / 'p1.png'}: Ticket 1001\n"
    assert r.stderr.count("skipping") == 1 and str(bad) in r.stderr


def test_interrupted_run_keeps_committed_batches_and_resumes(small_lib) -> None:
    library, _ = small_lib
    seen: list[int] = []

    def stop_after_two(done: int, total: int) -> None:
        seen.append(done)
        if done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        library.ocr(options=OcrOptions(batch_size=1), on_progress=stop_after_two)
    assert counts(library.store()).photos == 2
    resumed = library.ocr()
    assert (resumed.already, resumed.read) == (2, 2)
    assert sorted(os.path.basename(h.path) for h in library.run_find(FindSpec(contains=("ticket",)))) == \
        ["p0.png", "p1.png", "p2.png", "p3.png"]


def test_kill_9_mid_run_then_resume_reads_each_photo_once(tmp_path: Path, engine: OcrEngine) -> None:
    pics = tmp_path / "pics"
    for i in range(12):
        text_photo(pics / f"t{i:02d}.png", [f"Ticket {2000 + i}"])
    home = tmp_path / "home"
    encoder = FakeEngine()
    with Library(home=home, engine_factory=lambda: encoder, preprocess=SPEC) as library:
        library.index([str(pics)])
    (db,) = home.glob("models/*/store.db")
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen([sys.executable, "-m", "tests.support.ocr_driver", str(home), str(pics)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=root)
    committed, deadline = 0, time.monotonic() + 120
    try:
        while committed < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
            try:
                with sqlite3.connect(db, timeout=1) as c:
                    committed = c.execute("SELECT COUNT(*) FROM ocr").fetchone()[0]
            except sqlite3.Error:
                pass
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and its decode worker, mid-run
        proc.wait()
    assert 2 <= committed < 12, "the driver was not killed mid-run"
    with Library(home=home, engine_factory=lambda: encoder, preprocess=SPEC) as library:
        kept = counts(library.store()).photos
        assert kept >= committed  # nothing committed before the kill is lost
        resumed = library.ocr()
        assert (resumed.already, resumed.read, resumed.failed) == (kept, 12 - kept, 0)
        for i in range(12):
            assert text_of(library, pics / f"t{i:02d}.png") == f"Ticket {2000 + i}"


def test_cli_ocr_and_index_ocr(tmp_path: Path, cli, engine: OcrEngine, tiny_args: list[str]) -> None:
    pics = tmp_path / "pics"
    text_photo(pics / "sign.png", ["Platform 9"])
    home = tmp_path / "home"
    r = cli("index", pics, *tiny_args, "--store", home)
    r = cli("find", "--contains", "platform", *tiny_args, "--store", home)
    assert "mcphotos: warning: no photo's text has been read yet: run `mcphotos ocr`" in r.stderr
    r = cli("index", pics, "--ocr", *tiny_args, "--store", home)
    assert "indexed 1 files: 0 new, 0 reused, 1 unchanged" in r.stderr
    assert "read text in 1 photos: 1 with text, 0 without, 0 failed, 0 read before" in r.stderr
    r = cli("ocr", "--json", "--quiet", *tiny_args, "--store", home)
    assert json.loads(r.stdout)["already"] == 1 and r.stderr == ""
    late = text_photo(tmp_path / "late.png", ["Exit"])
    r = cli("ocr", late, *tiny_args, "--store", home)
    assert r.stderr.startswith(f"skipping {late}: not indexed")
    r = cli("find", "--contains", "platform", "--paths", *tiny_args, "--store", home)
    assert r.stdout == f"{pics / 'sign.png'}\n"
    r = cli("find", "sign", "--contains", "platform", "--contains", "9", "--paths", *tiny_args, "--store", home)
    assert r.stdout == f"{pics / 'sign.png'}\n"


def test_progress_bar_on_a_terminal_only(tmp_path: Path, cli, engine: OcrEngine, tiny_args: list[str]) -> None:
    pics = tmp_path / "pics"
    for i in range(3):
        text_photo(pics / f"s{i}.png", [f"Gate {i}"])
    home = tmp_path / "home"
    cli("index", pics, *tiny_args, "--store", home)
    cmd = [sys.executable, "-m", "mcphotos", "ocr", *map(str, tiny_args), "--store", str(home)]
    leader, follower = pty.openpty()  # stderr is a terminal: the bar shows
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column one
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=follower, timeout=300)
        os.close(follower)
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed: all read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0, seen
    assert b"3/3" in seen and b"photo" in seen  # tqdm's bar, then the summary line
    assert b"read text in 3 photos: 3 with text" in seen
    piped = subprocess.run([*cmd, "--force"], capture_output=True, text=True, timeout=300)  # not a terminal
    assert piped.returncode == 0 and piped.stdout == ""
    assert piped.stderr.splitlines() == [piped.stderr.strip()] and piped.stderr.startswith("read text in 3 photos")


def test_ocr_models_directory_loads_shipped_files(tmp_path: Path, engine: OcrEngine) -> None:
    from PIL import Image

    shipped = shipped_models()
    models = tmp_path / "models"
    models.mkdir()
    for f in (shipped.det, shipped.rec):
        os.symlink(f, models / f.name)
    own = OcrEngine(OcrSettings(models=str(models)))
    assert own.files.cls is None and own.files.keys is None and own.models == engine.models
    photo = np.asarray(Image.open(text_photo(tmp_path / "x.png", ["Gleis 7"])).convert("RGB"))
    assert own.recognize(photo).text == "Gleis 7"
    os.remove(models / shipped.rec.name)
    with pytest.raises(UsageError, match=r"no \*rec\*\.onnx"):
        OcrEngine(OcrSettings(models=str(models)))

    # A recognizer that does not embed its characters (as some downloaded ones): the shipped one
    # without its metadata. Alone it is refused in one line; with its list as a *.txt it reads.
    model = onnx.load(str(shipped.rec))
    (characters,) = [p.value for p in model.metadata_props if p.key == "character"]
    del model.metadata_props[:]
    onnx.save(model, str(models / "latin_rec.onnx"))
    with pytest.raises(UsageError, match=r"latin_rec\.onnx has no character list"):
        OcrEngine(OcrSettings(models=str(models)))
    (models / "latin_dict.txt").write_text(characters + "\n", encoding="utf-8")
    listed = OcrEngine(OcrSettings(models=str(models)))
    assert listed.files.keys == models / "latin_dict.txt"
    assert listed.recognize(photo).text == "Gleis 7"


def test_missing_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rapidocr", None)  # what an environment without the extra imports
    with pytest.raises(OcrUnavailableError, match=r"mcphotos\[ocr\]"):
        OcrEngine(OcrSettings(det_side=123))
