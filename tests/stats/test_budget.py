"""How often a cost with an interval fits in a budget (answers per battery charge, issue #22.2)."""

from __future__ import annotations

import math

import pytest

from profiler.stats import fits_in_budget, weighted_sum_half_width


def test_the_sums_half_width_is_the_weighted_parts_in_quadrature():
    assert weighted_sum_half_width([(512, 0.001), (256, 0.03)]) == pytest.approx(math.hypot(0.512, 7.68))
    assert weighted_sum_half_width([(512, 0.001), (256, None)]) is None


def test_the_count_interval_is_the_budget_over_the_cost_intervals_ends():
    fits = fits_in_budget(1000.0, [(1, 8.0, 2.0)])
    assert fits.value == pytest.approx(125.0)
    assert (fits.low, fits.high) == (pytest.approx(100.0), pytest.approx(1000 / 6))  # asymmetric, exact


def test_a_cost_interval_reaching_zero_leaves_no_upper_end_and_no_interval_without_one():
    assert fits_in_budget(10.0, [(1, 1.0, 1.5)]).high is None
    none = fits_in_budget(10.0, [(1, 1.0, None)])
    assert none.value == 10.0 and none.low is None
    assert fits_in_budget(10.0, [(1, 0.0, 0.1)]) is None
