"""The core's warnings reach the caller through ``on_warning``, whatever the root logger says."""

from __future__ import annotations

import logging
from pathlib import Path

from mcphotos.library import Library


def test_a_randomly_initialized_model_is_reported_to_the_callback(tiny_clip: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    cfg, _ = tiny_clip
    heard: list[str] = []
    root = logging.getLogger()
    before = root.level
    root.setLevel(logging.CRITICAL)  # what the CLI does to keep third-party chatter off stderr
    try:
        with Library(home=tmp_path / "home", model=str(cfg), on_warning=heard.append) as lib:
            lib.engine()
    finally:
        root.setLevel(before)
    assert any("randomly initialized" in m for m in heard), heard
    # Closed: the forwarding is gone, and the logger is as it was.
    logging.getLogger("mcphotos.models.clip").warning("after close")
    assert not any("after close" in m for m in heard)
    assert logging.getLogger("mcphotos").propagate


def test_the_cli_prints_the_core_warnings_on_stderr(tiny_clip: tuple[Path, Path], tmp_path: Path, cli) -> None:
    from tests.support.photos import shape_photo

    cfg, _ = tiny_clip
    shape_photo(tmp_path / "pics" / "a.png", "red", "circle", seed=1)
    r = cli("index", tmp_path / "pics", "-q", "--store", tmp_path / "home", "--model", cfg)
    warnings = [line for line in r.stderr.splitlines() if line.startswith("mcphotos: warning:")]
    assert len(warnings) == 1 and "randomly initialized" in warnings[0], r.stderr
    assert "warning" not in r.stdout


def test_libraries_closed_in_any_order_leave_the_logger_as_it_was(tmp_path: Path) -> None:
    logger = logging.getLogger("mcphotos")
    before = (logger.level, logger.propagate)
    a = Library(home=tmp_path / "a", on_warning=lambda m: None)
    b = Library(home=tmp_path / "b", on_warning=lambda m: None)
    a.close()
    assert not logger.propagate  # b still forwards
    b.close()
    assert (logger.level, logger.propagate) == before
