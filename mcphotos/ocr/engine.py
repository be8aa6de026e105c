"""The OCR engine: RapidOCR (PP-OCR detection, orientation and recognition) on ONNX Runtime.

RapidOCR is imported only when an engine is built: loading it and its three ONNX models costs
about a second, which ``find``, ``status`` or a ``text`` answered from the store never pay.

Detection size. RapidOCR 3.x resizes a photo for its detector so that the *short* side is at
least 736 pixels (``limit_type: min``); a 2000x1500 photo then runs the detector on all 3 MP,
whether or not it holds any text. Here the detector sees the photo
with its *long* side at most :attr:`OcrSettings.det_side` (960, PaddleOCR's own default),
about a quarter of the pixels; the recognizer still reads each found line from the photo at
up to :attr:`OcrSettings.max_side`, so small print keeps its detail. Most photos hold no text,
so a first detector pass at :attr:`OcrSettings.probe_side` (640, under half the pixels again;
:class:`TextProbe`, run by the decode workers) decides that cheaply; only a photo where it finds
some region is read at full size. It finds print down to about 1/110 of the long side (6 pixels
at 640: bench/ocr_quality.py's small_in_scene variant, which measures these choices).
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcphotos.errors import OcrUnavailableError, UsageError

ENGINE_NAME = "rapidocr"
INSTALL_HINT = "pip install 'mcphotos[ocr]'"


@dataclass(frozen=True)
class OcrLine:
    """One line of text: what it says, how sure the recognizer is, and where (4 corners, x/y pixels).

    Corners are clockwise from the top left, in the upright photo's full-size coordinates.
    """

    text: str
    confidence: float
    box: tuple[tuple[float, float], ...]
    row: int = 0  # lines with the same row number sit side by side (see reading_order)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "confidence": round(self.confidence, 4),
                "box": [[round(x, 1), round(y, 1)] for x, y in self.box], "row": self.row}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OcrLine:
        return cls(str(d["text"]), float(d["confidence"]), tuple((float(x), float(y)) for x, y in d["box"]),
                   int(d.get("row", 0)))


@dataclass(frozen=True)
class OcrResult:
    """What the engine read in one photo, lines in reading order (none: the photo has no text)."""

    lines: tuple[OcrLine, ...]
    engine: str  # "rapidocr"
    version: str  # the package's version
    models: str  # the detection and recognition model files

    @property
    def text(self) -> str:
        """The text in reading order: one row per line, boxes side by side joined by a space."""
        return "\n".join(" ".join(line.text for line in row) for row in self.rows())

    def rows(self) -> list[list[OcrLine]]:
        rows: list[list[OcrLine]] = []
        for line in self.lines:
            if rows and rows[-1][-1].row == line.row:
                rows[-1].append(line)
            else:
                rows.append([line])
        return rows

    @property
    def confidence(self) -> float | None:
        """The mean line confidence; None for a photo without text."""
        return float(np.mean([line.confidence for line in self.lines])) if self.lines else None


@dataclass(frozen=True)
class OcrSettings:
    """How the engine is built. ``models``: a directory of PP-OCR ONNX models to use instead of the shipped ones."""

    models: str | None = None
    det_side: int = 960  # the detector sees the photo's long side at most this long (see module doc)
    det_limit: str = "max"  # "min": RapidOCR's own rule instead (short side at least det_side)
    probe_side: int = 640  # a first detector pass this small says "no text" cheaply; 0: no probe
    max_side: int = 2000  # lines are read from the photo at most this long (decode downscales to it)
    min_confidence: float = 0.5  # lines the recognizer is less sure of are dropped
    threads: int | None = None  # ONNX Runtime intra-op threads (default: every core)


@dataclass(frozen=True)
class ModelFiles:
    det: Path
    rec: Path
    cls: Path | None = None
    keys: Path | None = None  # the recognizer's character list, for models that do not embed it

    def describe(self) -> str:
        return " + ".join(p.name for p in (self.det, self.rec) if p is not None)


def find_models(directory: str | os.PathLike[str]) -> ModelFiles:
    """The PP-OCR models in ``directory``: one ``*det*.onnx``, one ``*rec*.onnx``, optionally
    one ``*cls*.onnx`` and a character list ``*.txt`` (e.g. ``korean_dict.txt``).

    Raises UsageError naming what is missing or ambiguous.
    """
    d = Path(directory).expanduser()
    if not d.is_dir():
        raise UsageError(f"--ocr-models {directory}: not a directory",
                         "give a folder holding a *det*.onnx and a *rec*.onnx PP-OCR model")

    def one(pattern: str, required: bool) -> Path | None:
        found = sorted(p for p in d.glob(pattern) if p.is_file())
        if len(found) > 1:
            raise UsageError(f"--ocr-models {directory}: several files match {pattern}: "
                             f"{', '.join(p.name for p in found)}", "keep one model of each kind in the folder")
        if not found and required:
            raise UsageError(f"--ocr-models {directory}: no {pattern} in it",
                             "a PP-OCR detection (*det*.onnx) and recognition (*rec*.onnx) model are needed")
        return found[0] if found else None

    det, rec = one("*det*.onnx", True), one("*rec*.onnx", True)
    assert det is not None and rec is not None
    files = ModelFiles(det, rec, one("*cls*.onnx", False), one("*.txt", False))
    if files.keys is None and not _embeds_characters(rec):
        # Without one, RapidOCR would try to download a character list: say what is missing instead.
        raise UsageError(f"--ocr-models {directory}: {rec.name} has no character list inside and the folder "
                         "no *.txt", "put the model's character list (e.g. korean_dict.txt) next to it")
    return files


def _embeds_characters(model: Path) -> bool:
    """Whether a PP-OCR recognition model carries its character list (metadata ``character``)."""
    import_backend()
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # only the metadata is read
    options.log_severity_level = 4
    try:
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise OcrUnavailableError(f"cannot load the OCR model {model.name}: {type(e).__name__}: {e}") from None
    return "character" in session.get_modelmeta().custom_metadata_map


def shipped_models() -> ModelFiles:
    """The models inside the rapidocr wheel (PP-OCRv6 small detection and recognition)."""
    root = _rapidocr_dir() / "models"
    det = sorted(root.glob("*det*.onnx"))
    rec = sorted(root.glob("*rec*.onnx"))
    cls = sorted(root.glob("*cls*.onnx"))
    if not det or not rec:
        raise OcrUnavailableError(f"the rapidocr package at {root.parent} ships no models",
                                  f"reinstall it: {INSTALL_HINT}")
    return ModelFiles(det[0], rec[0], cls[0] if cls else None)


def engine_version() -> str:
    """The installed rapidocr's version (what each stored result records)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rapidocr")
    except PackageNotFoundError:
        return "unknown"


