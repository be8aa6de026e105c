"""The ONNX Runtime engine: a prepared model's towers, run without torch, open_clip or timm.

It satisfies :class:`~mcphotos.models.encoder.Encoder`, so every feature runs on it unchanged.
Each tower's session opens on first use, or ahead of it in a background thread
(:meth:`OnnxEngine.prefetch`), so a text query opens the text tower while the store opens and
never pays for the image tower. The graphs were optimized at export; only the CPU-specific
layout passes run at open, which costs little (bench/startup.py measures each step).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcphotos.background import Background
from mcphotos.errors import ModelLoadError
from mcphotos.indexing.preprocess_spec import PreprocessSpec
from mcphotos.models.runtime import Manifest
from mcphotos.models.tokenizer import ClipTokenizer

TEXT_BATCH = 64  # prompts per session call: bounded memory for label sets of thousands
IMAGE_BATCH = 16


def session_options(threads: int | None = None, spinning: bool = False) -> Any:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # warnings about optimized graphs are ours to handle, not the user's
    if not spinning:
        # Idle threads sleep instead of busy-waiting, so the decode workers get the cores while
        # indexing (the same reason torch runs with OMP_WAIT_POLICY=PASSIVE, bench/tune_threads.py).
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return so


class OnnxEngine:
    """Encodes with the prepared ONNX towers in ``folder``; output rows are float32 unit vectors."""

    name = "onnx"
    device = "cpu"
    precision = "fp32"

    def __init__(self, folder: Path, manifest: Manifest, threads: int | None = None) -> None:
        self.folder = folder
        self.manifest = manifest
        self.dim = manifest.dim
        self.logit_scale = manifest.logit_scale
        self.preprocess = PreprocessSpec.from_dict(manifest.identity["preprocess"])
        self._threads = threads
        # Not daemons: exiting while ONNX Runtime builds a session in such a thread aborts the
        # process (std::terminate), so exit waits for it instead.
        self._tokenizer: Background[ClipTokenizer] = Background(
            lambda: ClipTokenizer.from_file(folder / "tokenizer.json", manifest.context_length), daemon=False)
        self._towers: dict[str, Background[Any]] = {
            t: Background(functools.partial(self._open, t), name=f"onnx-{t}", daemon=False) for t in ("image", "text")}

    def describe(self) -> str:
        return "onnx (cpu, fp32)"

    def prefetch(self, *towers: str) -> None:
        """Start opening ``towers`` (and the tokenizer, with the text tower) in the background."""
        for t in towers:
            self._towers[t].start()
            if t == "text":
                self._tokenizer.start()

    def _open(self, tower: str) -> Any:
        import onnxruntime as ort

        try:
            return ort.InferenceSession(str(self.folder / f"{tower}.onnx"), session_options(self._threads),
                                        providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelLoadError(f"cannot open the prepared {tower} tower in {self.folder}: {e}",
                                 "run `mcphotos models prepare` again") from None

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """``pixels``: uint8 (N, H, W, 3), already resized and cropped to the model's input."""
        if len(pixels) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        session = self._towers["image"].get()
        out = [session.run(None, {"pixels": np.ascontiguousarray(pixels[i:i + IMAGE_BATCH])})[0]
               for i in range(0, len(pixels), IMAGE_BATCH)]
        return _unit(np.concatenate(out))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        tokens = self._tokenizer.get()(list(texts))
        session = self._towers["text"].get()
        out = [session.run(None, {"tokens": tokens[i:i + TEXT_BATCH]})[0] for i in range(0, len(tokens), TEXT_BATCH)]
        return _unit(np.concatenate(out))


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
