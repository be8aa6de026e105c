"""An OCR pass over indexed photos, and recognition of any photo on the fly (``mcphotos text``).

The pass reads each distinct content once: copies and renames share the row of their hash, and a
hash with a row (text, no text, or a recorded failure) is not read again, so a run that was
interrupted (Ctrl-C, kill -9) resumes where its last committed batch ended. Photos are decoded
in the crash-isolating worker processes (indexing/workers.py), which also run the detector's
cheap probe (ocr/decode.py): a photo without text never reaches this process's engine. Full
detection and recognition run here, in ONNX Runtime sessions that use every core.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from mcphotos.errors import Interrupted
from mcphotos.indexing.workers import Failed, WorkerPool
from mcphotos.ocr.decode import OcrDecoded, ocr_decode_task
from mcphotos.ocr.engine import ENGINE_NAME, OcrEngine, OcrResult, OcrSettings, engine_version
from mcphotos.ocr.textstore import done_hashes, put_failures, put_results, stored_texts
from mcphotos.store.database import Store

# Below this many photos to read, loading the detector in every decode worker costs more than it saves.
WORKER_PROBE_MIN = 32

ProgressCallback = Callable[[int, int], None]
SkipCallback = Callable[[str, str], None]
EngineLoader = Callable[[], OcrEngine]


@dataclass
class OcrOptions:
    retry_failed: bool = False  # read again the photos whose reading failed before
    force: bool = False  # read again every photo, replacing stored text (e.g. with other --ocr-models)
    batch_size: int = 8  # results per commit: what an interruption may lose
    workers: int | None = None  # decode processes; default: one per core
    timeout: float = 60.0  # per file, in a worker
    # Whether the decode workers run the detector's probe (each loads the detector once, about a
    # second); None: when at least WORKER_PROBE_MIN photos are to be read, else this process probes.
    probe_in_workers: bool | None = None


@dataclass
class OcrReport:
    files: int = 0  # indexed files considered
    read: int = 0  # distinct contents recognized in this run
    with_text: int = 0  # of which held text
    without_text: int = 0  # of which held none (recorded, never asked again)
    already: int = 0  # distinct contents with stored text from an earlier run
    failed: int = 0  # contents that could not be decoded or recognized
    elapsed: float = 0.0
    interrupted: bool = False
    skipped: list[tuple[str, str]] = field(default_factory=list)


def run_ocr(store: Store, files: dict[str, str], load_engine: EngineLoader, settings: OcrSettings,
            options: OcrOptions | None = None, on_progress: ProgressCallback | None = None,
            on_skip: SkipCallback | None = None) -> OcrReport:
    """Recognize the text of ``files`` (path -> content hash, indexed) and store it per hash.

    Takes the store's writer lock for the run; raises Interrupted (work so far committed) on Ctrl-C.
    """
    options = options or OcrOptions()
    started = time.monotonic()
    report = OcrReport(files=len(files))
    lock = store.writer_lock()
    lock.acquire()
    try:
        _run(store, files, load_engine, settings, options, report, on_progress, on_skip)
    except KeyboardInterrupt:
        report.interrupted = True
        raise Interrupted(f"interrupted: kept the text of {report.read} photos read so far",
                          "run the same command again to resume") from None
    finally:
        lock.release()
        report.elapsed = time.monotonic() - started
    return report


def _run(store: Store, files: dict[str, str], load_engine: EngineLoader, settings: OcrSettings,
         options: OcrOptions, report: OcrReport, on_progress: ProgressCallback | None,
         on_skip: SkipCallback | None) -> None:
    by_hash: dict[str, list[str]] = {}
    for path, h in sorted(files.items()):
        by_hash.setdefault(h, []).append(path)
    done = set() if options.force else done_hashes(store, by_hash, options.retry_failed)
    report.already = len(done)
    todo = {by_hash[h][0]: h for h in by_hash if h not in done}
    total = len(by_hash)
    progress = [report.already]

    def tick() -> None:
        if on_progress:
            on_progress(progress[0], total)

    def skip(path: str, reason: str) -> None:
        report.skipped.append((path, reason))
        if on_skip:
            on_skip(path, reason)

    tick()
    if not todo:
        return
    # Built before any worker is spawned: OpenCV, imported with it, edits sys.path for a moment,
    # and a worker spawned in that moment cannot even import numpy.
    engine = load_engine()
    workers = options.workers or os.cpu_count() or 1
    pool = WorkerPool(workers, timeout=options.timeout)
    probe_in_workers = options.probe_in_workers
    if probe_in_workers is None:
        probe_in_workers = len(todo) >= WORKER_PROBE_MIN
    results: list[tuple[str, OcrResult]] = []
    failures: list[tuple[str, str]] = []

    def commit() -> None:
        if results or failures:
            with store.transaction():
                put_results(store, results)
                put_failures(store, failures, ENGINE_NAME, engine_version())
            results.clear()
            failures.clear()

    try:
        # Few in flight: a photo with text is a few megabytes, and recognition is the slow step.
        for res in pool.imap_unordered(ocr_decode_task, list(todo), args=(settings, probe_in_workers),
                                       in_flight=2 * workers):
            expected = todo.get(res.path)
            if isinstance(res, Failed):
                skip(res.path, res.reason)
                if not res.retry and expected is not None:
                    failures.append((expected, res.reason))
                    report.failed += 1
            else:
                outcome = _recognize(engine, res)
                if isinstance(outcome, str):
                    skip(res.path, outcome)
                    failures.append((res.hash, outcome))
                    report.failed += 1
                else:
                    # The bytes read are what was recognized: keyed by their hash (the same as
                    # the index's unless the file changed since, when re-indexing will match it).
                    results.append((res.hash, outcome))
                    report.read += 1
                    if outcome.lines:
                        report.with_text += 1
                    else:
                        report.without_text += 1
            progress[0] += 1
            if len(results) + len(failures) >= options.batch_size:
                commit()
            tick()
        commit()
        tick()
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()


def _recognize(engine: OcrEngine, decoded: OcrDecoded) -> OcrResult | str:
    """The engine's result, or the one-line reason it failed on this photo."""
    if decoded.pixels is None:  # the worker's probe found no text
        return engine.no_text()
    try:
        return engine.recognize(decoded.pixels, decoded.scale, probe=not decoded.probed)
    except MemoryError:
        return "out of memory while recognizing text"
    except Exception as e:  # one photo that trips the engine costs that photo, not the run
        return f"text recognition failed: {type(e).__name__}: {e}"


