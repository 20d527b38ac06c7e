"""The delta-method interval on the log scale (profiler/stats/delta.py)."""

from __future__ import annotations

import math

import pytest

from profiler import stats


def test_one_group_is_the_t_interval_of_a_mean_on_the_log_scale():
    values = [98.0, 101.0, 103.0, 97.0, 101.0]
    m = stats.mean(values)
    ci = stats.log_delta_interval(m, [[v / m for v in values]])
    half = stats.t_critical(4) * stats.stdev(values) / m / math.sqrt(5)
    assert ci.df == 4
    assert ci.low == pytest.approx(m * math.exp(-half))
    assert ci.high == pytest.approx(m * math.exp(half))
    assert ci.high - m > m - ci.low  # multiplicative: wider above


def test_welch_satterthwaite_degrees_of_freedom_pool_equal_groups():
    group = [1.0, 2.0, 3.0]
    ci = stats.log_delta_interval(10.0, [group, group, group])
    assert ci.df == 6  # three groups of 2 degrees of freedom, equal variance
    assert ci.se_log == pytest.approx(math.sqrt(3 * 1.0 / 3))


def test_no_interval_without_spread_to_estimate():
    assert stats.log_delta_interval(5.0, [[1.0, 2.0], [3.0]]) is None
    assert stats.log_delta_interval(-1.0, [[1.0, 2.0]]) is None
    flat = stats.log_delta_interval(5.0, [[1.0, 1.0]])
    assert (flat.low, flat.high) == (5.0, 5.0)
