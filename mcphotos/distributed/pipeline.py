"""The Ray Data pipeline of ``index --ray``: read → decode (CPU tasks) → embed (actor pool) → driver.

Ray Data's documented pattern for batch inference: ``map_batches`` with a function for the
CPU stage and a class for the model stage, which Ray runs as a pool of actors that each build
the model once (``__init__``), with ``concurrency`` actors and ``num_gpus`` each; results
stream back to the driver through ``iter_batches`` while later blocks are still decoding.

- The decode stage runs the project's own guarded decoder (``workers.decode_task``, or
  ``decode_bytes`` for shipped bytes), so a bad file fails with the same reason as locally.
- Workers read the files by path. A path the cluster cannot read, but this machine can, is not
  the file's fault: it is skipped with a hint about ``--ray-ship-bytes`` and not recorded as
  failed, so the next run tries it again. With ship_bytes the driver reads each file (the same
  checks as locally) and sends its bytes, in windows that bound the driver's memory.
- Rows carry their facts as one JSON string (hash, size, sizes, capture time, signatures):
  Arrow then never has to guess a type for a column that is sometimes null.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mcphotos.distributed.cluster import Resources, connect, resources
from mcphotos.distributed.recipes import Recipe
from mcphotos.indexing.imaging import DecodedImage, PreprocessSpec
from mcphotos.indexing.remotestage import Embedded
from mcphotos.indexing.workers import Decoded, Failed, decode_bytes, decode_task, read_checked

SHIP_HINT = "pass --ray-ship-bytes to send the bytes from this machine"
SHIP_WINDOW_BYTES = 256 << 20  # bytes in flight per shipped window: bounds the driver's memory
DECODE_BATCH = 16
DECODE_CPUS = 0.5


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: a local runtime; "auto"; "ray://host:port"
    ship_bytes: bool = False
    batch_size: int = 64  # photos per actor call, and per batch streamed back and committed
    actors: int | None = None  # default: one per GPU, else one per 8 CPUs (at least one)


def _facts(d: Decoded | Failed, unreachable: bool = False) -> str:
    if isinstance(d, Failed):
        return json.dumps({"reason": d.reason, "retry": d.retry, "unreachable": unreachable})
    im = d.image
    return json.dumps({"hash": d.hash, "size": d.size, "mtime_ns": d.mtime_ns, "width": im.width,
                       "height": im.height, "taken_at": im.taken_at, "phash": im.phash,
                       "colors": im.colors.hex() if im.colors is not None else None, "detail": im.detail})


def decode_batch(batch: dict[str, np.ndarray], spec: dict, max_pixels: int) -> dict[str, np.ndarray]:
    """The CPU stage: decode each row's file (by path, or its shipped bytes) for the model."""
    pre = PreprocessSpec.from_dict(spec)
    h, w = pre.size
    paths = [str(p) for p in batch["path"]]
    out_pixels = np.zeros((len(paths), h, w, 3), dtype=np.uint8)
    ok = np.zeros(len(paths), dtype=bool)
    facts: list[str] = []
    for i, path in enumerate(paths):
        if "data" in batch:
            res = decode_bytes(path, bytes(batch["data"][i]), int(batch["size"][i]), int(batch["mtime_ns"][i]),
                               pre, max_pixels)
        else:
            res = decode_task(path, pre, max_pixels)
        if isinstance(res, Failed):
            facts.append(_facts(res, unreachable="data" not in batch and not os.access(path, os.R_OK)))
            continue
        ok[i] = True
        out_pixels[i] = res.image.pixels
        facts.append(_facts(res))
    return {"path": np.array(paths, dtype=object), "ok": ok, "facts": np.array(facts, dtype=object),
            "pixels": out_pixels}


class EmbedActor:
    """The model stage: one encoder per actor, built once; failed rows pass through unembedded."""

    def __init__(self, recipe: Recipe) -> None:
        self.encoder = recipe.build()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        ok = np.asarray(batch["ok"], dtype=bool)
        vectors = np.zeros((len(ok), int(self.encoder.dim)), dtype=np.float32)
        if ok.any():
            vectors[ok] = self.encoder.encode_images(np.asarray(batch["pixels"])[ok])
        return {"path": batch["path"], "ok": ok, "facts": batch["facts"], "vector": vectors}


