"""One real local Ray runtime for the whole test run (2 CPUs, no dashboard), started on first use.

Its workers import this checkout (``PYTHONPATH``), so the fake encoder of tests/support travels
to the actors by reference, like any user's importable engine factory.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.tools import require_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def ray_runtime() -> Iterator[Any]:
    ray = require_module("ray", "ray")
    require_module("ray.data", "ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": str(ROOT)}})
    try:
        yield ray
    finally:
        ray.shutdown()
