"""Section ``-r auto``: the rule of ``profiler/measure/adaptive.py`` (``stop_reason``, called after
every repetition exactly as the runner calls it, the trend check included; no time cap) run on
synthetic t/s streams whose true mean is 100:

- i.i.d. normal at CV 1%, 3% and 5%, targets 1% and 2%;
- AR(1) at a marginal CV of 3% (neighbouring repetitions correlated, as a machine whose speed
  wanders between plateaus): phi 0.5 at targets 1% and 2%, phi 0.3 and 0.7 at 2%.

``--runs`` runs each (default 2000, fixed seed). For each it prints the observed coverage of the
printed interval (mean +- ci95_rel x mean holds 100), the mean repetitions, the mean printed
half-width and how often the interval was adjusted for autocorrelation, for

- ``auto``: the rule as shipped (the target, checked with a higher bound on rho than the printed
  interval's, must hold at n and on the first ``adaptive.look_back(n)`` samples, half as many or
  10 fewer: the earliest target stop is at 16);
- ``fixed N``: the oracle count, the smallest N whose *expected* Student's t half-width meets the
  target (``stats.fixed_count_for_half_width``, which knows the true CV and assumes independence:
  no user has it, and it meets the target in only about half of the runs);
- ``fixed N95``: the smallest N whose printed interval (the product's, as on a ``-r N`` row)
  meets the target in at least 95% of the runs, found by trying every N on the same streams: the
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


def fixed_n95(x: np.ndarray, target: float) -> int:
    """The smallest N whose printed interval meets the target in at least SURE of these runs,
    found by trying every N from 2: the share is not monotone in N (a -r 5 to -r 7 interval is
    plain Student's t; from 8 it allows for autocorrelation and is wider), so a doubling search
    from a guess can step over the smallest one."""
    for n in range(2, CAP + 1):
        if meets(x, n, target) >= SURE:
            return n
    return CAP


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
    n95 = fixed_n95(x, target)
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
                    goal=True,
                    detail=[f"{name:<15} {cv:>4.0%} {target:>6.0%}  {r['rule']:<14} {r['coverage']:>8.1%} "
                            f"{r['mean_reps']:>9.1f} {r['mean_half_width']:>8.2%} {r['adjusted']:>8.0%} {met:>5}  {reasons}"]))
            out[-1].detail.append(f"{'':<29}auto's mean repetitions {results[0]['mean_reps']:.1f} vs fixed N95 "
                                  f"{results[2]['mean_reps']:.0f}: {'<=' if results[0]['mean_reps'] <= results[2]['mean_reps'] else '>'}")
    return out


HEADER = (f"{'stream':<15} {'CV':>4} {'target':>6}  {'rule':<14} {'coverage':>8} "
          f"{'mean reps':>9} {'mean hw':>8} {'widened':>8} {'met':>5}  stop reasons")
NOTES = [
    "'widened': runs whose printed interval was wider than Student's t (its bound on rho above 0); 'met': runs "
    "whose fixed-N interval met the target. Goal: coverage 93-97%, and auto's mean repetitions <= fixed N95 "
    "(the fixed count that is as sure to reach the target).",
    "Fixed N95 is the smallest such N, found by trying every N: the share that meets the target is not "
    "monotone in N, since from 8 repetitions the interval allows for autocorrelation and is wider than "
    "Student's t below 8. At CV 1%, target 2%, a fixed -r 5 meets it in 97% of runs and -r 8 in 68%. Until "
    "2026-12-04 this search doubled from the oracle N and stepped over 5 to 15; the table then claimed auto "
    "<= fixed N95 in every case, and auto's 13.8 was in truth 2.8x that case's N95 of 5.",
    "The one case auto misses (CV 1%, target 2%: 18.4 against 5) is the price of its earliest stop at 16. "
    "Five samples of a wandering machine look as calm as five independent ones: on AR(1) phi 0.5, CV 3%, a "
    "fixed -r 5 holds the mean in about 80% of runs (docs/repetitions.md), and a rule that stopped there "
    "would print such intervals.",
    "AR(1) rows (2026-12-04 rule): 95.1/95.4/93.3/93.2% (phi 0.3, 0.5 at 1%, 0.5 at 2%, 0.7). The two worst "
    "sit at the goal's lower edge: the same cases in a replica at seeds 7 and 101 gave 92.9-93.8%, and "
    "tests/measure at seeds 22-24 92.5-93.8%. The rule before it (the printed bound rho_hat + 0.6/sqrt(n) in "
    "the stop check, and the target held on a third fewer samples, at most 20 fewer) gave 92.9/94.8/92.4/"
    "91.0%, and the one before (one check) 79.8/85.2/90.0/90.2%. A short stretch of a correlated stream can "
    "look independent: with the one-check rule a third of the phi 0.7 runs met the target at 8-12 "
    "repetitions, their rho_hat ~0.06 and sd about half the true one, and held the mean in 56%.",
    "What the 2026-12-04 rule changed, and why (fast replica, 2000 runs, seed 19; phi 0.3 / 0.5 at 1% / 0.5 "
    "at 2% / 0.7): the stop check's bound on rho went from 0.6 to 1.0 standard error above rho_hat (the "
    "printed interval keeps 0.6: at 0.7-0.8 the i.i.d. fixed-N intervals cover 97.4-97.9% at 1000 runs, over "
    "the goal), and the look-back from a third of the samples (at most 20) to half (at most 10). Each alone is not "
    "enough (1000 runs): the stricter check with a third back 92.6/96.7/92.3/91.4%; half back with the "
    "printed bound 93.8/95.8/93.6/92.1% but i.i.d. CV 1%, target 1% at 21.7 vs 21. Both, with at most 10 back: "
    "95.1/95.4/93.3/93.1%, i.i.d. 94.6-96.2% at 0.98x fixed N95 at most (CV 1%, target 1%). At most 15 or 20 "
    "back cost i.i.d. CV 1%, target 1% 23.5-24.3 repetitions against 22; a bound of 1.2 raised the worst AR(1) "
    "case by 0.3-0.5 points for 1-2 more repetitions (CV 1%, target 1%: 22.7 vs 22).",
    "Wandering also looks like a drift: the trend check stops 10-66% of the AR(1) runs (their intervals are "
    "wide and marked). From ~50 samples the interval holds the mean in 96-97% (fixed N95 rows).",
    "Simulated and not adopted earlier (replica of the former rule): a larger printed bound, z = 0.9-1.2: AR(1) "
    "91.5-96.7% but i.i.d. fixed-N intervals 97-98.4%, over the goal; a floor of 16-20 repetitions before any "
    "stop: AR(1) phi 0.7 87-89%; requiring n / f(rho_hat) >= 8-10 effective samples: +0-4 points; a "
    "conservative check alone (rho_hat + 1.64/sqrt(n), one check): runs stopped by the target still covered "
    "70-90%; a Stein-style two-stage rule (pilot of 8, planned count): AR(1) 81.7-90.4%, a pilot whose rho_hat "
    "is low by chance plans a short run. Requiring the target on two consecutive checks: +0.3 points for +1.8 "
    "repetitions. Pooling rho across the tests of a run was not built: tests differ in repetition length (pp "
    "against tg), so their phi differs, and the first test of a run has nothing to pool.",
]
