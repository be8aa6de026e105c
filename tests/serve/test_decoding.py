"""The server's decode workers: threads share the crash-isolating pool; a crash or hang fails one task."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from mcphotos.serve.decoding import Crashed, DecodePool
from tests.support.crashers import misbehave


def test_a_crash_or_a_hang_costs_one_task_and_the_others_answer() -> None:
    pool = DecodePool(workers=2, timeout=3.0)
    try:
        items = ["a", "crash", "b", "hang", "c"]
        with ThreadPoolExecutor(len(items)) as threads:  # asked at once, from request threads
            results = dict(zip(items, threads.map(lambda i: pool.run(misbehave, i), items), strict=True))
        assert {i: results[i] for i in "abc"} == {i: f"ok:{i}" for i in "abc"}
        assert isinstance(results["crash"], Crashed) and "crashed" in results["crash"].reason
        assert isinstance(results["hang"], Crashed) and "longer than" in results["hang"].reason
        assert pool.run(misbehave, "d") == "ok:d"  # the pool goes on
    finally:
        pool.close()
