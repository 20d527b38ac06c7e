"""Section "the paired difference": the 95% interval of the accuracy difference between two files
scored on the same tasks, as ``profiler score`` prints it for a pair it calls *not resolved*
(``profiler/analysis/ranking.py`` ``accuracy_test``: Bonett & Price's adjusted Wald interval from the
discordant tasks, ``stats.paired_difference_interval``), and the *equivalent* decision (two
one-sided tests at 5% against +-1 point, read from the 90% interval).

Each simulated run draws, task by task, whether file A and file B answer right: A with true
accuracy base + d/2, B with base - d/2, their correctness correlated with coefficient rho (0.8:
two quants of one model, which disagree on about 1 task in 10; 0.5 for less alike files). The
strings of 0/1 go through ``accuracy_test`` exactly as the measurement index hands them over; a
run is covered when the printed interval holds the true d.

Rows: 200 and 1000 tasks (``--score-tasks``' default and a larger run), base accuracy 40, 50 and
60%, true differences 0, 2 and 5 points, rho 0.8; one row set at rho 0.5. Detail lines add, per
row, the share of runs the product calls not resolved (p >= 0.05, not equivalent) and the
coverage among those runs alone (the printed interval only appears for them); and the TOST's
error rate: how often it calls two files equivalent when the true difference is exactly the
margin (should be <= 5%), with its power at a true difference of 0.
"""

from __future__ import annotations

import math

import numpy as np

from coverage_sections import CoverageRow
from profiler.analysis import ranking
from profiler.analysis.accuracy import AccuracyScore
from profiler.stats import ALPHA

TITLE = "the paired difference: 95% CI of accuracy A - B on the same tasks, and the TOST at +-1 point"
ORDER = 30
TASKS = [200, 1000]
BASES = [0.40, 0.50, 0.60]
DIFFS_PTS = [0.0, 2.0, 5.0]
RHOS = [0.8, 0.5]
TOST_TASKS = [1000, 4000, 10042]  # 10042: the whole HellaSwag validation split
MIN_RUNS_FOR_SHARE = 20  # a conditional coverage over fewer runs is not printed (n/a)


def cell_probs(p_a: float, p_b: float, rho: float) -> np.ndarray:
    """P(both right), P(only A), P(only B), P(both wrong) for marginals p_a, p_b and correlation rho."""
    both = p_a * p_b + rho * math.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    cells = np.array([both, p_a - both, p_b - both, 1 - p_a - p_b + both])
    if (cells < 0).any():
        raise ValueError(f"rho {rho} is impossible for accuracies {p_a} and {p_b}")
    return cells


def draw(rng: np.random.Generator, n: int, cells: np.ndarray) -> tuple[AccuracyScore, AccuracyScore]:
    """Two files' per-task outcomes on the same n tasks, as the measurement index stores them."""
    kind = rng.choice(4, size=n, p=cells)
    a, b = (kind <= 1).astype(np.uint8), ((kind == 0) | (kind == 2)).astype(np.uint8)
    return score(a), score(b)


def score(right: np.ndarray) -> AccuracyScore:
    n = len(right)
    return AccuracyScore(metric="hellaswag", value_pct=100 * float(right.mean()), provenance="measured", n_shot=0,
                         source="simulated", n_tasks=n, variant="acc_norm_token", subset=f"{n} of 10042",
                         task_correct=(right + 48).tobytes().decode())


def simulate(n: int, base: float, d_pts: float, rho: float, runs: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    d = d_pts / 100
    cells = cell_probs(base + d / 2, base - d / 2, rho)
    covered = unresolved = unresolved_covered = equivalent = 0
    width = 0.0
    for _ in range(runs):
        test = ranking.accuracy_test(*draw(rng, n, cells))
        lo, hi = test.ci95_pct
        hit = lo <= d_pts <= hi
        covered += hit
        width += hi - lo
        if test.equivalent:
            equivalent += 1
        elif test.p_value >= ALPHA:
            unresolved += 1
            unresolved_covered += hit
    return {"covered": covered, "width": width / runs, "unresolved": unresolved / runs,
            "unresolved_coverage": unresolved_covered / unresolved if unresolved >= MIN_RUNS_FOR_SHARE else math.nan,
            "equivalent": equivalent / runs, "discordant": cells[1] + cells[2]}


def tost_rate(n: int, d_pts: float, runs: int, seed: int, base: float = 0.5, rho: float = 0.8) -> float:
    """Share of runs the product calls the two files equivalent."""
    rng = np.random.default_rng(seed)
    cells = cell_probs(base + d_pts / 200, base - d_pts / 200, rho)
    return sum(bool(ranking.accuracy_test(*draw(rng, n, cells)).equivalent) for _ in range(runs)) / runs


def rows(runs: int, seed: int) -> list[CoverageRow]:
    out = []
    for rho in RHOS:
        for n in TASKS:
            for base in BASES if rho == RHOS[0] else [0.5]:
                for d in DIFFS_PTS:
                    r = simulate(n, base, d, rho, runs, seed + n + int(base * 100) * 7 + int(d * 10) + int(rho * 1000))
                    out.append(CoverageRow(
                        interval="paired accuracy difference CI", case=f"{n} tasks, {base:.0%}, d {d:g} pts, rho {rho:g}",
                        runs=runs, covered=r["covered"], mean_width=r["width"], width_unit="points, full width",
                        detail=[f"{n:>6} {base:>5.0%} {d:>5g} {rho:>4g} {r['discordant']:>7.1%} {r['covered'] / runs:>8.1%} "
                                f"{r['width']:>7.2f} {r['unresolved']:>11.0%} {_pct(r['unresolved_coverage']):>13} "
                                f"{r['equivalent']:>6.0%}"]))
    tost = [f"TOST at +-{ranking.EQUIVALENCE_MARGIN_PCT:g} point (50% accuracy, rho 0.8, {runs} runs): "
            "share called equivalent"]
    for n in TOST_TASKS:
        at_margin = tost_rate(n, ranking.EQUIVALENCE_MARGIN_PCT, runs, seed + n + 1)  # at 50% both sides are alike
        at_zero = tost_rate(n, 0.0, runs, seed + n + 7)
        tost.append(f"  {n:>6} tasks: true difference = the margin (error, goal <= 5%): "
                    f"{at_margin:.1%}; true difference 0 (power): {at_zero:.1%}")
    out[-1].detail.extend(tost)
    return out


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


HEADER = (f"{'tasks':>6} {'base':>5} {'d pts':>5} {'rho':>4} {'discord':>7} {'coverage':>8} {'width':>7} "
          f"{'not resolved':>11} {'cov. if n.r.':>13} {'equiv':>6}")
NOTES = [
    "width: the mean full width of the printed 95% interval, in accuracy points. 'not resolved': runs with p >= 0.05 "
    "(McNemar) that the TOST does not call equivalent: the runs for which the product prints this interval. "
    "'cov. if n.r.': the coverage among those runs alone (n/a: fewer than 20 such runs). It is not the interval's level: selecting the runs whose "
    "difference came out small pulls their interval towards 0, so where a true difference exists it is lower than "
    "95% (a selection effect no fixed interval avoids); the unconditional coverage is the interval's property.",
    "The interval covers the difference on these tasks' population only: tasks drawn from the benchmark at random, "
    "outcomes independent from task to task. It does not cover a different task selection, shot count or variant.",
]
