"""Answers per charge and hours of generation: their 95% intervals simulated on known truths through
the product's own code (issue #22.2; the full table is benchmarks/coverage_sections/battery.py)."""

from __future__ import annotations

import sys
from pathlib import Path


def _section():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from coverage_sections import battery

    return battery


def test_the_answers_per_charge_interval_covers_the_truth():
    sim = _section().simulate
    for prompt, answer in ((512, 256), (2048, 32)):
        covered, _ = sim(5, 0.05, prompt, answer, 1.0, "answers", runs=300, seed=22)
        assert 0.92 <= covered / 300 <= 0.985
    covered, _ = sim(5, 0.05, 512, 256, 1.0, "hours", runs=300, seed=22)
    assert 0.92 <= covered / 300 <= 0.985


def test_a_wrong_capacity_is_not_covered_the_limit_the_docs_state():
    covered, _ = _section().simulate(5, 0.05, 512, 256, 1.05, "answers", runs=300, seed=22)
    assert covered / 300 < 0.8
