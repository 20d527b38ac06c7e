"""Adaptive repetitions (``-r auto``): repeat a test until its mean t/s is known well enough.

The rule is checked after every repetition, in this order:

- **target**: the 95% confidence interval of the mean t/s is within ``ci_target`` of the mean
  (half-width / mean), with at least ``target_min_reps`` (8) repetitions, and it was within the
  target on the first ``look_back(n)`` samples too (half as many, at most 10 fewer: the earliest
  stop is at 16). The check uses ``stop_ci95_rel``, the printed interval (``interval``: Student's
  t, adjusted from 8 repetitions for the lag-1 autocorrelation between them) with a higher bound on
  that autocorrelation, so a test whose repetitions merely look independent is not stopped early.
  Checked from 3 on the printed interval, the rule stopped on a lucky small variance: with a true
  CV of 1% about 15% of runs stopped at n = 3 printing <= 1% where the interval is +-2.5% on
  average, and the printed intervals held the true mean in as few as 90% of runs, not 95%.
  Now they hold it in 94.5-96% of simulated runs on i.i.d. samples and 93-95.5% on AR(1) ones
  (phi 0.3-0.7; ``benchmarks/coverage.py``), where the plain AR(1) interval with a single check
  covered 80-90% and Student's t 58-85%;
- **trend**: the samples drift one way (Mann-Kendall test, |z| >= ``TREND_Z``, from
  ``TREND_MIN_REPS`` repetitions) by more than the target over the run. A thermal ramp or
  throttling makes a mean meaningless, so we stop and warn instead of averaging over it;
- **time-cap**: the next repetition would end after ``max_time_s`` (warm-up included), checked
  from ``min_reps`` (3), so a slow test is not held to 8 passes past the cap; such a row is
  marked as a missed target even when its interval looks narrow enough;
- **rep-cap**: ``max_reps`` repetitions, so rows of very short tests stay small.

With ``--energy-target`` (``energy_target``) the target also needs the 95% interval of every
phase's J/token (``measure/energy.py``) within that share of its mean; ``ci_target`` is then None
unless ``-r auto`` asked for a t/s target too. A test whose J/token can get no interval (its
windows are shorter than the meter resolves) stops at ``min_reps`` as **energy-unresolved**.

Warm-up is calibrated as pyperf does: full passes are repeated until two consecutive passes
agree within ``WARMUP_AGREE``, up to ``MAX_WARMUP_PASSES`` or ``WARMUP_TIME_SHARE`` of the
time cap; passes before that are dropped.
This module holds only the rule; the loop that applies it is ``runner.run_test``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from profiler.stats import AUTOCORR_UPPER_Z, MeanInterval, mann_kendall_z, mean, mean_ci, theil_sen_slope

MIN_REPS = 3  # before any stop (the time cap included): the minimum that always runs
TARGET_MIN_REPS = 8  # before the target may stop a test: 7 degrees of freedom behind the variance
# The t/s target must hold twice: on all n samples and on the first n - min(ceil(n/2), 10) of them
# (a run that first meets it at n0 < 20 stops at ~2 n0 at the earliest, later ones at n0 + 10), and
# both checks put the bound on the lag-1 autocorrelation at rho_hat + STOP_RHO_Z / sqrt(n), not the
# printed interval's rho_hat + 0.6 / sqrt(n). A short stretch of wandering repetitions can look
# independent (rho_hat and the spread both low by chance); the stricter check holds such a run back
# until it has wandered, while a target stop still prints the ordinary interval, so a fixed -r N
# row and an auto row of the same samples print the same CI. With a third of the samples back (at
# most 20) and the printed bound, -r auto covered 91.0-94.8% of simulated AR(1) runs (phi 0.3-0.7);
# now 93.2-95.4%, for about a quarter more repetitions on independent ones (CV 1%, target 1%: 21.6
# against 17.0), still fewer than the fixed count as sure to reach the target unless a fixed -r 5
# already is (benchmarks/coverage.py).
LOOK_BACK_SHARE = 2  # the earlier check is half the samples back ...
LOOK_BACK_MAX = 10  # ... and at most 10 back: where n is large rho_hat is already well known
STOP_RHO_Z = 1.0  # the stop check's bound on rho: rho_hat + STOP_RHO_Z / sqrt(n) (the printed: 0.6)
MAX_REPS = 1000
DEFAULT_CI_TARGET = 0.01
DEFAULT_MAX_TIME_S = 60.0
TREND_MIN_REPS = 8
TREND_Z = 3.0  # two-sided p ~ 0.003: checked after every repetition, so it must be strict
WARMUP_AGREE = 0.03  # consecutive warm-up passes agree when their times differ by <= 3%
MAX_WARMUP_PASSES = 3  # full passes dropped at most, after llama-bench's short warm-up
# Calibration ends when a quarter of --max-time is gone: on a busy machine passes rarely agree,
# and dropping them all would spend the time the samples need.
WARMUP_TIME_SHARE = 0.25

STOP_REASONS = ("target", "trend", "time-cap", "rep-cap", "energy-unresolved", "fixed")


@dataclass(frozen=True)
class AutoReps:
    """The ``-r auto`` policy of one run."""

    ci_target: float | None = DEFAULT_CI_TARGET  # None: no t/s target (--energy-target alone)
    max_time_s: float = DEFAULT_MAX_TIME_S
    min_reps: int = MIN_REPS
    target_min_reps: int = TARGET_MIN_REPS
    max_reps: int = MAX_REPS
    energy_target: float | None = None  # --energy-target: J/token 95% half-width over the mean

    @property
    def trend_threshold(self) -> float:
        return self.ci_target if self.ci_target is not None else DEFAULT_CI_TARGET


@dataclass(frozen=True)
class Trend:
    """A monotonic drift in a sample stream."""

    z: float  # Mann-Kendall statistic; negative: falling
    drift_rel: float  # Theil-Sen slope x (n - 1) / median: the fitted change over the run

    def to_dict(self) -> dict:
        return {"mann_kendall_z": self.z, "drift_rel": self.drift_rel}


def policy(repetitions: int | str, ci_target: float = DEFAULT_CI_TARGET,
           max_time_s: float = DEFAULT_MAX_TIME_S, energy_target: float | None = None) -> int | AutoReps:
    """A fixed repetition count, or the adaptive policy for ``"auto"`` or an energy target
    (with a count and an energy target, the energy target alone decides when to stop)."""
    if repetitions == "auto":
        return AutoReps(ci_target=ci_target, max_time_s=max_time_s, energy_target=energy_target)
    if energy_target is not None:
        return AutoReps(ci_target=None, max_time_s=max_time_s, energy_target=energy_target)
    return int(repetitions)


def interval(samples: Sequence[float], rho_upper_z: float = AUTOCORR_UPPER_Z) -> MeanInterval | None:
    """The mean t/s's 95% confidence interval (``stats.mean_ci``: Student's t, adjusted for lag-1
    autocorrelation between repetitions from 8 of them); None below 2 samples or without a
    positive mean. The printed ci95_rel of every row (-r N too) uses the default bound on rho; the
    target's check a stricter one (``stop_ci95_rel``)."""
    m = mean(samples)
    if len(samples) < 2 or not m or m <= 0:
        return None
    return mean_ci(samples, rho_upper_z)