# -- on the fly: `mcphotos text` ------------------------------------------------------------------------


@dataclass(frozen=True)
class PhotoText:
    """The text of one photo, and where it came from: "store" or "recognized" (now)."""

    path: str
    hash: str
    result: OcrResult
    source: str


def photo_texts(store: Store | None, paths: Sequence[str], load_engine: EngineLoader, settings: OcrSettings,
                on_skip: SkipCallback | None = None, workers: int | None = None,
                timeout: float = 60.0) -> list[PhotoText]:
    """The text of each of ``paths`` (in their order): stored when the store has their content,
    else recognized now. A recognition is stored only for content the store has indexed, and only
    when no other process is writing; anything else leaves the store untouched."""
    found: dict[str, PhotoText] = {}
    unknown: list[str] = []
    for path in dict.fromkeys(paths):
        answer = _stored_by_path(store, path) if store is not None else None
        if answer is not None:
            found[path] = answer
        else:
            unknown.append(path)
    if unknown:
        fresh: list[tuple[str, OcrResult]] = []
        engine: OcrEngine | None = None
        pool = WorkerPool(min(len(unknown), workers or os.cpu_count() or 1), timeout=timeout)
        try:
            # No probe in the workers: for a few photos, loading the detector there costs more than it saves.
            for res in pool.imap_unordered(ocr_decode_task, unknown, args=(settings, False)):
                if isinstance(res, Failed):
                    if on_skip:
                        on_skip(res.path, res.reason)
                    continue
                stored = stored_texts(store, [res.hash]).get(res.hash) if store is not None else None
                if stored is not None and stored.error is None:
                    found[res.path] = PhotoText(res.path, res.hash, stored.result, "store")
                    continue
                engine = engine or load_engine()
                outcome = _recognize(engine, res)
                if isinstance(outcome, str):
                    if on_skip:
                        on_skip(res.path, outcome)
                    continue
                found[res.path] = PhotoText(res.path, res.hash, outcome, "recognized")
                fresh.append((res.hash, outcome))
        except BaseException:
            pool.terminate()
            raise
        else:
            pool.close()
        if store is not None and fresh:
            _store_if_indexed(store, fresh)
    return [found[p] for p in dict.fromkeys(paths) if p in found]


def _stored_by_path(store: Store, path: str) -> PhotoText | None:
    """The stored text of an indexed file that has not changed since (same size and mtime)."""
    rec = store.get_file(path)
    if rec is None or rec.status != "ok" or rec.hash is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    if (st.st_size, st.st_mtime_ns) != (rec.size, rec.mtime_ns):
        return None
    stored = stored_texts(store, [rec.hash]).get(rec.hash)
    if stored is None or stored.error is not None:
        return None
    return PhotoText(path, rec.hash, stored.result, "store")


def _store_if_indexed(store: Store, fresh: Iterable[tuple[str, OcrResult]]) -> None:
    indexed = store.has_hashes(h for h, _ in fresh)
    keep = [(h, r) for h, r in fresh if h in indexed]
    if not keep:
        return
    lock = store.writer_lock()
    if not lock.try_acquire():
        return  # another process writes: the text was shown, storing it can wait for `mcphotos ocr`
    try:
        with store.transaction():
            put_results(store, keep)
    finally:
        lock.release()
