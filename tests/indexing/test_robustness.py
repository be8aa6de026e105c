"""Fault injection: bad files, files changing under us, crashes, interruption, locks, damage."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mcphotos.indexing.indexer as indexer_mod
from mcphotos.cli import app
from mcphotos.indexing.hashing import hash_file
from mcphotos.indexing.indexer import Indexer, IndexOptions
from mcphotos.indexing.workers import Failed, WorkerPool
from mcphotos.library import Library
from mcphotos.store.check import check_store, repair
from mcphotos.store.database import Store
from tests.support.badfiles import make_zoo
from tests.support.fakes import SPEC, FakeEncoder
from tests.support.photos import photo

ROOT = Path(__file__).resolve().parents[2]  # the repository: the index driver runs as a module from it
from tests.support.cli import runner  # noqa: E402


def fake_library(home: Path) -> Library:
    return Library(home=home, engine_factory=FakeEncoder, preprocess=SPEC)


# -- bad input -------------------------------------------------------------------------------------

def test_zoo_of_bad_files_each_gets_one_line_and_the_run_continues(tmp_path: Path) -> None:
    zoo = make_zoo(tmp_path / "zoo")
    skipped: list[tuple[str, str]] = []
    with fake_library(tmp_path / "home") as lib:
        report = lib.index([str(tmp_path / "zoo")], options=IndexOptions(workers=2, timeout=20),
                           on_skip=lambda p, r: skipped.append((p, r)))
        files = lib.store().files_under()
    assert len(zoo) >= 25
    by_path: dict[str, list[str]] = {}
    for p, r in skipped:
        by_path.setdefault(p, []).append(r)
    for name, case in zoo.items():
        if case.kind == "walk" and case.ok:
            assert str(case.path) not in by_path, name
            continue
        reasons = by_path.get(str(case.path), [])
        if case.ok:
            assert not reasons, f"{name} should index: {reasons}"
            assert files[str(case.path)].status == "ok", name
        else:
            assert len(reasons) == 1, f"{name}: expected exactly one skip line, got {reasons}"
            assert case.reason in reasons[0].lower(), f"{name}: {reasons[0]!r} lacks {case.reason!r}"
    # Failed = the bad regular files, each recorded as failed once: the FIFO and the broken symlinks
    # are skipped by the walk and never reach the decoder; every good file is indexed, none reused.
    bad_files = {str(c.path) for c in zoo.values()
                 if not c.ok and c.kind == "file" and c.path.is_file() and not c.path.is_symlink()}
    good_files = {str(c.path) for c in zoo.values() if c.ok and c.kind == "file"}
    assert len(bad_files) == 11 and len(good_files) == 16
    assert report.failed == len(bad_files)
    assert {p for p, rec in files.items() if rec.status == "failed"} == bad_files
    assert report.new == len(good_files) and report.reused == 0
    assert {p for p, rec in files.items() if rec.status == "ok"} == good_files
    print(f"{len(zoo)} kinds of input; {len(skipped)} skipped, {report.new} indexed")


def test_truncated_files_are_recorded_failed_never_embedded(tmp_path: Path) -> None:
    zoo = make_zoo(tmp_path / "zoo")
    with fake_library(tmp_path / "home") as lib:
        lib.index([str(tmp_path / "zoo")], options=IndexOptions(workers=2))
        files = lib.store().files_under()
        for name in ("truncated.jpg", "truncated.png", "truncated.webp", "truncated.tiff"):
            rec = files[str(zoo[name].path)]
            assert rec.status == "failed", name
            assert rec.hash is None or lib.store().vector_for_hash(rec.hash) is None, name


def test_orientations_embed_like_the_upright_image(tmp_path: Path) -> None:
    """All 8 EXIF orientations of one picture embed (nearly) like the upright original."""
    from PIL import Image

    from mcphotos.indexing.imaging import decode_for_model

    src = Image.open(photo(tmp_path / "u.png", seed=4, size=(200, 120))).convert("RGB")
    ref = decode_for_model((tmp_path / "u.png").read_bytes(), SPEC).pixels.astype(float)
    inverse = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
               4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90,
               7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}
    enc = FakeEncoder()
    ref_vec = enc.encode_images(ref[None].astype(np.uint8))[0]
    for o, t in inverse.items():
        exif = Image.Exif()
        exif[0x0112] = o
        p = tmp_path / f"o{o}.jpg"
        src.transpose(t).save(p, "JPEG", quality=95, exif=exif)
        px = decode_for_model(p.read_bytes(), SPEC).pixels
        assert np.abs(px.astype(float) - ref).mean() < 4.0, o
        assert float(enc.encode_images(px[None])[0] @ ref_vec) > 0.99, o


def _png16(samples: np.ndarray) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): (H, W) grey or (H, W, 3) RGB."""
    import struct
    import zlib

    h, w = samples.shape[:2]
    colour_type = 2 if samples.ndim == 3 else 0

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = samples.astype(">u2").reshape(h, -1)
    raw = b"".join(b"\0" + row.tobytes() for row in rows)  # filter type 0 on every row
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_sixteen_bit_images_decode_to_their_8_bit_values(tmp_path: Path) -> None:
    """16-bit grey (PNG, little- and big-endian TIFF) and 16-bit RGB PNG decode to the pixels of the
    same picture at 8 bits: scaled by 255/65535, never clipped at 255 (white) nor wrapped."""
    import io

    from PIL import Image

    from mcphotos.indexing.imaging import decode_for_model

    rng = np.random.default_rng(7)
    h, w = 120, 200
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    # Full-range structure: ramps, a sine pattern, noise; every 8-bit level appears in 16 bits.
    rgb16 = np.stack([xx / (w - 1) * 65535,
                      32767.5 + 32767.5 * np.sin(xx / 9 + yy / 13),
                      (1 - yy / (h - 1)) * 65535], axis=-1)
    rgb16 = np.clip(rgb16 + rng.normal(0, 900, rgb16.shape), 0, 65535).round().astype(np.uint16)
    grey16 = rgb16[..., 1].copy()

    def png8(arr16: np.ndarray) -> bytes:
        arr8 = np.round(arr16.astype(np.float64) * 255 / 65535).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(arr8, "RGB" if arr8.ndim == 3 else "L").save(buf, "PNG")
        return buf.getvalue()

    def saved(img: Image.Image, fmt: str) -> bytes:
        buf = io.BytesIO()
        img.save(buf, fmt)
        return buf.getvalue()

    cases = {
        "grey PNG (I;16)": (saved(Image.fromarray(grey16), "PNG"), grey16, "I;16"),
        "grey TIFF (I;16)": (saved(Image.fromarray(grey16), "TIFF"), grey16, "I;16"),
        "grey TIFF (I;16B)": (saved(Image.fromarray(grey16.astype(">u2")), "TIFF"), grey16, "I;16B"),
        "grey PNG, hand-written": (_png16(grey16), grey16, "I;16"),
        "RGB PNG, hand-written": (_png16(rgb16), rgb16, "RGB"),  # Pillow reads 16-bit RGB as 8-bit RGB
    }
    for name, (data, arr16, mode) in cases.items():
        img = Image.open(io.BytesIO(data))
        assert img.size == (w, h), name
        assert img.mode == mode, (name, img.mode)  # the 16-bit path is what runs
        ref = decode_for_model(png8(arr16), SPEC).pixels.astype(float)
        got = decode_for_model(data, SPEC).pixels.astype(float)
        assert got.shape == ref.shape == (*SPEC.size, 3), name
        diff = np.abs(got - ref)
        # 8 bits of a 16-bit sample: rounded or truncated, at most one level apart before resampling.
        assert diff.max() <= 2 and diff.mean() < 0.75, (name, diff.max(), diff.mean())
        assert 60 < got.mean() < 200 and got.std() > 30, name  # a picture, not a white or black square


