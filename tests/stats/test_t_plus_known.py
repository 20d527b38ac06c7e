"""stats.t_plus_known_half_width: the half-width of a sum of an estimated (Student's t) part and a
known (normal) part, as N̂'s calibration interval combines them (issue #19.1).

Its coverage is computed exactly: with s^2 = sigma^2 W / nu (W chi-square on nu df) and D ~ N(0,
sigma^2 + 1) (the known sd set to 1), P(|D| <= H(t s, z)) = E_W[erf(H / sqrt(2 (sigma^2 + 1)))],
integrated over ln W on a fine grid; a fixed-seed Monte Carlo checks that integral."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler import stats

ERF = np.frompyfunc(math.erf, 1, 1)
RATIOS = np.exp(np.linspace(math.log(0.01), math.log(100), 21))  # true sd of the estimated part / the known sd


def _chi2_grid(nu: int, points: int = 600) -> tuple[np.ndarray, np.ndarray]:
    """Nodes W and weights of the chi-square(nu) law, on a grid in ln W wide enough that the
    density left out is below e^-40 of its peak."""
    u = np.linspace(-80 / nu - 5, math.log(1 + 60 / nu) + 1.5, points) + math.log(nu)
    w = np.exp(u)
    k = nu / 2
    density = np.exp(k * u - w / 2 - k * math.log(2) - math.lgamma(k))  # of ln W
    return w, density * (u[1] - u[0])


def _coverage(nu: int, ratio: float, rule) -> float:
    w, weight = _chi2_grid(nu)
    s = ratio * np.sqrt(w / nu)
    half = np.array([rule(stats.t_critical(nu) * si, stats.Z_95, nu) for si in s])
    return float(np.sum(weight * ERF(half / math.sqrt(2 * (ratio ** 2 + 1))).astype(float)))


def _new(t_half, z_half, nu):
    return stats.t_plus_known_half_width(t_half, z_half, nu)


def _quadrature(t_half, z_half, nu):
    return math.hypot(t_half, z_half)


def _satterthwaite(t_half, z_half, nu):
    s = t_half / stats.t_critical(nu)
    df = min((s * s + 1) ** 2 / (s ** 4 / nu), 10_000.0) if s else 10_000.0
    return stats.t_critical(round(df)) * math.hypot(s, 1)


def test_limits_and_the_norm_it_is():
    f = stats.t_plus_known_half_width
    assert f(0.0, 1.96, 1) == 1.96 and f(12.7, 0.0, 1) == 12.7  # one part alone
    assert f(math.inf, 1.0, 3) == math.inf
    # one degree of freedom: the larger part, shrunk by 0.2 x (2ab / (a^2 + b^2))^6 where they are alike
    assert f(3.0, 2.0, 1) == pytest.approx(3.0 * (1 - 0.2 * (12 / 13) ** 6))
    assert f(2.0, 2.0, 1) == pytest.approx(1.6) and f(1000.0, 1.0, 1) == pytest.approx(1000.0, rel=1e-15)
    assert f(3.0, 4.0, 3) == pytest.approx((27 + 64) ** (1 / 3))  # p = 2 * 3 / 2 = 3
    assert f(3.0, 4.0, 2) == pytest.approx((81 + 256) ** (1 / 4))  # p = 4
    assert f(3.0, 4.0, 1e9) == pytest.approx(5.0)  # many degrees of freedom: the quadrature sum
    assert f(1e300, 1e300, 3) == pytest.approx(2 ** (1 / 3) * 1e300)  # no overflow


def test_the_coverage_integral_matches_a_fixed_seed_monte_carlo():
    rng = np.random.default_rng(19)
    nu, ratio, n = 1, 0.8, 1_000_000
    s = ratio * np.sqrt(rng.chisquare(nu, n) / nu)
    d = rng.normal(0, math.hypot(ratio, 1), n)
    a, b = stats.t_critical(1) * s, stats.Z_95
    half = np.maximum(a, b) * (1 - 0.2 * (2 * a * b / (a * a + b * b)) ** 6)  # the rule at one df, vectorised
    assert np.mean(np.abs(d) <= half) == pytest.approx(_coverage(nu, ratio, _new), abs=0.001)  # MC se 0.00015


@pytest.mark.parametrize(("nu", "low", "high"), [(1, 0.933, 0.967), (2, 0.948, 0.961), (3, 0.948, 0.955),
                                                 (5, 0.948, 0.952)])
def test_coverage_stays_near_95_for_every_ratio_of_the_two_parts(nu, low, high):
    cover = [_coverage(nu, r, _new) for r in RATIOS]
    assert low <= min(cover) and max(cover) <= high
    assert cover[0] == pytest.approx(0.95, abs=0.001) and cover[-1] == pytest.approx(0.95, abs=0.001)


def _larger(t_half, z_half, nu):
    return max(t_half, z_half)


def test_the_rules_it_replaces_miss_95_by_more():
    """Quadrature over-covers at one df (as the 3-size density rows did: 97.9-98.8%), and so does
    the larger of the two (97.0-98.0% there); Welch-Satterthwaite under-covers at two (a 4-size family)."""
    assert max(_coverage(1, r, _quadrature) for r in RATIOS) > 0.985
    assert max(_coverage(1, r, _larger) for r in RATIOS) > 0.975
    assert min(_coverage(2, r, _satterthwaite) for r in RATIOS) < 0.93
    assert min(_coverage(1, r, _satterthwaite) for r in RATIOS) < 0.89
