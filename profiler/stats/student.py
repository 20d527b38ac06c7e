"""Student's t (its tail and quantile), the confidence interval of a mean (plain, with
systematic terms, and allowing for AR(1) autocorrelation), and Welch's test."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from profiler.stats.constants import ALPHA
from profiler.stats.summary import (
    mean,
    stdev,
)

# --------------------------------------------------------------------------- Student's t


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularised incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c if abs(1.0 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b) (Numerical Recipes' continued fraction)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):  # the fraction converges fast on this side; use the symmetry on the other
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1 - x) / b


def student_t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for Student's t with ``df`` degrees of freedom."""
    if math.isinf(t):
        return 0.0
    return betainc(df / 2, 0.5, df / (df + t * t))


@functools.lru_cache(maxsize=256)
def t_critical(df: float, alpha: float = ALPHA) -> float:
    """Two-sided critical value of Student's t: P(|T| >= t) = alpha, the 1 - alpha/2 quantile
    (t_critical(df) is the 97.5% quantile). Bisection on the tail, which falls as t grows; inf
    below one degree of freedom."""
    if df < 1:
        return math.inf
    lo, hi = 0.0, 1000.0
    while (mid := (lo + hi) / 2) not in (lo, hi):  # until the ends are neighbouring floats (~60 steps)
        if student_t_two_sided_p(mid, df) > alpha:
            lo = mid
        else:
            hi = mid
    return mid


def mean_ci_half_width(values: Sequence[float]) -> float | None:
    """Half-width of the 95% confidence interval of the mean (Student's t); None below 2 values."""
    n = len(values)
    if n < 2:
        return None
    return t_critical(n - 1) * stdev(values) / math.sqrt(n)


def combined_mean_ci_half_width(values: Sequence[float], type_b_sds: Sequence[float] = (),
                                 spread_scale: float = 1.0) -> float | None:
    """Half-width of the 95% interval of the mean of ``values`` with systematic terms added (GUM):
    u_A = spread_scale x s / sqrt(n) from the spread (a scale > 1 for samples known to be smoothed), each type-B standard uncertainty added in
    quadrature, the coverage factor Student's t at the Welch-Satterthwaite degrees of freedom
    (n - 1) (u_c / u_A)^4 (type-B terms count as exactly known), rounded down (a slightly wider
    interval, and a cacheable t). None below 2 values."""
    n = len(values)
    if n < 2:
        return None
    u_a = spread_scale * stdev(values) / math.sqrt(n)
    u_c = math.sqrt(u_a**2 + math.fsum(u * u for u in type_b_sds))
    if u_c == 0:
        return 0.0
    dof = (n - 1) * (u_c / u_a) ** 4 if u_a > 0 else math.inf
    return t_critical(float(min(math.floor(dof), 10_000))) * u_c


# Autocorrelation between repetitions (issue #19): a machine whose speed wanders between plateaus
# makes neighbouring repetitions alike, and the mean of n such samples varies more than s^2 / n.
AUTOCORR_MIN_N = 8  # below this the lag-1 autocorrelation is too noisy to estimate (plain Student's t)
AUTOCORR_MAX_RHO = 0.9  # a larger estimate from a short series is noise more often than a fact
# The interval uses an upper bound of rho, rho_hat + AUTOCORR_UPPER_Z / sqrt(n) (0.6 of the
# estimate's standard error near 0, 1/sqrt(n): a one-sided ~73% bound), not rho_hat itself: at 8-30
# samples rho_hat is noisy, and the variance factor f rises steeply with rho (3 at 0.5, 5.7 at 0.7),
# so an estimate low by chance costs far more coverage than one high by chance gains. With rho_hat
# alone a fixed -r 20 held the mean of AR(1) phi 0.7 in 90-91% of simulated runs, with the bound in
# ~95% (benchmarks/coverage.py, tests/stats). The z is the largest that keeps independent samples
# within 93-97% (fixed N: 95.5-97%). The lower clip lets an estimate below 0 narrow the interval
# about as much as one above 0 widens it; at the former clip, -0.03, the bound held them in 97-99%.
AUTOCORR_UPPER_Z = 0.6
AUTOCORR_MIN_RHO = -0.5


def lag1_autocorrelation(values: Sequence[float]) -> float:
    """The sample lag-1 autocorrelation r1 (about the sample mean, over the full sum of squares);
    NaN below 3 values or without spread."""
    x = np.asarray(values, dtype=float)
    if len(x) < 3:
        return math.nan
    d = x - x.mean()
    ss = float(d @ d)
    return float(d[:-1] @ d[1:]) / ss if ss > 0 else math.nan


