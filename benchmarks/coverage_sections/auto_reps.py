"""Section ``-r auto``: the rule of ``profiler/measure/adaptive.py`` (``stop_reason``, called after
every repetition exactly as the runner calls it, the trend check included; no time cap) run on
synthetic t/s streams whose true mean is 100:

- i.i.d. normal at CV 1%, 3% and 5%, targets 1% and 2%;
- AR(1) at a marginal CV of 3% (neighbouring repetitions correlated, as a machine whose speed
  wanders between plateaus): phi 0.5 at targets 1% and 2%, phi 0.3 and 0.7 at 2%.

``--runs`` runs each (default 2000, fixed seed). For each it prints the observed coverage of the
printed interval (mean +- ci95_rel x mean holds 100), the mean repetitions, the mean printed
half-width and how often the interval was adjusted for autocorrelation, for

- ``auto``: the rule as shipped (the target must hold at n and on the first ``adaptive.look_back(n)``
  samples, a third fewer: the earliest target stop is at 12);
- ``fixed N``: the oracle count, the smallest N whose *expected* Student's t half-width meets the
  target (``stats.fixed_count_for_half_width``, which knows the true CV and assumes independence:
  no user has it, and it meets the target in only about half of the runs);
- ``fixed N95``: the smallest N whose printed interval (the product's, as on a ``-r N`` row)
  meets the target in at least 95% of the runs, found by simulation on the same streams: the
  fixed count a user would have to pick to be as sure as ``-r auto`` of reaching the target.

Every interval is ``adaptive.interval`` (``stats.mean_ci``): Student's t, adjusted from 8
repetitions for lag-1 autocorrelation (AR(1) effective sample size at the bound
rho_hat + 0.6 / sqrt(n) of the autocorrelation it estimates).
"""

from __future__ import annotations

import math

import numpy as np

from coverage_sections import CoverageRow
from profiler.measure import adaptive
from profiler.stats import fixed_count_for_half_width, mean

TRUE_MEAN = 100.0
NOMINAL = 0.95
STREAMS = [("iid", 0.01, 0.0, (0.01, 0.02)), ("iid", 0.03, 0.0, (0.01, 0.02)), ("iid", 0.05, 0.0, (0.01, 0.02)),
           ("AR(1) phi 0.3", 0.03, 0.3, (0.02,)), ("AR(1) phi 0.5", 0.03, 0.5, (0.01, 0.02)),
           ("AR(1) phi 0.7", 0.03, 0.7, (0.02,))]
CAP = 1000
SURE = 0.95  # the share of runs a fixed N95 must bring to the target


def streams(rng: np.random.Generator, cv: float, phi: float, runs: int, length: int) -> np.ndarray:
    """runs x length t/s samples of true mean TRUE_MEAN and marginal CV cv; AR(1) with coefficient phi."""
    e = rng.normal(0.0, 1.0, (runs, length))
    if phi:
        for i in range(1, length):
            e[:, i] = phi * e[:, i - 1] + math.sqrt(1 - phi * phi) * e[:, i]
    return TRUE_MEAN * (1 + cv * e)


def run_auto(values: list[float], rule: adaptive.AutoReps) -> tuple[int, str]:
    """Feed samples to the rule one at a time: repetitions and stop reason."""
    for n in range(1, len(values) + 1):
        reason, _ = adaptive.stop_reason(values[:n], 0.0, 0.0, rule)
        if reason is not None:
            return n, reason
    raise AssertionError("the rule always stops by its repetition cap")


def printed(samples: list[float]) -> tuple[bool, float, bool]:
    """Does the printed interval hold the truth; its half-width over the mean; was it widened for
    a positive autocorrelation."""
    ci = adaptive.interval(samples)
    m = mean(samples)
    return abs(m - TRUE_MEAN) <= ci.half_width, ci.half_width / m, (ci.rho_bound or 0.0) > 0


def meets(x: np.ndarray, n: int, target: float) -> float:
    """Share of runs whose printed interval after n samples meets the target."""
    return float(np.mean([adaptive.ci95_rel(row[:n].tolist()) <= target for row in x]))


