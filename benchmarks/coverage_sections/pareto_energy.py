"""Section Pareto J/token: the interval of the difference between two configurations' J/token that
the Pareto frontier reads (``scoring.axis_cmp`` on energy, issue #19 item 4).

Each configuration runs a tg test of n repetitions (one or two runs of it); each repetition is a
1 s decode window of 128 tokens whose true J/token is m x (1 + CV z), z standard normal, read by
an exact energy counter (no meter error, so the interval is the repetitions' spread alone). The
product's own code does the rest: ``phase_energy`` gives each run's J/token and its 95% interval,
``scoring.decode_tests`` and ``scoring.at_reference`` carry them (several runs: the half-width of
their mean) onto the configuration, and the frontier's difference interval is
(J_a - J_b) +- ``stats.difference_half_width``(h_a, h_b). A run is covered when that interval holds
the true m_a - m_b. The detail lines give how often ``axis_cmp`` called one configuration better:
with equal truths that is a false difference (at most 5%), with a true difference the power.

Each half-width carries its own Student's t; their quadrature sum is at least Welch's interval, so
with few repetitions (t of few degrees of freedom) it covers more than 95%: those rows are the
known limit (goal False), wide on the safe side.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from coverage_sections import CoverageRow
from profiler.analysis import accuracy as acc_mod
from profiler.analysis import scoring
from profiler.measure.energy import phase_energy
from profiler.platform.energy.sampler import Reading
from profiler.stats import difference_half_width

TITLE = "Pareto frontier: interval of the J/token difference between two configurations"
ORDER = 45

S = 1_000_000_000
TOKENS = 128
M_J = 0.02  # the true J/token of configuration a
HEADER = "case: repetitions per run x runs, CV of each configuration, true difference"
# (case, reps per run, runs, cv_a, cv_b, true b / a, counts towards the goal)
CASES = [
    ("10 reps, CV 3% both, equal", 10, 1, 0.03, 0.03, 1.00, True),
    ("10 reps, CV 3% both, b 3% more", 10, 1, 0.03, 0.03, 1.03, True),
    ("10 reps, CV 1% vs 5%, equal", 10, 1, 0.01, 0.05, 1.00, True),
    ("20 reps, CV 3% both, b 2% more", 20, 1, 0.03, 0.03, 1.02, True),
    ("5 reps, CV 3% both, equal", 5, 1, 0.03, 0.03, 1.00, False),
    ("3 reps, CV 3% both, equal", 3, 1, 0.03, 0.03, 1.00, False),
    ("5 reps x 2 runs, CV 3% both, equal", 5, 2, 0.03, 0.03, 1.00, False),
]
NOTES = ["goal False: few repetitions per run; each half-width's own t (few degrees of freedom) in "
         "quadrature is wider than Welch's, so the rule is conservative (fewer false differences, less power)"]


def run_row(per_window_j_per_token: np.ndarray) -> SimpleNamespace:
    """One stored tg128 row with the fields ``scoring.decode_tests`` reads, its energy from the
    product's ``phase_energy`` on an exact counter over 1 s windows 0.5 s apart."""
    readings, windows, total = [Reading(0, 0.0, None, None)], [], 0.0
    for i, j in enumerate(per_window_j_per_token):
        start = (3 * i + 1) * S // 2
        total += 0.5
        readings.append(Reading(start, total, None, None))
        total += float(j) * TOKENS
        readings.append(Reading(start + S, total, None, None))
        windows.append(("decode", start, start + S))
    phase = phase_energy(readings, True, windows, TOKENS, None, None, resolution_s=0.01)
    return SimpleNamespace(n_gen=TOKENS, n_prompt=0, n_depth=0, sustained_s=None, decode_ts=50.0,
                           samples_ts=[50.0] * len(windows), j_per_decode_token=phase.j_per_token,
                           energy_measured=True, energy_source="counter", energy_method="counter",
                           energy_attribution="process-share", energy_attributed=True, energy_unavailable=None,
                           energy_detail={"phases": {"decode": phase.to_dict()}})


def configuration(key: str, rows) -> scoring.Configuration:
    return scoring.Configuration(key=key, model_name=key, model_file="", quant="", n_params=1, file_size_bytes=1,
                                 n_threads=1, runtime="", peak_rss_bytes=1, decode_tests=scoring.decode_tests(rows))


def simulate(reps: int, runs_each: int, cv_a: float, cv_b: float, ratio: float, runs: int, seed: int) -> dict:
    """Covered runs, mean half-width (% of m_a) and how often axis_cmp called a difference."""
    rng = np.random.default_rng(seed)
    same = acc_mod.AccuracyScore(metric="hellaswag", value_pct=40.0, provenance="published", n_shot=0, source="sim")
    covered, called, widths = 0, 0, []
    for _ in range(runs):
        a = [run_row(M_J * (1 + cv_a * rng.standard_normal(reps))) for _ in range(runs_each)]
        b = [run_row(M_J * ratio * (1 + cv_b * rng.standard_normal(reps))) for _ in range(runs_each)]
        ca, cb = scoring.at_reference([configuration("a", a), configuration("b", b)])[0]
        half = difference_half_width(ca.j_per_decode_token_ci95_j, cb.j_per_decode_token_ci95_j)
        covered += abs((ca.j_per_decode_token - cb.j_per_decode_token) - (M_J - M_J * ratio)) <= half
        widths.append(half / M_J * 100)
        sa, sb = (scoring.score(c, "hellaswag", same, 0.3) for c in (ca, cb))
        order = scoring.quality_order([sa, sb], "hellaswag", [[], []])
        called += scoring.axis_cmp(sa, sb, "j_per_decode_token", -1, order) != 0
    return {"covered": covered, "called": called, "mean_half_pct": float(np.mean(widths))}


def rows(runs: int, seed: int) -> list[CoverageRow]:
    out = []
    for case, reps, runs_each, cv_a, cv_b, ratio, goal in CASES:
        r = simulate(reps, runs_each, cv_a, cv_b, ratio, runs, seed)
        what = "false difference" if ratio == 1 else "difference found (power)"
        out.append(CoverageRow("Pareto J/token difference CI", case, runs, r["covered"], r["mean_half_pct"],
                               "% of J/token, half-width", goal=goal,
                               detail=[f"{case}: {what} in {r['called'] / runs:.1%} of runs"]))
    return out