def ar1_variance_factor(rho: float, n: int) -> float:
    """n x Var(mean of n AR(1) samples) / Var(one sample): 1 + 2 sum_k (1 - k/n) rho^k, k = 1..n-1."""
    if rho == 0:
        return 1.0
    return 1 + 2 * (rho / (1 - rho) - rho * (1 - rho**n) / (n * (1 - rho) ** 2))


@dataclass(frozen=True)
class MeanInterval:
    """The 95% confidence interval of a mean: half-width, the t's degrees of freedom, and how.

    ``method`` is "student-t" (too few samples to estimate the autocorrelation, or no spread:
    ``rho_hat`` None) or "ar1-adjusted" (the variance of the mean and the degrees of freedom
    corrected for the lag-1 autocorrelation ``rho_hat``)."""

    half_width: float
    df: int
    method: str
    rho_hat: float | None  # bias-corrected lag-1 autocorrelation, clipped to [AUTOCORR_MIN_RHO, AUTOCORR_MAX_RHO]
    rho_bound: float | None  # the rho the interval used: rho_hat + rho_upper_z / sqrt(n), clipped alike
    n_eff: float  # effective sample size: n / the AR(1) variance factor (n when independent)


def mean_ci(values: Sequence[float], rho_upper_z: float = AUTOCORR_UPPER_Z) -> MeanInterval | None:
    """95% confidence interval of the mean of a series whose neighbours may be correlated; None
    below 2 values.

    From AUTOCORR_MIN_N values on, the lag-1 autocorrelation r1 is estimated and its small-sample
    bias removed (E[r1] ~ rho - (1 + 3 rho) / n, so rho_hat = (n r1 + 1) / (n - 3)); the interval
    uses the upper bound rho_hat + rho_upper_z / sqrt(n) (by default AUTOCORR_UPPER_Z, the printed
    interval's: see it for why; -r auto's stop check asks for a higher one), both clipped to
    [AUTOCORR_MIN_RHO, AUTOCORR_MAX_RHO]. With f the AR(1) variance factor at that bound,
    the mean's variance is s^2 f / n, s^2 itself being low by (n - f) / (n - 1) on a correlated
    series, and the t has n / f - 1 degrees of freedom (rounded, at most n - 1). At a bound of 0
    this is exactly Student's t."""
    n = len(values)
    if n < 2:
        return None
    r1 = lag1_autocorrelation(values) if n >= AUTOCORR_MIN_N else math.nan
    if math.isnan(r1):  # too few values, or no spread to correlate
        return MeanInterval(mean_ci_half_width(values), n - 1, "student-t", None, None, float(n))
    sd = stdev(values)
    unbiased = (n * r1 + 1) / (n - 3)
    rho = _clip_rho(unbiased)
    bound = _clip_rho(unbiased + rho_upper_z / math.sqrt(n))
    f = ar1_variance_factor(bound, n)
    variance = sd * sd * (n - 1) * f / (n * max(n - f, 1.0))
    df = min(n - 1, max(1, round(n / f - 1)))  # whole: t_critical caches them
    return MeanInterval(t_critical(df) * math.sqrt(variance), df, "ar1-adjusted", rho, bound, n / f)


def _clip_rho(rho: float) -> float:
    return min(max(rho, AUTOCORR_MIN_RHO), AUTOCORR_MAX_RHO)


def expected_mean_ci_half_width(n: int, sd: float) -> float:
    """Expected half-width of the 95% interval of the mean of n normal samples of standard deviation
    sd: t(n-1) x c4(n) x sd / sqrt(n), where c4(n) = E[s] / sd (the sample sd is biased low)."""
    if n < 2:
        return math.inf
    c4 = math.sqrt(2 / (n - 1)) * math.exp(math.lgamma(n / 2) - math.lgamma((n - 1) / 2))
    return t_critical(n - 1) * c4 * sd / math.sqrt(n)