def ci95_rel(samples: Sequence[float], rho_upper_z: float = AUTOCORR_UPPER_Z) -> float | None:
    """Half-width of the mean's 95% confidence interval over the mean; None below 2 samples."""
    ci = interval(samples, rho_upper_z)
    return None if ci is None else ci.half_width / mean(samples)


def stop_ci95_rel(samples: Sequence[float]) -> float | None:
    """The interval the t/s target is checked on: ``ci95_rel`` with the bound on rho at
    STOP_RHO_Z (the same as the printed one below 8 samples, where rho is not estimated)."""
    return ci95_rel(samples, STOP_RHO_Z)


def method_fields(ci: MeanInterval | None) -> dict:
    """How a row's ci95_rel was computed: ``ci95_method`` and ``ci95_rho_hat``."""
    if ci is None:
        return {"ci95_method": None, "ci95_rho_hat": None}
    return {"ci95_method": ci.method, "ci95_rho_hat": ci.rho_hat}


def theil_sen_drift(values: Sequence[float]) -> float:
    """Median pairwise slope times (n - 1), over the median: the relative change across the run."""
    if len(values) < 2:
        return 0.0
    centre = float(np.median(values))
    return theil_sen_slope(values) * (len(values) - 1) / centre if centre else 0.0


def find_trend(values: Sequence[float], ci_target: float) -> Trend | None:
    """A significant drift larger than the target, or None."""
    if len(values) < TREND_MIN_REPS:
        return None
    z = mann_kendall_z(values)
    if abs(z) < TREND_Z:
        return None
    drift = theil_sen_drift(values)
    return Trend(z, drift) if abs(drift) > ci_target else None


