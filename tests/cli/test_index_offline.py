"""The command line of offline roots: one stderr line each, exit 1; a typo is exit 2; status lists roots."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result

from tests.support.photos import photo


def test_offline_root_exit_codes_and_status(tmp_path: Path, cli: Callable[..., Result], tiny_args: list[str]) -> None:
    nas, home = tmp_path / "nas", tmp_path / "home"
    nas_photos = [photo(nas / f"n{i}.png", seed=i) for i in range(2)]
    photo(home / "h.png", seed=9)
    cli("index", nas, home, "-q", *tiny_args)
    for p in nas_photos:
        p.unlink()  # unmounted: an empty mount point is left
    r = cli("index", nas, home, *tiny_args, code=1)
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("offline:")]
    assert lines == [f"offline: {nas} (2 indexed files kept; --prune-offline forgets them)"]
    assert "0 removed" in r.stderr

    status = json.loads(cli("status", "--json", *tiny_args).stdout)
    roots = {r["path"]: r for r in status["roots"]}
    assert (roots[str(nas)]["state"], roots[str(nas)]["files"], roots[str(nas)]["reason"]) == ("offline", 2, "empty")
    assert (roots[str(home)]["state"], roots[str(home)]["files"]) == ("online", 1)
    table = cli("status", *tiny_args).stdout
    assert any("offline" in ln and str(nas) in ln and "2 files" in ln for ln in table.splitlines())

    typo = cli("index", tmp_path / "hmoe", *tiny_args, code=2)
    assert "no such file or directory" in typo.output and str(tmp_path / "hmoe") in typo.output

    r = cli("index", nas, home, "--prune-offline", *tiny_args)
    assert "2 removed" in r.stderr and "offline:" not in r.stderr