def fixed_n95(x: np.ndarray, target: float, start: int) -> int:
    """The smallest N (searched from start, by doubling then bisection) whose printed interval
    meets the target in at least SURE of these runs."""
    lo, hi = start - 1, start
    while hi < CAP and meets(x, hi, target) < SURE:
        lo, hi = hi, min(2 * hi, CAP)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if meets(x, mid, target) >= SURE else (mid, hi)
    return hi


def summarise(name: str, results: list[tuple[int, bool, float, bool, str]], runs: int) -> dict:
    reasons: dict[str, int] = {}
    for *_, reason in results:
        reasons[reason] = reasons.get(reason, 0) + 1
    return {"rule": name, "covered": sum(r[1] for r in results), "coverage": sum(r[1] for r in results) / runs,
            "mean_reps": sum(r[0] for r in results) / runs, "mean_half_width": sum(r[2] for r in results) / runs,
            "adjusted": sum(r[3] for r in results) / runs,
            "reasons": {k: v / runs for k, v in sorted(reasons.items()) if k}}


def simulate(cv: float, phi: float, target: float, runs: int, seed: int) -> list[dict]:
    x = streams(np.random.default_rng(seed), cv, phi, runs, CAP)
    rule = adaptive.AutoReps(ci_target=target, max_time_s=math.inf, max_reps=CAP)
    auto = []
    for row in x:
        values = row.tolist()
        n, reason = run_auto(values, rule)
        auto.append((n, *printed(values[:n]), reason))
    n_oracle = fixed_count_for_half_width(cv, target)
    n95 = fixed_n95(x, target, n_oracle)
    out = [summarise("auto", auto, runs)]
    for label, n in ((f"fixed N={n_oracle}", n_oracle), (f"fixed N95={n95}", n95)):
        out.append(summarise(label, [(n, *printed(row[:n].tolist()), "") for row in x], runs))
        out[-1]["met"] = meets(x, n, target)
    return out


TITLE = "-r auto's printed 95% CI (ci95_rel) and the fixed-N CI"
ORDER = 10


def rows(runs: int, seed: int) -> list[CoverageRow]:
    out = []
    for name, cv, phi, targets in STREAMS:
        for target in targets:
            case_seed = seed + int(cv * 1000) + int(target * 100_000) + int(phi * 10)
            results = simulate(cv, phi, target, runs, case_seed)
            for r in results:
                reasons = ", ".join(f"{k} {v:.0%}" for k, v in r["reasons"].items())
                met = f"{r['met']:.0%}" if "met" in r else ""
                interval = "-r auto t/s CI" if r["rule"] == "auto" else "fixed-N t/s CI (" + r["rule"].split("=")[0][6:] + ")"
                out.append(CoverageRow(
                    interval=interval, case=f"{name} CV {cv:.0%}, target {target:.0%}", runs=runs,
                    covered=r["covered"], mean_width=100 * r["mean_half_width"], width_unit="% of mean, half-width",
                    goal=phi == 0,
                    detail=[f"{name:<15} {cv:>4.0%} {target:>6.0%}  {r['rule']:<14} {r['coverage']:>8.1%} "
                            f"{r['mean_reps']:>9.1f} {r['mean_half_width']:>8.2%} {r['adjusted']:>8.0%} {met:>5}  {reasons}"]))
            out[-1].detail.append(f"{'':<29}auto's mean repetitions {results[0]['mean_reps']:.1f} vs fixed N95 "
                                  f"{results[2]['mean_reps']:.0f}: {'<=' if results[0]['mean_reps'] <= results[2]['mean_reps'] else '>'}")
    return out


HEADER = (f"{'stream':<15} {'CV':>4} {'target':>6}  {'rule':<14} {'coverage':>8} "
          f"{'mean reps':>9} {'mean hw':>8} {'widened':>8} {'met':>5}  stop reasons")