def _rapidocr_dir() -> Path:
    return Path(import_backend().__file__ or "").parent


def import_backend() -> Any:
    """Import rapidocr (and with it OpenCV and ONNX Runtime), or say which extra to install.

    Call it in the main thread before starting worker processes: OpenCV's import edits
    ``sys.path`` for a moment, and a process spawned in that moment cannot even import numpy.
    """
    try:
        import onnxruntime  # noqa: F401  (RapidOCR imports it lazily; a missing one fails here, in one line)
        import rapidocr
    except ImportError:
        raise OcrUnavailableError("text recognition needs rapidocr and onnxruntime", INSTALL_HINT) from None
    return rapidocr


def _params(settings: OcrSettings, files: ModelFiles, threads: int) -> dict[str, Any]:
    """RapidOCR's parameters for ``settings`` (its config keys, as its documentation names them)."""
    params: dict[str, Any] = {
        "Global.log_level": "critical",
        "Global.text_score": settings.min_confidence,
        "Global.max_side_len": settings.max_side,
        "Det.limit_type": settings.det_limit,
        "Det.limit_side_len": settings.det_side,
        "Det.model_path": str(files.det),
        "Rec.model_path": str(files.rec),
        "Global.model_root_dir": str(_rapidocr_dir() / "models"),
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
    }
    if files.cls is not None:
        params["Cls.model_path"] = str(files.cls)
    else:
        params["Global.use_cls"] = False
    if files.keys is not None:
        params["Rec.rec_keys_path"] = str(files.keys)
    return params


