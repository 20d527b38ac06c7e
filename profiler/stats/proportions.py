"""Normal tests and intervals on proportions: Wilson, McNemar, two-proportion, paired and
unpaired differences, the equivalence test (TOST) and the task counts that would resolve them."""

from __future__ import annotations

import math

from profiler.stats.constants import Z_80, Z_90, Z_90_ONE_SIDED, Z_95

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


