"""Mean ± 95 % intervals over repeats, paired comparisons and ties: what a results table may call a win.

Interval: Student's t-interval of the mean, ``mean ± t_{0.975, n−1} · s / √n`` with the sample standard
deviation ``s`` (``scipy.stats.t``). With one repeat there is no interval (half-width ``inf``), so nothing
can be called a win from a single run.

Comparisons are *paired*: two outputs are scored on the same units (the same content/style pair and seed),
so the interval is taken over the per-unit differences ``a_u − b_u``, which removes the between-pair
spread. A difference whose interval contains 0 is a **tie**. In a row (one evaluation loss), the output
with the lowest mean is the **best** only if it beats every other output (every paired interval excludes
0); outputs whose difference from the lowest-mean output is within the noise are marked tied with it.

Medians (:func:`bootstrap_median`): the percentile bootstrap interval of the median over units (pairs),
from ``resamples`` seeded resamples with replacement (a private generator: no global random state).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "Interval",
    "MedianInterval",
    "RowVerdict",
    "bootstrap_median",
    "paired_difference",
    "row_verdict",
    "t_interval",
]


@dataclass(frozen=True)
class Interval:
    """``mean ± half_width`` over ``n`` values at ``confidence`` (``half_width`` inf when ``n < 2``)."""

    mean: float
    half_width: float
    n: int
    confidence: float = 0.95

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def __str__(self) -> str:
        if math.isinf(self.half_width):
            return f"{self.mean:.3g} (n={self.n})"
        return f"{self.mean:.3g} ± {self.half_width:.2g}"


def t_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Student's t-interval of the mean of ``values``.

    Raises:
        ValueError: no values, a non-finite value, or ``confidence`` outside (0, 1).
    """
    from scipy.stats import t

    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    xs = [float(v) for v in values]
    if not xs:
        raise ValueError("t_interval needs at least one value")
    if not all(math.isfinite(x) for x in xs):
        raise ValueError(f"t_interval got a non-finite value: {xs}")
    n = len(xs)
    mean = sum(xs) / n
    if n < 2:
        return Interval(mean, math.inf, n, confidence)
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1))
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return Interval(mean, half, n, confidence)


def paired_difference(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """The t-interval of ``a_u − b_u`` over paired units (same length, same order)."""
    if len(a) != len(b):
        raise ValueError(f"paired values need equal lengths, got {len(a)} and {len(b)}")
    return t_interval([x - y for x, y in zip(a, b, strict=True)], confidence)


@dataclass(frozen=True)
class RowVerdict:
    """The verdict on one row of scores (lower is better).

    Attributes:
        lowest: the output with the lowest mean.
        winner: ``lowest`` if it is better than every other output beyond the noise, else None.
        tied: outputs whose paired difference from ``lowest`` contains 0 (``lowest`` excluded).
        intervals: per output, the t-interval of its own scores.
    """

    lowest: str
    winner: str | None
    tied: tuple[str, ...]
    intervals: dict[str, Interval]


def row_verdict(scores: Mapping[str, Sequence[float]], confidence: float = 0.95) -> RowVerdict:
    """Best, ties and intervals of one row: ``{output: scores over the same units, in the same order}``."""
    if not scores:
        raise ValueError("row_verdict needs at least one output")
    intervals = {name: t_interval(values, confidence) for name, values in scores.items()}
    lowest = min(intervals, key=lambda name: intervals[name].mean)
    tied = tuple(
        name
        for name in scores
        if name != lowest and paired_difference(scores[name], scores[lowest], confidence).contains(0.0)
    )
    winner = lowest if not tied and len(scores) > 1 else None
    return RowVerdict(lowest, winner, tied, intervals)


@dataclass(frozen=True)
class MedianInterval:
    """The median of ``n`` values and its percentile-bootstrap interval ``[low, high]``."""

    median: float
    low: float
    high: float
    n: int
    confidence: float = 0.95

    def __str__(self) -> str:
        return f"{self.median:.3f} [{self.low:.3f}, {self.high:.3f}]"


def bootstrap_median(
    values: Sequence[float],
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    *,
    statistic: str = "median",
) -> MedianInterval:
    """The median of ``values`` with its percentile bootstrap interval (resampling the values);
    ``statistic="mean"`` bootstraps the mean instead (held in the result's ``median`` field).

    Raises:
        ValueError: no values, a non-finite value, ``confidence`` outside (0, 1) or ``resamples < 1``.
    """
    import torch

    if not 0 < confidence < 1 or resamples < 1:
        raise ValueError(f"need 0 < confidence < 1 and resamples >= 1, got {confidence} and {resamples}")
    if statistic not in ("median", "mean"):
        raise ValueError(f"statistic must be 'median' or 'mean', got {statistic!r}")
    xs = [float(v) for v in values]
    if not xs or not all(math.isfinite(x) for x in xs):
        raise ValueError(f"bootstrap_median needs finite values, got {xs}")
    data = torch.tensor(xs, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(xs), (resamples, len(xs)), generator=generator)
    if statistic == "mean":  # e.g. a fraction of 0/1 outcomes, whose median says nothing
        estimates, centre = data[picks].mean(dim=1), float(data.mean())
    else:
        estimates = data[picks].quantile(0.5, dim=1)  # the midpoint median, as statistics.median
        centre = float(data.quantile(0.5))
    tail = (1 - confidence) / 2
    low, high = estimates.quantile(torch.tensor([tail, 1 - tail], dtype=torch.float64)).tolist()
    return MedianInterval(centre, low, high, len(xs), confidence)