def _load_failed(files: ModelFiles, e: Exception) -> OcrUnavailableError:
    return OcrUnavailableError(f"cannot load the OCR models ({files.describe()}): {type(e).__name__}: {e}")


# The probe only asks whether a photo may hold text: a region whose mean text probability is
# above this counts (RapidOCR keeps boxes above 0.5). Lower finds the few lines of a receipt
# photographed small more often (bench/ocr_quality.py, variant small_in_scene), at the price of a
# full pass on a blank photo now and then; 0.3 started to flag textured photos without text.
PROBE_BOX_THRESH = 0.4


class TextProbe:
    """The detector alone, on the photo's long side at :attr:`OcrSettings.probe_side`: does the
    photo hold anything that may be a line of text? (The judge of "no text"; cheap: no
    recognizer, under half the detector's pixels.) The decode workers run one each."""

    def __init__(self, settings: OcrSettings, threads: int | None = None) -> None:
        RapidOCR = import_backend().RapidOCR
        self.files = find_models(settings.models) if settings.models else shipped_models()
        params = {**_params(settings, self.files, threads or settings.threads or os.cpu_count() or 1),
                  "Det.limit_side_len": settings.probe_side, "Det.box_thresh": PROBE_BOX_THRESH,
                  "Global.use_cls": False, "Global.use_rec": False}
        try:
            self._det = RapidOCR(params=params)
            self._det._load_det_model()
        except Exception as e:  # a model that is not PP-OCR, a truncated file, ...
            raise _load_failed(self.files, e) from None

    def has_text(self, rgb: np.ndarray) -> bool:
        """Whether the detector finds a text-like region in ``rgb`` (H, W, 3 uint8, ideally
        already at probe size: the detector would shrink it to that)."""
        return _has_text_regions(self._det(np.ascontiguousarray(rgb[:, :, ::-1])), rgb.shape[0] * rgb.shape[1])


class OcrEngine:
    """RapidOCR, built once; :meth:`recognize` reads one photo (an RGB uint8 array)."""

    def __init__(self, settings: OcrSettings | None = None) -> None:
        self.settings = settings or OcrSettings()
        RapidOCR = import_backend().RapidOCR
        self.files = find_models(self.settings.models) if self.settings.models else shipped_models()
        self.version = engine_version()
        self.name = ENGINE_NAME
        self.threads = self.settings.threads or os.cpu_count() or 1
        self._probe: TextProbe | None = None
        try:
            self._ocr = RapidOCR(params=_params(self.settings, self.files, self.threads))
            # Build the three sessions now, so a broken model fails here and not on photo 1.
            self._ocr._load_det_model()
            if self.files.cls is not None:
                self._ocr._load_cls_model()
            self._ocr._load_rec_model()
        except Exception as e:  # a model that is not PP-OCR, a truncated file, ...
            raise _load_failed(self.files, e) from None

    @property
    def models(self) -> str:
        return self.files.describe()

    def has_text(self, rgb: np.ndarray) -> bool:
        """The probe's answer for ``rgb`` (built on first use, with the engine's threads)."""
        if self._probe is None:
            self._probe = TextProbe(self.settings, self.threads)
        return self._probe.has_text(rgb)

    def recognize(self, rgb: np.ndarray, scale: float = 1.0, probe: bool = True) -> OcrResult:
        """Read the text in ``rgb`` (H, W, 3 uint8). ``scale``: its size over the original's,
        so boxes come back in the original photo's pixels. ``probe``: ask the probe first
        (False when a decode worker already did)."""
        if probe and self.settings.probe_side and not self.has_text(rgb):
            return self.no_text()
        out = self._ocr(np.ascontiguousarray(rgb[:, :, ::-1]))
        lines: list[OcrLine] = []
        boxes, txts, scores = getattr(out, "boxes", None), getattr(out, "txts", None), getattr(out, "scores", None)
        if boxes is not None and txts is not None and scores is not None:
            for box, txt, score in zip(boxes, txts, scores, strict=False):
                text = " ".join(str(txt).split())
                if not text:
                    continue
                corners = tuple((float(x) / scale, float(y) / scale) for x, y in np.asarray(box).reshape(-1, 2))
                lines.append(OcrLine(text, float(score), corners))
        short_side = min(rgb.shape[0], rgb.shape[1]) / scale
        lines = [line for line in lines if not is_texture(line, short_side)]
        return OcrResult(tuple(reading_order(lines)), self.name, self.version, self.models)

    def no_text(self) -> OcrResult:
        """The result for a photo the probe found no text in."""
        return OcrResult((), self.name, self.version, self.models)


