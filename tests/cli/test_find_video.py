"""find over videos on the command line: "frame_s" in --json, the matching frame on the sheet."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import Result

from tests.support import tinyclip
from tests.support.videos import make_video


def test_find_reports_the_frame_and_draws_it(tmp_path: Path, cli: Callable[..., Result], tiny_args: list[str]) -> None:
    shapes = [np.asarray(tinyclip.draw_shape(c, s, size=96, rng=random.Random(i)).convert("RGB"))
              for i, (c, s) in enumerate([("blue", "square"), ("red", "circle"), ("green", "triangle")])]
    make_video(tmp_path / "pics" / "clip.mp4", shapes, size=(96, 96))
    tinyclip.draw_shape("yellow", "star", size=96, rng=random.Random(7)).save(tmp_path / "pics" / "star.png")
    cli("index", tmp_path / "pics", "-q", *tiny_args)
    rows = [json.loads(line) for line in cli("find", "a red circle", "--json", *tiny_args).stdout.splitlines()]
    video = next(r for r in rows if r["path"].endswith("clip.mp4"))
    assert video["frame_s"] in (0.0, 1.0, 2.0)
    assert "frame_s" not in next(r for r in rows if r["path"].endswith("star.png"))
    sheet = tmp_path / "sheet.png"
    r = cli("find", "a red circle", "--sheet", sheet, *tiny_args)
    assert "unreadable" not in r.stderr and Image.open(sheet).size[0] > 0