class RayEmbedder:
    """:class:`~mcphotos.indexing.remotestage.RemoteEmbedder` on Ray Data."""

    def __init__(self, options: RayOptions, recipe: Callable[[Resources], Recipe]) -> None:
        self.options = options
        self._choose = recipe  # picks the encoder once the cluster's resources are known
        self.ray: Any = None
        self.recipe: Recipe | None = None
        self.resources = Resources(0, 0)

    def _connect(self) -> None:
        """Connect on first use: a run with nothing to embed never starts Ray."""
        if self.ray is None:
            self.ray = connect(self.options.address)
            self.resources = resources(self.ray)
            self.recipe = self._choose(self.resources)

    def actors(self) -> tuple[int, float]:
        """(actors, GPUs per actor) from the cluster's resources."""
        gpus = self.resources.gpus if self.recipe is not None and self.recipe.gpu else 0
        n = self.options.actors or (gpus if gpus else max(1, self.resources.cpus // 8))
        return n, (1.0 if gpus else 0.0)

    def embed(self, paths: list[str], spec: PreprocessSpec, max_pixels: int) -> Iterator[list[Embedded | Failed]]:
        self._connect()
        if not self.options.ship_bytes:
            yield from self._run([{"path": p} for p in paths], spec, max_pixels)
            return
        window: list[dict[str, Any]] = []
        held = 0
        for path in paths:
            read = read_checked(path)  # the same checks (regular file, stable while read) as locally
            if isinstance(read, Failed):
                yield [read]
                continue
            data, st = read
            window.append({"path": path, "data": data, "size": st.st_size, "mtime_ns": st.st_mtime_ns})
            held += len(data)
            if held >= SHIP_WINDOW_BYTES:
                yield from self._run(window, spec, max_pixels)
                window, held = [], 0
        if window:
            yield from self._run(window, spec, max_pixels)

    def _run(self, items: list[dict[str, Any]], spec: PreprocessSpec, max_pixels: int
             ) -> Iterator[list[Embedded | Failed]]:
        n, gpus = self.actors()
        ds = self.ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // DECODE_BATCH, 256)))
        # Half a CPU per decode task (decoding waits on reads too) also keeps the decode stage its own
        # pool of CPU tasks: with the actors' resources, Ray Data would fuse it into them, and only
        # `n` processes would decode.
        ds = ds.map_batches(decode_batch, fn_kwargs={"spec": spec.to_dict(), "max_pixels": max_pixels},
                            batch_size=DECODE_BATCH, batch_format="numpy", num_cpus=DECODE_CPUS)
        ds = ds.map_batches(EmbedActor, fn_constructor_kwargs={"recipe": self.recipe},
                            compute=self.ray.data.ActorPoolStrategy(size=n), num_gpus=gpus,
                            batch_size=self.options.batch_size, batch_format="numpy")
        for batch in ds.iter_batches(batch_size=self.options.batch_size, batch_format="numpy"):
            yield [self._result(str(p), bool(ok), str(f), v)
                   for p, ok, f, v in zip(batch["path"], batch["ok"], batch["facts"], batch["vector"], strict=True)]

    @staticmethod
    def _result(path: str, ok: bool, facts: str, vector: np.ndarray) -> Embedded | Failed:
        f = json.loads(facts)
        if not ok:
            if f.get("unreachable") and os.access(path, os.R_OK):
                # The cluster cannot see this path but this machine can: not the file's fault.
                return Failed(path, f"the Ray workers cannot read it ({f['reason']}); {SHIP_HINT}", retry=True)
            return Failed(path, f["reason"], bool(f.get("retry")))
        image = DecodedImage(np.zeros((0, 0, 3), dtype=np.uint8), f["width"], f["height"], f["taken_at"], f["phash"],
                             bytes.fromhex(f["colors"]) if f["colors"] is not None else None, f["detail"])
        return Embedded(Decoded(path, f["hash"], f["size"], f["mtime_ns"], image),
                        np.asarray(vector, dtype=np.float32))
