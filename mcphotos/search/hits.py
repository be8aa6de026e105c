"""What a search answers: one file per hit, with its score. Plain data, so code that only shows or
passes on hits (a CLI answered by the warm server) imports neither numpy nor the search itself."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SearchHit:
    path: str
    score: float
    hash: str
    frame_s: float | None = None  # a video's best frame: its time from the start (None for photos)
    snippet: str | None = None  # with --contains: the passage of the photo's text that matched