def test_decoder_crash_and_hang_cost_one_file_each() -> None:
    from tests.support.crashers import misbehave

    pool = WorkerPool(2, timeout=3)
    items = ["a", "crash", "b", "hang", "c", "d"]
    t0 = time.monotonic()
    results = list(pool.imap_unordered(misbehave, items))
    pool.close()
    ok = sorted(r for r in results if isinstance(r, str))
    failed = {r.path: r.reason for r in results if isinstance(r, Failed)}
    assert ok == ["ok:a", "ok:b", "ok:c", "ok:d"]
    assert set(failed) == {"crash", "hang"}
    assert "crashed" in failed["crash"] and "longer than" in failed["hang"]
    assert time.monotonic() - t0 < 30


def test_file_deleted_or_modified_between_walk_and_decode(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "pics"
    gone = photo(root / "gone.png", seed=1)
    changed = photo(root / "changed.png", seed=2)
    photo(root / "fine.png", seed=3)
    real_hash_task = indexer_mod.hash_task

    def meddling_hash_task(path: str):
        result = real_hash_task(path)
        if path == str(gone):
            gone.unlink()
        if path == str(changed):
            photo(changed, seed=99)  # rewritten after it was hashed
            os.utime(changed, ns=(time.time_ns() + 10**9,) * 2)
        return result

    monkeypatch.setattr(indexer_mod, "hash_task", meddling_hash_task)
    store = Store(tmp_path / "s", {"name": "f", "source": "t"})
    skipped: list[tuple[str, str]] = []
    Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1), on_skip=lambda p, r: skipped.append((p, r))
            ).index([str(root)])
    files = store.files_under()
    assert [p for p, _ in skipped] == [str(gone)] and "vanished" in skipped[0][1]
    assert str(gone) not in files  # not recorded as failed: it is simply gone
    assert files[str(changed)].hash == hash_file(changed)  # the stored vector is of the bytes on disk
    monkeypatch.setattr(indexer_mod, "hash_task", real_hash_task)
    r = Indexer(store, FakeEncoder(), SPEC, IndexOptions(workers=1)).index([str(root)])
    assert r.unchanged == 2 and r.hashed == 0