def look_back(n: int) -> int:
    """The earlier sample count at which the t/s target must also have held, for a stop at n."""
    return n - min(-(-n // LOOK_BACK_SHARE), LOOK_BACK_MAX)


def earliest_target_stop(target_min_reps: int = TARGET_MIN_REPS) -> int:
    """The fewest samples at which the t/s target can stop a test (16 for the default minimum of 8)."""
    n = target_min_reps
    while look_back(n) < target_min_reps:
        n += 1
    return n


def ts_target_met(samples_ts: Sequence[float], rule: AutoReps) -> bool:
    """The t/s target (if any) holds on all samples and on the first ``look_back`` of them, which
    must be at least ``target_min_reps``, both on the stop check's interval (``stop_ci95_rel``)."""
    if rule.ci_target is None:
        return True
    earlier = look_back(len(samples_ts))
    if earlier < rule.target_min_reps:
        return False
    return all(ci is not None and ci <= rule.ci_target
               for ci in (stop_ci95_rel(samples_ts), stop_ci95_rel(samples_ts[:earlier])))


def targets_met(samples_ts: Sequence[float], rule: AutoReps, energy_ci_rel: float | None) -> bool:
    """The t/s target (if any, held twice: ``ts_target_met``) and the energy target (if any) are both met."""
    energy_met = rule.energy_target is None or (energy_ci_rel is not None and energy_ci_rel <= rule.energy_target)
    return energy_met and ts_target_met(samples_ts, rule)


def stop_reason(samples_ts: Sequence[float], elapsed_s: float, next_rep_s: float, rule: AutoReps,
                energy_ci_rel: float | None = None, energy_unavailable: str | None = None,
                ) -> tuple[str | None, Trend | None]:
    """Why to stop after these samples (None: go on), and the trend when that is the reason.

    ``energy_ci_rel``: the J/token interval now (--energy-target), or ``energy_unavailable`` why
    there is none (a test whose windows the meter does not resolve never gets one)."""
    n = len(samples_ts)
    if n >= rule.min_reps:
        if n >= rule.target_min_reps and targets_met(samples_ts, rule, energy_ci_rel):
            return "target", None
        if rule.energy_target is not None and energy_ci_rel is None and energy_unavailable:
            return "energy-unresolved", None
        trend = find_trend(samples_ts, rule.trend_threshold)
        if trend is not None:
            return "trend", trend
        if elapsed_s + next_rep_s > rule.max_time_s:
            return "time-cap", None
        if n >= rule.max_reps:
            return "rep-cap", None
    return None, None


def passes_agree(previous_ns: float, current_ns: float) -> bool:
    """Two consecutive warm-up passes agree: their times differ by at most WARMUP_AGREE."""
    return abs(current_ns - previous_ns) <= WARMUP_AGREE * max(previous_ns, current_ns)


def missed_target(row) -> bool:
    """An adaptive row whose interval stayed wider than its target, or that the time cap stopped
    before the target's minimum of repetitions (its interval is not trusted): the tables mark it."""
    if row.ci_target_rel is None:
        return False
    if getattr(row, "stop_reason", None) == "time-cap":
        return True
    return row.ci95_rel is None or row.ci95_rel > row.ci_target_rel


def target_mark(row) -> str:
    """The mark a results table puts beside t/s: '*' when the row missed its CI target."""
    return "*" if missed_target(row) else ""


MARK_LEGEND = ("* 95% CI wider than --ci-target, or fewer repetitions than the target needs "
               "(stopped by the time cap, the repetition cap or a trend)")


def row_warnings(label: str, stop: str, ci: float | None, target: float | None, n: int,
                 trend: Trend | None, max_time_s: float | None, warmup_settled: bool) -> list[str]:
    """The warnings an adaptive test leaves in its row, each naming what to do (t/s only: with
    --energy-target alone, ``target`` is None and the energy fields warn about the J/token)."""
    notes = []
    ci_text = "n/a" if ci is None else f"±{ci:.1%}"
    if stop == "trend" and trend is not None:
        direction = "fell" if trend.drift_rel < 0 else "rose"
        notes.append(
            f"{label}: t/s {direction} {abs(trend.drift_rel):.1%} over {n} repetitions (Mann-Kendall z={trend.z:.1f}), "
            "a thermal ramp, throttling or other load; stopped instead of averaging over it "
            "(try --cooldown-to, --delay, or --sustained to measure the throttled rate)")
    elif stop == "time-cap" and ci is not None and target is not None and ci <= target and n < TARGET_MIN_REPS:
        notes.append(f"{label}: stopped by --max-time {max_time_s:g} s after {n} repetitions, fewer than the "
                     f"{TARGET_MIN_REPS} the target needs; its 95% CI {ci_text} may be too narrow: raise --max-time")
    elif stop == "time-cap" and ci is not None and target is not None and ci <= target:
        notes.append(f"{label}: stopped by --max-time {max_time_s:g} s after {n} repetitions, before its 95% CI "
                     f"{ci_text} had met the target on -r auto's check (on all samples and on the first {look_back(n)}, "
                     "allowing more for alike neighbouring repetitions); it may be too narrow: raise --max-time")
    elif stop == "time-cap" and target is not None:
        notes.append(f"{label}: 95% CI {ci_text} of the mean after {n} repetitions missed the {target:.1%} target "
                     f"within --max-time {max_time_s:g} s; the machine is noisy, close other programs or raise --max-time")
    elif stop == "rep-cap" and target is not None:
        notes.append(f"{label}: 95% CI {ci_text} of the mean missed the {target:.1%} target after {n} repetitions "
                     "(the repetition cap); use larger -p/-n so each sample is longer")
    if not warmup_settled:
        notes.append(f"{label}: warm-up did not settle: no two consecutive passes agreed within {WARMUP_AGREE:.0%} "
                     f"(at most {MAX_WARMUP_PASSES} dropped, or {WARMUP_TIME_SHARE:.0%} of --max-time); "
                     "the first samples may still include warm-up effects")
    return notes


def row_fields(timings, samples_ts: Sequence[float], rule: int | AutoReps, label: str) -> dict:
    """The repetition fields of a result row (``ci95_rel``, ``stop_reason``, ...) and its warnings.

    ``timings`` is a ``runner.TestTimings`` (duck-typed: this module stays below the runner)."""
    ci = ci95_rel(samples_ts)
    trend = timings.trend
    if timings.stop_reason == "fixed":  # a fixed count ran (-r N, or --sustained's single run)
        rule = 0
    fields = {
        "ci95_rel": ci,
        **method_fields(interval(samples_ts)),
        "ci_target_rel": rule.ci_target if isinstance(rule, AutoReps) else None,
        "stop_reason": timings.stop_reason,
        "warmup_passes": timings.warmup_passes,
        "trend_drift_rel": trend.drift_rel if trend is not None else None,
        "test_wall_s": timings.wall_ns / 1e9 if timings.wall_ns else None,
        "warnings": [],
    }
    if isinstance(rule, AutoReps):
        fields["warnings"] = row_warnings(label, timings.stop_reason, ci, rule.ci_target, len(samples_ts), trend,
                                          rule.max_time_s, timings.warmup_settled)
    return fields
