"""Trends in a series (Mann-Kendall, Theil-Sen), least squares with its intervals and the
inverse-prediction (calibration) interval of x from a new y."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from profiler.stats.constants import ALPHA, Z_95
from profiler.stats.student import (
    t_critical,
)

# --------------------------------------------------------------------------- trends in a series


def mann_kendall_z(values: Sequence[float]) -> float:
    """Mann-Kendall trend statistic (normal approximation with continuity correction, no tie
    correction): rank-based, so one slow outlier does not make a trend."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    s = float(np.triu(np.sign(x[None, :] - x[:, None]), 1).sum())  # later minus earlier, each pair once
    variance = n * (n - 1) * (2 * n + 5) / 18
    if s == 0 or variance <= 0:
        return 0.0
    return (s - math.copysign(1, s)) / math.sqrt(variance)


def theil_sen_slope(values: Sequence[float]) -> float:
    """Median of the pairwise slopes of a series against its index; 0 below two values."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    if n < 2:
        return 0.0
    i, j = np.triu_indices(n, 1)
    return float(np.median((x[j] - x[i]) / (j - i)))


# --------------------------------------------------------------------------- least squares


@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope * x by ordinary least squares, with what its intervals need."""

    slope: float
    intercept: float
    resid_sd: float  # sqrt(RSS / (n - 2)); 0 for two points
    n: int
    x_mean: float
    sxx: float  # sum of (x - x_mean)^2

    def t975(self) -> float:
        """Student's t for the 95% intervals: n - 2 degrees of freedom (inf for two points)."""
        return t_critical(self.n - 2)

    def slope_interval(self) -> tuple[float, float]:
        """95% confidence interval of the slope."""
        half = self.t975() * self.resid_sd / math.sqrt(self.sxx)
        return self.slope - half, self.slope + half


def least_squares(xs: Sequence[float], ys: Sequence[float]) -> LineFit:
    """Ordinary least squares of y on x; ValueError when every x is the same."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("the fit needs at least two different x values")
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = my - slope * mx
    rss = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return LineFit(slope, intercept, math.sqrt(rss / (n - 2)) if n > 2 else 0.0, n, mx, sxx)


def mean_response_half_width(t: float, resid_sd: float, n: int, x_mean: float, sxx: float, x: float) -> float:
    """Half-width of the confidence band of a fitted line's mean at x (t from the wanted level).
    Takes the fit's numbers rather than a LineFit so that a report can draw the band from a
    stored fit."""
    return t * resid_sd * math.sqrt(1 / n + (x - x_mean) ** 2 / sxx)


# --------------------------------------------------------------------------- inverse prediction

@dataclass(frozen=True)
class InversePrediction:
    """The x at which a new observation y0 lies on a fitted line, with its interval.

    ``low`` / ``high`` None: unbounded on that side (the line's slope is not distinguishable from
    flat at this level, or y0's own interval is open on that side). ``t``: Student's t of the
    line's scatter (n - 2 degrees of freedom)."""

    x: float
    low: float | None
    high: float | None
    df: int
    t: float


def inverse_prediction(line: LineFit, y0: float, var_low: float = 0.0, var_high: float = 0.0,
                       alpha: float = ALPHA) -> InversePrediction:
    """Calibration (Fieller) interval of x0 where y0 = a + b x0 + e, e a new draw of the line's
    scatter plus y0's own error, of known variance ``var_low`` below y0 and ``var_high`` above it
    (inf: that side is open; 0: none known). The set of x0 with

        |y0 - a - b x0| <= sqrt(t^2 s^2 (1 + 1/n + (x0 - xbar)^2 / Sxx) + z^2 var)

    s^2 the residual variance (t on n - 2 degrees of freedom), z the normal quantile for the known
    part. From 2 degrees of freedom both parts share one Student's t at the Welch-Satterthwaite
    degrees of freedom of their sum (evaluated at x_hat); the plain sum of the two parts'
    half-widths in quadrature over-covered there (97.6% at 5 sizes, benchmarks/coverage.py). At one
    degree of freedom Satterthwaite covered as little as 89% (the plug-in s^2 is often near 0), so
    there the quadrature sum stays: conservative, never too narrow. The low end uses var_low, the
    high end var_high (slope b > 0: a lower x0 is a lower line value, below y0)."""
    x_hat = (y0 - line.intercept) / line.slope
    d = y0 - (line.intercept + line.slope * line.x_mean)  # y0 against the line at mean x
    t = t_critical(line.n - 2, alpha)
    z = Z_95 if alpha == ALPHA else NormalDist().inv_cdf(1 - alpha / 2)
    low = _fieller_end(line, d, *_coverage_factors(line, x_hat, t, z, var_low, alpha), -1)
    high = _fieller_end(line, d, *_coverage_factors(line, x_hat, t, z, var_high, alpha), 1)
    low = None if low is None else min(low, x_hat)  # a zero-width interval must still hold x_hat after rounding
    high = None if high is None else max(high, x_hat)
    return InversePrediction(x_hat, low, high, line.n - 2, t)


SATTERTHWAITE_MIN_DF = 2  # below this the plug-in residual variance is too unstable (see inverse_prediction)


def _coverage_factors(line: LineFit, x0: float, t: float, z: float, var: float, alpha: float) -> tuple[float, float]:
    """(the scatter's coverage factor, the known part's squared half-width) for one end of the
    calibration interval: t and z^2 var apart, or one t at the Satterthwaite degrees of freedom of
    s^2 c + var (c = 1 + 1/n + (x0 - xbar)^2 / Sxx; var counts as exactly known)."""
    df = line.n - 2
    if df < SATTERTHWAITE_MIN_DF or not math.isfinite(var) or var <= 0 or not line.resid_sd:
        return t, z * z * var
    scatter = line.resid_sd ** 2 * (1 + 1 / line.n + (x0 - line.x_mean) ** 2 / line.sxx)
    df_eff = min((scatter + var) ** 2 / (scatter * scatter / df), 10_000.0)
    t_eff = t_critical(df_eff, alpha)
    return t_eff, t_eff * t_eff * var


def _fieller_end(line: LineFit, d: float, t: float, known_sq: float, sign: int) -> float | None:
    """One end of the calibration set (sign -1: low, +1: high); None: unbounded. ``known_sq``: the
    squared half-width of y0's own error (z^2 var)."""
    if not math.isfinite(known_sq):
        return None
    b, n = line.slope, line.n
    scatter_sq = t * t * line.resid_sd ** 2 if line.resid_sd else 0.0  # t^2 s^2 (0 for no scatter, even at t = inf)
    quad = b * b - scatter_sq / line.sxx
    if quad <= 0:  # the slope is not distinguishable from 0 at this level: the set is unbounded
        return None
    const = d * d - scatter_sq * (1 + 1 / n) - known_sq
    root = math.sqrt(max(d * d * b * b - quad * const, 0.0))
    return line.x_mean + (d * b + sign * root) / quad
