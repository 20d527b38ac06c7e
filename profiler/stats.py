"""Every statistic the profiler computes, each once.

Summaries (mean, spread, percentiles), Student's t (its tail, quantile and Welch's test), the
interval of a mean whose samples may be autocorrelated (AR(1) effective sample size), normal
tests on proportions (two-proportion, McNemar, the sample size that would resolve a difference),
the Wilson interval, intervals of a difference of proportions (paired and unpaired) and the
equivalence test (TOST) read from them, trend tests (Mann-Kendall, Theil-Sen) and least squares with its intervals,
including the inverse-prediction (calibration) interval of x from a new y.

Pure Python plus numpy, no SciPy: SciPy is a heavy install on a Raspberry Pi, and the few special
functions needed here (the incomplete beta function, the normal tail via ``math.erfc``) are short.
The standard library's ``statistics`` is not used for mean and stdev because ours must answer NaN
and 0 for too few samples (as llama-bench reports them) where it raises.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

# Standard normal quantiles: NormalDist().inv_cdf(0.975) and (0.80) give these to within one unit
# in the last place; the literals keep earlier figures bit-identical.
Z_95 = 1.959963984540054  # two-sided 95%
Z_80 = 0.8416212335729143  # one-sided 80% power
Z_90 = 1.6448536269514722  # two-sided 90% = one-sided 95%: the interval a TOST at 5% reads
Z_90_ONE_SIDED = 1.2815515655446004  # one-sided 90%: 80% power for both of a TOST's one-sided tests
ALPHA = 0.05  # the significance level of every test and interval here unless told otherwise


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
# Independent samples give estimates centred on 0: clipped at 0 they only ever widened the interval,
# and 97% of i.i.d. intervals held the mean at 8-20 samples (benchmarks/coverage.py); a small negative
# floor lets them narrow a little too, which brings that to ~96% and changes nothing for correlated ones.
AUTOCORR_MIN_RHO = -0.03


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
    n_eff: float  # effective sample size: n / the AR(1) variance factor (n when independent)


def mean_ci(values: Sequence[float]) -> MeanInterval | None:
    """95% confidence interval of the mean of a series whose neighbours may be correlated; None
    below 2 values.

    From AUTOCORR_MIN_N values on, the lag-1 autocorrelation r1 is estimated and its small-sample
    bias removed (E[r1] ~ rho - (1 + 3 rho) / n, so rho_hat = (n r1 + 1) / (n - 3)), then clipped to
    [AUTOCORR_MIN_RHO, AUTOCORR_MAX_RHO]. With f the AR(1) variance factor at rho_hat, the mean's variance is
    s^2 f / n, s^2 itself being low by (n - f) / (n - 1) on a correlated series, and the t has
    n / f - 1 degrees of freedom (rounded, at most n - 1). At rho_hat 0 this is exactly
    Student's t."""
    n = len(values)
    if n < 2:
        return None
    sd = stdev(values)
    r1 = lag1_autocorrelation(values) if n >= AUTOCORR_MIN_N else math.nan
    if math.isnan(r1):  # too few values, or no spread to correlate
        return MeanInterval(t_critical(n - 1) * sd / math.sqrt(n), n - 1, "student-t", None, float(n))
    rho = min(max((n * r1 + 1) / (n - 3), AUTOCORR_MIN_RHO), AUTOCORR_MAX_RHO)
    f = ar1_variance_factor(rho, n)
    variance = sd * sd * (n - 1) * f / (n * max(n - f, 1.0))
    df = min(n - 1, max(1, round(n / f - 1)))  # whole: t_critical caches them
    return MeanInterval(t_critical(df) * math.sqrt(variance), df, "ar1-adjusted", rho, n / f)


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


# --------------------------------------------------------------------------- proportions and normal tests


def normal_p(z: float) -> float:
    """Two-sided p-value of a standard normal statistic (erfc keeps the far tail exact)."""
    return math.erfc(abs(z) / math.sqrt(2))


def wilson_interval(p: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion p observed on n trials (95% by default), in
    llama-perplexity's arithmetic; (NaN, NaN) for no trials."""
    if n == 0:
        return math.nan, math.nan
    zz = z * z / n
    cnf = zz * math.sqrt(n * (4.0 * p * (1 - p) + zz)) / (z + z)
    return (p + zz * 0.5 - cnf) / (1.0 + zz), (p + zz * 0.5 + cnf) / (1.0 + zz)


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value from the discordant pairs (a right where b is wrong, and back)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2**n)  # exact big-integer division, no overflow


