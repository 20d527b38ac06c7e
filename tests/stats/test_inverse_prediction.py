"""stats.inverse_prediction: the calibration (Fieller) interval of x from a new y (issue #19.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler import stats


def test_ends_sit_where_the_line_misses_y0_by_the_combined_half_width():
    """From 2 degrees of freedom: one Student's t at the Satterthwaite df of scatter + y0's variance
    (at x_hat), times the square root of their sum, at each end."""
    line = stats.least_squares([0.0, 1.0, 2.0, 3.0, 4.0], [0.1, 1.1, 1.9, 3.2, 3.9])
    y0, var = 2.5, 0.04
    pred = stats.inverse_prediction(line, y0, var, var)

    def scatter(x):
        return line.resid_sd ** 2 * (1 + 1 / 5 + (x - line.x_mean) ** 2 / line.sxx)

    df_eff = (scatter(pred.x) + var) ** 2 / (scatter(pred.x) ** 2 / 3)
    t_eff = stats.t_critical(df_eff)
    assert df_eff > 3 and t_eff < stats.t_critical(3)
    for x in (pred.low, pred.high):
        assert abs(y0 - line.intercept - line.slope * x) == pytest.approx(t_eff * math.sqrt(scatter(x) + var))
    assert pred.low < pred.x < pred.high and pred.df == 3 and pred.t == stats.t_critical(3)


def test_at_one_degree_of_freedom_the_two_half_widths_add_in_quadrature():
    """Satterthwaite covered 89% at one df in simulation: there t(1) x scatter and z x y0's sd add in quadrature."""
    line = stats.least_squares([0.0, 1.0, 2.0], [0.0, 1.05, 1.98])
    y0, var = 1.0, 0.0004
    pred = stats.inverse_prediction(line, y0, var, var)
    t = stats.t_critical(1)
    for x in (pred.low, pred.high):
        sc = t * line.resid_sd * math.sqrt(1 + 1 / 3 + (x - line.x_mean) ** 2 / line.sxx)
        assert abs(y0 - line.intercept - line.slope * x) == pytest.approx(math.hypot(sc, stats.Z_95 * 0.02))


def test_without_scatter_it_is_y0s_own_interval_through_the_line():
    line = stats.least_squares([0.0, 1.0, 2.0], [1.0, 3.0, 5.0])  # exact: no residual
    pred = stats.inverse_prediction(line, 4.0, 0.25, 1.0)
    assert pred.x == pytest.approx(1.5)
    assert pred.low == pytest.approx(1.5 - stats.Z_95 * 0.5 / 2)
    assert pred.high == pytest.approx(1.5 + stats.Z_95 * 1.0 / 2)


def test_a_slope_not_distinguishable_from_flat_or_an_open_side_is_unbounded():
    flat = stats.least_squares([0.0, 1.0, 2.0], [0.0, 1.0, 0.4])
    pred = stats.inverse_prediction(flat, 0.5)
    assert pred.low is None and pred.high is None
    line = stats.least_squares([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.05, 2.95])
    open_low = stats.inverse_prediction(line, 1.5, math.inf, 0.01)
    assert open_low.low is None and open_low.high is not None


def test_coverage_of_a_new_x_on_a_four_point_line():
    """Fixed seed: y = 1 + 2x + N(0, 0.5) at x = 0..3; a new x0 uniform in [0, 3], its y0 one more
    draw: the 95% interval holds x0 in 93-97% of 1000 runs (it is exact for normal errors)."""
    rng = np.random.default_rng(4)
    xs = [0.0, 1.0, 2.0, 3.0]
    covered = 0
    for _ in range(1000):
        line = stats.least_squares(xs, [1 + 2 * x + rng.normal(0, 0.5) for x in xs])
        x0 = rng.uniform(0, 3)
        pred = stats.inverse_prediction(line, 1 + 2 * x0 + rng.normal(0, 0.5))
        covered += (pred.low is None or pred.low <= x0) and (pred.high is None or x0 <= pred.high)
    assert 0.93 <= covered / 1000 <= 0.97
