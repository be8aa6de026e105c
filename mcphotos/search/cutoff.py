"""Relevance cut-offs: how many of the ranked results actually match.

CLIP cosine scores have no universal threshold (a good match may score 0.25 on one query
and 0.35 on another), so besides an absolute ``--min-score`` two cuts look at the shape of
the ranked scores s₁ ≥ s₂ ≥ … of the distinct images:

Relative cut (``--relative F``, 0 < F ≤ 1)
    keep sᵢ ≥ s₁ − (1 − F)·|s₁|, i.e. ``sᵢ ≥ F·s₁`` when s₁ > 0: results within a fraction
    of the best score. F = 0.9 keeps what scores at least 90 % of the best.

Automatic gap cut (``--auto-cut``)
    The query is also scored against a uniform sample of the library (up to ``SAMPLE``
    photos; the candidates of a filtered query) to learn what unrelated photos score: their
    median m and robust spread σ = 1.4826 · median(|b − m|), and how many photos N the
    sample stands for. A score above ``reach`` = m + z·σ, where a Gaussian's z is exceeded
    by the top of N unrelated photos with probability ``REACH_P`` (z = 3.5 at N = 50, 4.4
    at 2,000, 5.2 at 100,000), is one no unrelated photo would plausibly get. The gaps
    gᵢ = sᵢ − sᵢ₊₁ (i ≤ k) are walked from the top, and the cut falls after the first i
    where sᵢ₊₁ ≤ reach (what lies below the gap may be an unrelated photo: a gap between two
    clear matches is never a cut) and either

    (a) gᵢ ≥ ``GAP_SIGMAS`` · σ: a step larger than 1.5 spreads of unrelated scores (the
        usual CLIP picture: unrelated photos bunched within a few hundredths), or
    (b) i ≥ 2, gᵢ ≥ ``STEP_RATIO`` · max(g₁ … gᵢ₋₁) and gᵢ ≥ ``STEP_SHARE`` · (s₁ − m): a
        tight cluster of i results sitting a clear step above the rest, the step being a
        sizable share of how far the best result stands out (for embeddings whose unrelated
        scores spread widely, like the test suite's tiny CLIP).

    Otherwise nothing is cut. The first qualifying gap wins, not the largest: a larger gap
    further down (between two groups of unrelated photos) must not hide the real step.

    Why this is safe when nothing matches: the top scores of N unrelated photos are the
    upper tail of their distribution, whose spacings shrink like σ / (√(2 ln N) · i), so the
    first exceeds 1.5 σ only about e^(-1.5·√(2 ln N)) of the time, and a later one rarely
    dwarfs all those above it while also being large. ``python bench/cutoff_rates.py``
    measures the rates on Gaussian-drawn libraries (false cuts when nothing matches, exact
    recovery of planted matches) and the README quotes its output.

All cuts keep at least one result.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

from mcphotos.errors import UsageError

if TYPE_CHECKING:  # numpy where the scores are: find's options build a Cut before anything is searched
    import numpy as np

    Scores = Sequence[float] | np.ndarray  # scores, best first where it matters: a list or a numpy vector

SAMPLE = 1024  # photos scored to estimate the spread of unrelated scores
GAP_SIGMAS = 1.5
STEP_RATIO = 4.0
STEP_SHARE = 0.15
REACH_P = 0.01  # the chance that the top unrelated photo of a Gaussian library exceeds ``reach``


@dataclass(frozen=True)
class Background:
    """What the query scores on unrelated photos: a sample's median and robust spread."""

    center: float
    sigma: float
    population: int  # photos of the (filtered) library that the sample stands for

    @property
    def reach(self) -> float:
        """A score no unrelated photo of ``population`` would plausibly exceed."""
        if self.sigma <= 0:
            return math.inf
        return self.center + NormalDist().inv_cdf(1.0 - REACH_P / max(self.population, 1)) * self.sigma


@dataclass(frozen=True)
class Cut:
    relative: float | None = None
    auto: bool = False

    def __post_init__(self) -> None:
        if self.relative is not None and not 0.0 < self.relative <= 1.0:
            raise UsageError(f"--relative must be in (0, 1], not {self.relative}", "e.g. --relative 0.9")

    @property
    def active(self) -> bool:
        return self.relative is not None or self.auto

    def window(self, k: int) -> int:
        """How many results the search must rank for this cut to decide on the top ``k``."""
        return k + 1 if self.auto else k


def relative_count(scores: Scores, fraction: float) -> int:
    if not len(scores):
        return 0
    best = float(scores[0])
    floor = best - (1.0 - fraction) * abs(best)
    return max(1, sum(1 for s in scores if s >= floor - 1e-9))


def robust_sigma(background: Scores) -> float:
    """Spread of ``background`` scores that a few outliers (the real matches) cannot inflate."""
    import numpy as np

    b = np.asarray(background, dtype=np.float64)
    if len(b) < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(b - np.median(b))))


def background_stats(background: Scores, population: int | None = None) -> Background:
    """The :class:`Background` of a sample of scores drawn from ``population`` photos (default: the sample)."""
    import numpy as np

    b = np.asarray(background, dtype=np.float64)
    return Background(float(np.median(b)) if len(b) else 0.0, robust_sigma(b),
                      len(b) if population is None else population)


def gap_count(scores: Scores, k: int, background: Background | None) -> int:
    """Number of leading scores to keep after the automatic gap cut (see the module docstring)."""
    import numpy as np

    s = np.asarray(scores, dtype=np.float64)
    n = len(s)
    if n < 2 or background is None:
        return n
    gaps = s[:-1] - s[1:]
    sigma = background.sigma
    reach = background.reach
    standout = s[0] - background.center
    largest_above = 0.0
    for i in range(min(k, n - 1)):
        g = float(gaps[i])
        if s[i + 1] <= reach and g > 0:
            if sigma > 0 and g >= GAP_SIGMAS * sigma:
                return i + 1
            if i >= 1 and g >= STEP_RATIO * largest_above and g >= STEP_SHARE * standout:
                return i + 1
        largest_above = max(largest_above, g)
    return n


def cut_count(scores: Scores, cut: Cut, k: int, background: Background | None = None) -> int:
    """How many of the ranked distinct-image ``scores`` survive ``cut`` (then at most k).

    ``background``: the query's scores over a sample of the library, for the automatic cut.
    """
    keep = len(scores)
    if cut.relative is not None:
        keep = min(keep, relative_count(scores, cut.relative))
    if cut.auto:
        keep = min(keep, gap_count(scores, k, background))
    return min(keep, k)
