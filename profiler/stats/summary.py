"""Summaries of a sample: mean, spread, percentiles, a proportion's standard error."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

# --------------------------------------------------------------------------- summaries


def mean(values: Sequence[float]) -> float:
    """Arithmetic mean (exactly rounded sum); NaN for no values."""
    return math.fsum(values) / len(values) if values else math.nan


def mean_of_known(values: Iterable[float | None]) -> float | None:
    """Mean of the values that are neither None nor NaN; None when no value is known."""
    known = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return mean(known) if known else None


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n-1), 0 for a single sample, as llama-bench reports it."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation: standard deviation over mean."""
    m = mean(values)
    return stdev(values) / m if m else math.nan


def geometric_mean(values: Sequence[float]) -> float:
    """exp(mean(ln v)); NaN for no values."""
    return math.exp(mean([math.log(v) for v in values])) if values else math.nan


def sorted_percentile(ordered: Sequence[float], fraction: float) -> float:
    """Percentile of already sorted values, linear between the two nearest ranks (numpy's default
    method, and llama-perplexity's arithmetic); ``fraction`` in [0, 1]. Sorting once lets a caller
    read many levels of a long array."""
    if fraction <= 0:
        return float(ordered[0])
    if fraction >= 1:
        return float(ordered[-1])
    pos = fraction * (len(ordered) - 1)
    lo = int(pos)
    frac = pos - lo
    if frac == 0:  # on a rank: no neighbour enters (0 * inf would be NaN)
        return float(ordered[lo])
    return float((1 - frac) * ordered[lo] + frac * ordered[min(lo + 1, len(ordered) - 1)])


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]; NaN for no values."""
    if not len(values):
        return math.nan
    return sorted_percentile(sorted(values), q / 100.0)


def proportion_stderr(p: float, n: int) -> float:
    """Standard error of a proportion with n - 1 in the denominator, as llama-perplexity; NaN below 2."""
    return math.sqrt(p * (1 - p) / (n - 1)) if n > 1 else math.nan


