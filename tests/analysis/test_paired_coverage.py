"""The paired difference's printed 95% interval and the equivalence decision, simulated on known
truths (issue #19.6; the full table is benchmarks/coverage_sections/paired.py)."""

from __future__ import annotations

import math

import numpy as np

from profiler.analysis import ranking
from profiler.analysis.accuracy import AccuracyScore


def _pair(rng, n, p_a, p_b, rho):
    """Two files' 0/1 outcomes on the same n tasks: accuracies p_a, p_b, correlation rho."""
    both = p_a * p_b + rho * math.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    kind = rng.choice(4, size=n, p=[both, p_a - both, p_b - both, 1 - p_a - p_b + both])
    out = []
    for right in ((kind <= 1), (kind == 0) | (kind == 2)):
        bits = right.astype(np.uint8)
        out.append(AccuracyScore(metric="hellaswag", value_pct=100 * float(bits.mean()), provenance="measured", n_shot=0,
                                 source="simulated", n_tasks=n, subset=f"{n} of 10042",
                                 task_correct=(bits + 48).tobytes().decode()))
    return out


def _coverage(n, p_a, p_b, rho, runs, seed):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(runs):
        lo, hi = ranking.accuracy_test(*_pair(rng, n, p_a, p_b, rho)).ci95_pct
        hits += lo <= 100 * (p_a - p_b) <= hi
    return hits / runs


def test_the_paired_interval_covers_the_true_difference():
    # two quants (rho 0.8: they disagree on ~10% of the tasks) on --score-tasks' default 200 tasks
    for p_a, p_b, seed in ((0.5, 0.5, 1), (0.525, 0.475, 2)):
        coverage = _coverage(200, p_a, p_b, 0.8, 600, seed)
        assert 0.93 <= coverage <= 0.98, (p_a, p_b, coverage)


def test_the_equivalence_test_errs_at_most_five_percent_at_the_margin():
    rng = np.random.default_rng(3)
    margin = ranking.EQUIVALENCE_MARGIN_PCT / 100
    runs = 400
    called = sum(bool(ranking.accuracy_test(*_pair(rng, 6000, 0.5 + margin / 2, 0.5 - margin / 2, 0.8)).equivalent)
                 for _ in range(runs))
    assert called / runs <= 0.075  # 5% plus two standard errors of the simulation
    # and it has power where the truth is 0 (~60% at 6000 tasks, 10% discordant)
    power = sum(bool(ranking.accuracy_test(*_pair(rng, 6000, 0.5, 0.5, 0.8)).equivalent) for _ in range(100)) / 100
    assert power >= 0.4