def fixed_count_for_half_width(cv: float, target_rel: float, cap: int = 100_000) -> int:
    """The smallest fixed number of samples whose expected 95% half-width over the mean is within
    target_rel, for samples of coefficient of variation cv (the fixed-N plan -r auto is judged by)."""
    n = 2
    while n < cap and expected_mean_ci_half_width(n, cv) > target_rel:
        n += 1
    return n


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's unequal-variance t-test; None when either side has < 2 samples."""
    if len(a) < 2 or len(b) < 2:
        return None
    va, vb = stdev(a) ** 2 / len(a), stdev(b) ** 2 / len(b)
    diff = mean(b) - mean(a)
    if va + vb == 0:
        return 1.0 if diff == 0 else 0.0
    t = diff / math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
    return student_t_two_sided_p(t, df)


def mean_of_independent_half_width(half_widths: Sequence[float | None]) -> float | None:
    """Half-width of the equal-weight mean of k independent estimates from each one's half-width at
    the same level: sqrt(sum h_i^2) / k. Each h_i carries its own coverage factor (Student's t at
    its own degrees of freedom), which is at least the pooled one, so this errs wide. None when
    none is given or any is unknown (no interval is better than one that leaves an estimate out)."""
    if not half_widths or any(h is None for h in half_widths):
        return None
    return math.sqrt(math.fsum(h * h for h in half_widths)) / len(half_widths)


def difference_half_width(half_a: float, half_b: float) -> float:
    """Half-width of the interval of a - b for independent a and b from their own half-widths at
    the same level (in quadrature). With Student's t factors this errs slightly wide, as the
    difference's Welch-Satterthwaite degrees of freedom are at least the smaller of the two."""
    return math.hypot(half_a, half_b)


# At one degree of freedom the larger of the two half-widths covers 95.0-97.7% over the ratios of
# the true sds: exactly 95% when one part dominates, up to 97.7% where they are alike (a 3-size
# density family printed 97-98%). So it is shrunk where the two observed halves are alike, by
# ONE_DF_SHRINK x (2ab / (a^2 + b^2))^ONE_DF_SHRINK_POWER (0 when either part is 0 or dwarfs the
# other, ONE_DF_SHRINK at a = b), trading the excess for a dip where the estimated part is small:
# 93.4-96.6% over every ratio (tests/stats/test_t_plus_known.py integrates it exactly). Over
# shrinks c x that ratio^k (k 1-6, c 0.05-0.24) the best minimax |coverage - 95%| was 1.6 points,
# met by k 3-6; k = 2 at c = 0.13 gave 93.5-96.8% here but 96.5-97.0% on the 3-size density rows,
# this one 95.3-96.8% over three seeds (benchmarks/coverage.py --only density).
ONE_DF_SHRINK = 0.2
ONE_DF_SHRINK_POWER = 6


def t_plus_known_half_width(t_half: float, known_half: float, df: float) -> float:
    """Half-width of the 95% interval of a sum of two independent errors from each one's own
    half-width: ``t_half`` = Student's t (on ``df`` degrees of freedom) x an estimated sd,
    ``known_half`` = z x a known sd. Their L^p norm with p = 2 df / (df - 1), tending to the
    quadrature sum (p = 2) as df grows; at one degree of freedom the larger of the two, shrunk
    where they are alike (ONE_DF_SHRINK).

    Why not the usual rules: added in quadrature they over-cover (up to 98.7% at 1 df, 96.6% at 4:
    the t's heavy tail is counted as if the known part had it too); one t at the Welch-Satterthwaite
    df under-covers (down to 87% at 1 df, 92% at 2), because a small estimated sd claims many
    degrees of freedom; the exact 97.5% quantile of (scaled t) + (scaled normal) at the observed
    sds, a fiducial interval, covers like the quadrature sum (up to 98.8% at 1 df). Over every ratio
    of the true sds this exponent keeps coverage within 94.9-96.0% at 2 df and 94.8-95.5% from 3
    (tests/stats/test_t_plus_known.py computes the coverage exactly): it is the minimax exponent
    to within its flat optimum (6.3 at 2 df, 3.19 at 3, 2.49 at 5, 2.20 at 10)."""
    a, b = abs(t_half), abs(known_half)
    if a == 0 or b == 0 or math.isinf(a) or math.isinf(b):
        return a + b  # one part alone (an infinite part makes the sum infinite)
    if df <= 1:
        return max(a, b) * (1 - ONE_DF_SHRINK * (2 * a * b / (a * a + b * b)) ** ONE_DF_SHRINK_POWER)
    p = 2 * df / (df - 1)
    big = max(a, b)  # scaled so that neither power overflows
    return big * ((a / big) ** p + (b / big) ** p) ** (1 / p)