# On photos without text (a ladybird's spots, a flower's petals, a city's flat shapes) the
# recognizer sometimes reads one to four glyphs out of a region whose thickness (the line's
# height, measured across the box, so a tilted line is not taller for its tilt) is a fifth of
# the photo's short side or more, and is unsure of them ("茶" at 0.69, "HEIW" at 0.61 in
# ../shared/photos). Print that large is read with confidence (a sign, a slide's title, a
# cropped label); a short unsure line that thick is a texture.
TEXTURE_THICKNESS_SHARE = 0.2
TEXTURE_CONFIDENCE = 0.8
TEXTURE_MAX_CHARS = 4


def line_thickness(box: Sequence[tuple[float, float]]) -> float:
    """A quadrilateral box's thickness: the mean length of its shorter pair of opposite sides."""
    if len(box) != 4:
        ys = [y for _, y in box]
        return max(ys) - min(ys) if ys else 0.0
    side = [math.dist(box[i], box[(i + 1) % 4]) for i in range(4)]
    return min((side[0] + side[2]) / 2, (side[1] + side[3]) / 2)


def is_texture(line: OcrLine, short_side: float) -> bool:
    """Whether ``line`` is a texture read as glyphs rather than text (see above)."""
    return (line.confidence < TEXTURE_CONFIDENCE and len(line.text.replace(" ", "")) <= TEXTURE_MAX_CHARS
            and line_thickness(line.box) > TEXTURE_THICKNESS_SHARE * short_side)


# The detector answers some textured photos without any text (noise, blurred blobs) with one box
# around the whole frame; a region that covers this much of the photo is never a line of text.
MAX_REGION_SHARE = 0.5


def _has_text_regions(probe: Any, area: int) -> bool:
    """Whether the probe pass found a region that may be a line of text."""
    boxes = getattr(probe, "boxes", None)
    if boxes is None:
        return False
    for box in np.asarray(boxes, dtype=np.float64).reshape(-1, 4, 2):
        x, y = box[:, 0], box[:, 1]
        shoelace = 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))
        if shoelace < MAX_REGION_SHARE * area:
            return True
    return False


def reading_order(lines: Sequence[OcrLine]) -> list[OcrLine]:
    """Top to bottom, and left to right within a row.

    Lines belong to one row when their vertical centres lie within half a line height of the
    row's first line: a receipt's "Total ...... 12.50" is two boxes on one row, read left first.
    """

    def top(line: OcrLine) -> float:
        return min(y for _, y in line.box)

    def bottom(line: OcrLine) -> float:
        return max(y for _, y in line.box)

    def left(line: OcrLine) -> float:
        return min(x for x, _ in line.box)

    rows: list[list[OcrLine]] = []
    anchor = 0.0
    height = 0.0
    for line in sorted(lines, key=lambda item: (top(item) + bottom(item)) / 2):
        centre = (top(line) + bottom(line)) / 2
        if rows and abs(centre - anchor) <= height / 2:
            rows[-1].append(line)
        else:
            rows.append([line])
            anchor, height = centre, max(bottom(line) - top(line), 1.0)
    return [OcrLine(line.text, line.confidence, line.box, number)
            for number, row in enumerate(rows) for line in sorted(row, key=left)]


_engines: dict[OcrSettings, OcrEngine] = {}
_engines_lock = threading.Lock()


def load_engine(settings: OcrSettings | None = None) -> OcrEngine:
    """The engine for ``settings``, built once per process (its models take a second to load)."""
    key = settings or OcrSettings()
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = OcrEngine(key)
        return engine