# -- concurrency -----------------------------------------------------------------------------------

def test_second_writer_is_refused_and_readers_never_wait(tmp_path: Path) -> None:
    home = tmp_path / "home"
    photo(tmp_path / "pics" / "a.png", seed=1)
    with fake_library(home) as lib:
        lib.index([str(tmp_path / "pics")])
        store_dir = lib.store_dir
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from filelock import FileLock\n"
        f"l = FileLock({str(store_dir / 'writer.lock')!r}); l.acquire()\n"
        "print('locked', flush=True); time.sleep(60)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with fake_library(home) as lib2:
            with pytest.raises(Exception, match="another mcphotos process is writing"):
                lib2.index([str(tmp_path / "pics")])
            t0 = time.monotonic()
            st = lib2.status()
            hits = lib2.search_vector(np.ones(FakeEncoder.dim, dtype=np.float32), k=5)
            assert time.monotonic() - t0 < 2.0
            assert st.stats is not None and st.stats.files == 1 and len(hits) == 1
        r = runner.invoke(app, ["status", "--json", "--store", str(home)])
        assert r.exit_code == 0
    finally:
        holder.kill()  # a killed holder releases the lock: the kernel drops it
        holder.wait()
    with fake_library(home) as lib3:
        assert lib3.index([str(tmp_path / "pics")]).unchanged == 1


# -- interruption and crash ------------------------------------------------------------------------

def _store_state(home: Path) -> tuple[dict[str, tuple], dict[str, np.ndarray]]:
    with fake_library(home) as lib:
        st = lib.store()
        records = st.files_under()
        files = {p: (r.hash, r.status) for p, r in records.items()}
        vecs = {r.hash: st.vector_for_hash(r.hash) for r in records.values() if r.status == "ok"}
        report = check_store(st)
        assert report.ok, report.problems
    return files, vecs


