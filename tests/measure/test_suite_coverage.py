"""The suite scores' 95% intervals, simulated on known truths through the suites' own score
functions (the full table is benchmarks/coverage_sections/suites.py, at 2000 runs)."""

from __future__ import annotations

import sys
from pathlib import Path


def _section():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from coverage_sections import suites

    return suites


def test_suite_intervals_cover_the_true_scores_at_the_default_repetitions():
    result = _section().simulate((0.05, 0.02, 0.02), reps=5, runs=300, seed=23)
    for name, (covered, width) in result.items():
        assert 0.92 <= covered / 300 <= 0.985, (name, covered)
        assert 0.005 < width < 0.05, (name, width)