def two_proportion_p(p_a: float, n_a: int, p_b: float, n_b: int) -> float:
    """Pooled two-proportion z-test (proportions in 0..1)."""
    pooled = (p_a * n_a + p_b * n_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 1.0 if p_a == p_b else 0.0
    return normal_p((p_a - p_b) / se)


def mean_difference_p(a: float, se_a: float, b: float, se_b: float) -> float:
    """z-test of two means from their standard errors (unpaired: conservative for values measured
    on the same tokens, which are positively correlated)."""
    se = math.hypot(se_a, se_b)
    if se == 0:
        return 1.0 if a == b else 0.0
    return normal_p((a - b) / se)


def paired_difference_interval(only_a: int, only_b: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Interval of p_a - p_b (0..1) for two proportions on the same n trials, from the discordant
    pairs (a right where b is wrong, and back): Bonett & Price (2012)'s adjusted Wald, one added to
    each discordant count and two to n. The plain Wald interval is too narrow when few pairs
    disagree (two quants of one model agree on most tasks); this one stays near its level."""
    if n <= 0:
        return -1.0, 1.0
    pa, pb = (only_a + 1) / (n + 2), (only_b + 1) / (n + 2)
    d = pa - pb
    half = z * math.sqrt(max(pa + pb - d * d, 0.0) / (n + 2))
    return max(-1.0, d - half), min(1.0, d + half)


def two_proportion_difference_interval(p_a: float, n_a: int, p_b: float, n_b: int, z: float = Z_95) -> tuple[float, float]:
    """Interval of p_a - p_b (0..1) for independent proportions: Newcombe (1998)'s hybrid score
    interval (his method 10), built from the two Wilson intervals."""
    lo_a, hi_a = wilson_interval(p_a, n_a, z)
    lo_b, hi_b = wilson_interval(p_b, n_b, z)
    d = p_a - p_b
    return d - math.hypot(p_a - lo_a, hi_b - p_b), d + math.hypot(hi_a - p_a, p_b - lo_b)


def mean_difference_interval(a: float, se_a: float, b: float, se_b: float, z: float = Z_95) -> tuple[float, float]:
    """Normal interval of a - b from the two standard errors (unpaired)."""
    half = z * math.hypot(se_a, se_b)
    return a - b - half, a - b + half


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


def equivalent(interval_90: tuple[float, float], margin: float) -> bool:
    """Two one-sided tests (TOST) at 5% each: the difference is shown to lie within +-margin exactly
    when its 90% interval (z = Z_90) lies inside (-margin, margin)."""
    return -margin < interval_90[0] and interval_90[1] < margin


def tasks_to_show_equivalence(margin: float, p: float, discordant: float | None = None) -> int:
    """Trials per side for a TOST at 5% (margin and p in 0..1) to show equivalence with 80% power
    when the true difference is 0: paired when the fraction of discordant pairs is known (the
    variance of the difference per trial is that fraction), else two independent proportions."""
    var = discordant if discordant is not None and discordant > 0 else 2 * p * (1 - p)
    return max(1, math.ceil((Z_90 + Z_90_ONE_SIDED) ** 2 * var / (margin * margin)))


def tasks_to_resolve(p_a: float, p_b: float, discordant: float | None = None) -> int | None:
    """Trials per side for a difference of p_a - p_b (0..1) to be significant at 95% with 80%
    power: McNemar's (Connor 1987) when the fraction of discordant pairs is known, else two
    independent proportions. None when the observed difference is zero."""
    d = abs(p_a - p_b)
    if d == 0:
        return None
    if discordant is not None and discordant > 0:
        n = (Z_95 * math.sqrt(discordant) + Z_80 * math.sqrt(max(discordant - d * d, 0.0))) ** 2 / (d * d)
    else:
        middle = (p_a + p_b) / 2
        n = (Z_95 * math.sqrt(2 * middle * (1 - middle)) + Z_80 * math.sqrt(p_a * (1 - p_a) + p_b * (1 - p_b))) ** 2 / (d * d)
    return math.ceil(n)


# --------------------------------------------------------------------------- trends in a series


def mann_kendall_z(values: Sequence[float]) -> float:
    """Mann-Kendall trend statistic (normal approximation with continuity correction, no tie
    correction): rank-based, so one slow outlier does not make a trend."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    s = float(np.sign(x[None, :] - x[:, None])[np.triu_indices(n, 1)].sum())  # later minus earlier
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
    part. Adding the two parts' half-widths in quadrature is exact when either dominates and
    conservative in between; Satterthwaite's degrees of freedom instead covered as little as 88%
    at n = 3 in simulation (one degree of freedom: the plug-in s^2 is often near 0). The low end uses
    var_low, the high end var_high (slope b > 0: a lower x0 is a lower line value, below y0)."""
    x_hat = (y0 - line.intercept) / line.slope
    d = y0 - (line.intercept + line.slope * line.x_mean)  # y0 against the line at mean x
    t = t_critical(line.n - 2, alpha)
    z = Z_95 if alpha == ALPHA else NormalDist().inv_cdf(1 - alpha / 2)
    low = _fieller_end(line, d, t, z * z * var_low, -1)
    high = _fieller_end(line, d, t, z * z * var_high, 1)
    low = None if low is None else min(low, x_hat)  # a zero-width interval must still hold x_hat after rounding
    high = None if high is None else max(high, x_hat)
    return InversePrediction(x_hat, low, high, line.n - 2, t)


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