@pytest.mark.slow
def test_kill_9_at_random_moments_then_resume_matches_a_clean_run(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    for i in range(120):
        photo(root / f"d{i % 4}" / f"p{i:03d}.png", seed=i, size=(320, 240))
    for i in range(3):  # copies and a bad file
        (root / f"copy{i}.png").write_bytes((root / "d0" / "p000.png").read_bytes())
    (root / "bad.jpg").write_bytes(b"nope")
    driver = [sys.executable, "-m", "tests.support.index_driver"]  # run from the repository root
    clean = tmp_path / "clean"
    t0 = time.monotonic()
    subprocess.run([*driver, str(clean), str(root)], check=True, capture_output=True, cwd=ROOT)
    full = time.monotonic() - t0
    want_files, want_vecs = _store_state(clean)
    rng = random.Random(1234)
    trials, started = 20, time.monotonic()
    for trial in range(trials):
        home = tmp_path / f"k{trial}"
        for _ in range(2):  # two kills per trial, at random moments of the run
            proc = subprocess.Popen([*driver, str(home), str(root)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True, cwd=ROOT)
            time.sleep(rng.uniform(0.05, full))
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run([*driver, str(home), str(root)], check=True, capture_output=True, timeout=120, cwd=ROOT)
        files, vecs = _store_state(home)
        assert files == want_files, f"trial {trial}"
        for h, v in want_vecs.items():
            assert float(vecs[h] @ v) >= 0.999, f"trial {trial}: vector of {h}"
    print(f"kill -9 loop: {trials} trials x 2 kills, 0 failures, {time.monotonic() - started:.1f}s "
          f"(clean run {full:.1f}s)")


def test_ctrl_c_keeps_committed_work_and_exits_130(tmp_path: Path, tiny_args: list[str]) -> None:
    root = tmp_path / "pics"
    for i in range(400):
        photo(root / f"p{i:03d}.png", seed=i, size=(640, 480))
    home = tmp_path / "home"
    env = {**os.environ, "MCPHOTOS_HOME": str(home)}
    cmd = [sys.executable, "-m", "mcphotos", "index", str(root), "--batch-size", "8", *tiny_args]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    db = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dbs = list(home.glob("models/*/store.db"))
        if dbs:
            db = dbs[0]
            try:
                c = sqlite3.connect(db, timeout=1)
                n = c.execute("SELECT COUNT(*) FROM files").fetchone()[0]
                c.close()
            except sqlite3.Error:
                n = 0
            if n >= 8:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "interrupted" in lines[0] and "kept" in lines[0], err
    r = subprocess.run([*cmd, "--json", "-q"], env=env, capture_output=True, text=True, check=True)
    report = json.loads(r.stdout)
    assert report["unchanged"] >= 8 and report["new"] + report["unchanged"] == 400


# -- damage and repair -----------------------------------------------------------------------------

def _indexed_home(tmp_path: Path, n: int = 12) -> Path:
    home = tmp_path / "home"
    for i in range(n):
        photo(tmp_path / "pics" / f"{i}.png", seed=i)
    with fake_library(home) as lib:
        lib.index([str(tmp_path / "pics")])
    return home


def _check_cli(home: Path, *extra: str):
    return runner.invoke(app, ["check", "--store", str(home), "--json", *extra])


@pytest.mark.parametrize("damage", ["truncated-index", "wrong-dimension", "garbage-after-db", "nan-vector",
                                    "missing-manifest"])
def test_damaged_store_is_detected_and_repaired(tmp_path: Path, damage: str) -> None:
    home = _indexed_home(tmp_path)
    store_dir = next(home.glob("models/*"))
    if damage == "truncated-index":
        data = (store_dir / "ann.bin").read_bytes()
        (store_dir / "ann.bin").write_bytes(data[: len(data) // 3])
    elif damage == "wrong-dimension":
        man = json.loads((store_dir / "ann.json").read_text())
        man["dim"] = 7
        (store_dir / "ann.json").write_text(json.dumps(man))
    elif damage == "garbage-after-db":
        with open(store_dir / "store.db", "ab") as f:
            f.write(os.urandom(4096 * 3 + 17))
    elif damage == "nan-vector":
        c = sqlite3.connect(store_dir / "store.db")
        nan = np.full(FakeEncoder.dim, np.nan, np.float32).tobytes()
        c.execute("UPDATE images SET vector = ? WHERE id = 1", (nan,))
        c.commit()
        c.close()
    elif damage == "missing-manifest":
        (store_dir / "ann.json").unlink()
    before = _check_cli(home)
    if damage != "garbage-after-db":  # SQLite ignores bytes past its page count: harmless
        assert before.exit_code == 1 and json.loads(before.stdout)["ok"] is False, damage
    fixed = _check_cli(home, "--repair")
    assert fixed.exit_code == 0, fixed.stdout
    assert _check_cli(home).exit_code == 0
    with fake_library(home) as lib:  # the next index re-embeds whatever repair dropped
        r = lib.index([str(tmp_path / "pics")])
        assert r.failed == 0 and r.new + r.unchanged == 12
        assert len(lib.search_vector(np.ones(FakeEncoder.dim, dtype=np.float32), k=20)) == 12


def test_repair_never_touches_photos(tmp_path: Path) -> None:
    home = _indexed_home(tmp_path)
    before = {p: p.read_bytes() for p in (tmp_path / "pics").iterdir()}
    store_dir = next(home.glob("models/*"))
    (store_dir / "ann.bin").write_bytes(b"junk")
    with Store(store_dir) as st:
        repair(st)
    assert {p: p.read_bytes() for p in (tmp_path / "pics").iterdir()} == before


# -- security --------------------------------------------------------------------------------------

class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ.get('EVIL_MARKER', '/tmp/mcphotos-evil')}",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path: Path, monkeypatch) -> None:
    import torch

    marker = tmp_path / "pwned"
    monkeypatch.setenv("EVIL_MARKER", str(marker))
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": _Evil()}, evil)
    photo(tmp_path / "pics" / "a.png")
    r = runner.invoke(app, ["index", str(tmp_path / "pics"), "--weights", str(evil), "-q"])
    assert r.exit_code == 1 and "cannot load weights" in r.stderr
    assert not marker.exists()


def test_index_writes_nothing_next_to_the_photos(tmp_path: Path) -> None:
    root = tmp_path / "pics"
    for i in range(5):
        photo(root / f"{i}.jpg", seed=i, fmt="JPEG")
    before = sorted(os.walk(root))
    with fake_library(tmp_path / "home") as lib:
        lib.index([str(root)])
    assert sorted(os.walk(root)) == before


def test_stdin_path_lists_are_data(tmp_path: Path) -> None:
    """Odd names from stdin are paths, never shell or options; a '../..' path is just the file it
    names (normalized, read like any listed file, never written to); nothing else is read."""
    root = tmp_path / "photos" / "pics"
    good = photo(root / "a b.png", seed=1)
    hostile = root / "$(touch pwned); --help.png"
    photo(hostile, seed=2)
    photo(root / "unlisted.png", seed=3)  # beside the listed ones: not listed, not indexed
    # The file '../../etc/passwd' reaches from the photo folder, outside it: it really exists.
    passwd = tmp_path / "etc" / "passwd"
    passwd.parent.mkdir()
    passwd.write_text("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/usr/sbin/nologin\n")
    os.utime(passwd, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before = (passwd.read_bytes(), passwd.stat().st_mtime_ns, passwd.stat().st_mode)
    traversal = f"{root}/../../etc/passwd"
    assert Path(traversal).resolve() == passwd.resolve()
    listing = f"{good}\n{hostile}\n{traversal}\n".encode()
    skipped: list[tuple[str, str]] = []
    with fake_library(tmp_path / "home") as lib:
        import io

        from mcphotos.indexing.walk import read_path_list

        report = lib.index([], list(read_path_list(io.BytesIO(listing))), on_skip=lambda p, r: skipped.append((p, r)))
        files = lib.store().files_under()
    assert report.new == 2 and report.failed == 1
    # The traversal is resolved to the file it names, which is not a photo: one skip line, recorded
    # as failed, no vector; the stored paths are normalized (no '..' survives).
    assert skipped == [(str(passwd), "not a supported image (unrecognized content)")]
    assert set(files) == {str(good), str(hostile), str(passwd)}
    assert files[str(passwd)].status == "failed" and files[str(good)].status == files[str(hostile)].status == "ok"
    assert (passwd.read_bytes(), passwd.stat().st_mtime_ns, passwd.stat().st_mode) == before
    assert sorted(p.name for p in passwd.parent.iterdir()) == ["passwd"]  # nothing written beside it
    assert not (root / "pwned").exists() and not Path("pwned").exists()
