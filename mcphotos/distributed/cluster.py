"""Connecting to Ray: a cluster's address, or a local runtime sized to this machine."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcphotos.errors import McPhotosError, UsageError

RAY_HINT = "pip install mcphotos[ray]"


def require_ray() -> Any:
    """The ``ray`` module with Ray Data, or one clear error naming the extra."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise McPhotosError("--ray needs Ray Data, which is not installed", RAY_HINT) from None
    return ray


@dataclass(frozen=True)
class Resources:
    cpus: int
    gpus: int


def connect(address: str | None) -> Any:
    """Ray, initialized: ``None`` starts a local runtime (or reuses the one this process started),
    ``auto`` joins the cluster this machine belongs to, ``ray://host:port`` one over Ray Client."""
    ray = require_ray()
    if address is not None and address != "auto" and not address.startswith("ray://"):
        raise UsageError(f"--ray {address}: give auto or ray://HOST:PORT, or no address for a local runtime")
    # Ray's own start-up chatter and per-stage progress bars are not mcphotos' output.
    if not ray.is_initialized():
        kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR,
                                  "log_to_driver": False}
        if address is None:
            # A local runtime's workers import the same mcphotos as this driver, whatever its install.
            here = str(Path(__file__).resolve().parents[2])
            path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH")) if p)
            kwargs["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
        try:
            ray.init(address=address, **kwargs)
        except ConnectionError as e:
            raise McPhotosError(f"cannot reach the Ray cluster at {address}: {e}",
                                "start it with `ray start --head`, or leave out the address for a local runtime"
                                ) from None
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)  # init re-configures them
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    return ray


def resources(ray: Any) -> Resources:
    total = ray.cluster_resources()
    return Resources(int(total.get("CPU", 0)), int(total.get("GPU", 0)))