NOTES = [
    "'widened': runs whose printed interval was wider than Student's t (its bound on rho above 0); 'met': runs "
    "whose fixed-N interval met the target. Goal (i.i.d.): coverage 93-97%, and auto's mean repetitions <= "
    "fixed N95 (the fixed count that is as sure to reach the target).",
    "AR(1) rows are limits, outside the goal: -r auto covers 91.0% (phi 0.7), 92.4% (0.5, target 2%), 92.9% "
    "(0.3) and 94.8% (0.5, target 1%); before this rule 79.8/85.2/90.0/90.2%. A short stretch of a correlated "
    "stream can look independent: with the former rule a third of the phi 0.7 runs met the target at 8-12 "
    "repetitions, their rho_hat ~0.06 and sd about half the true one (the stream had not wandered yet), and "
    "held the mean in 56%. No rule that stops i.i.d. CV 1% runs by ~15 repetitions (their fixed N95) tells "
    "those apart. From ~50 samples the interval holds the mean in 96-97% (fixed N95 rows). Wandering also "
    "looks like a drift: the trend check stops 8-60% of these runs (their intervals are wide and marked).",
    "What raised them (fast replica of this rule, 2000 runs, seed 19; phi 0.3 / 0.5 at 1% / 0.5 at 2% / 0.7): "
    "the interval's bound on rho (rho_hat + 0.6/sqrt(n), clip [-0.5, 0.9]) alone gives 91.3/91.1/89.1/86.1% "
    "with i.i.d. repetitions at most 0.69 x fixed N95; the second check (target held on a third fewer samples, "
    "at most 20 fewer) alone 90.8/93.0/88.2/86.4% but i.i.d. CV 1%, target 2% needs 12.8 > its N95 of 12; both "
    "93.0/94.8/92.4/91.0%, i.i.d. 94.3-96.4% at 0.92 x N95 at most (CV 1%, target 2%: 13.8 vs 15).",
    "Simulated and not adopted (same replica): a larger bound, z = 0.9-1.2 (with a second check at 1.25-1.5 n): "
    "AR(1) 91.5-96.7% but i.i.d. fixed-N intervals 97-98.4%, over the goal; a second check at 2 n (z = 0.7): AR(1) "
    "93.7-96.5%, all four in the goal, but i.i.d. repetitions up to 1.37 x fixed N95 (CV 1%, target 2%: 18.5 "
    "vs 15); a floor of 16-20 repetitions before any stop: AR(1) phi 0.7 87-89%, i.i.d. CV 1% 16-20 repetitions "
    "against a fixed N95 of 12-15; requiring n / f(rho_hat) >= 8-10 effective samples: +0-4 points. Pooling "
    "rho across the tests of a run was not built: tests differ in repetition length (pp against tg), so their "
    "phi differs, and the first test of a run has nothing to pool.",
    "Stopping when the estimated half-width first crosses the target biases it low (i.i.d. CV 3%, target 1%: "
    "93.1% with Student's t). Requiring the target on two consecutive checks was simulated too: +0.3 points "
    "for +1.8 repetitions (5%), not adopted; two checks a third of the samples apart (above) are.",
    "Stopping on a conservative autocorrelation (the target checked at rho_hat + 1.64/sqrt(n), the printed "
    "interval unchanged, one check) was simulated too (2000 runs): AR(1) auto 90.7/94.0/89.4/88.5% (phi 0.3, 0.5 "
    "at 1%, 0.5 at 2%, 0.7) but mostly through more trend stops (phi 0.7: 32% -> 66%); runs stopped by the "
    "target still covered 90/90/85/70%, and i.i.d. runs needed 1.4-1.8x the repetitions (up to fixed N95: CV "
    "1%, target 2%: 12.0 vs 12). Not adopted: a bound in the stop check alone leaves the printed interval as "
    "narrow as before.",
    "A Stein-style two-stage rule was simulated too (2000 runs): from a pilot of 8, plan the count whose "
    "expected AR(1)-adjusted half-width meets the target, check the target only there, re-plan where it is "
    "missed. AR(1) auto did not move (89.3/90.4/85.0/81.7%): a pilot whose rho_hat is low by chance plans a "
    "short run whose own rho_hat, sharing the pilot, stays low. Not adopted.",
]
