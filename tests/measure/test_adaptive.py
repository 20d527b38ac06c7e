"""-r auto (issue 14.3) and TTFT/ITL (issue 10.5), on a fake clock with synthetic sample streams.

The fake backend advances a fake ``runner.now_ns`` clock by a known time per call: prefill and
decode scale with a per-pass factor from a stream, choosing a token (reading the logits) costs
a fixed time. Nothing here depends on the machine's speed.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.errors import UserError
from profiler.measure import adaptive, runner
from profiler.measure.adaptive import AutoReps
from profiler.measure.plan import Sweep, expand
from profiler.measure.runner import run_test
from profiler.stats import mann_kendall_z
from support.fakes import FakeBackend, make_config, tokens_for

PREFILL_NS_PER_TOKEN = 1_000_000
DECODE_NS = 20_000_000
CHOOSE_NS = 7_000


class Clock:
    def __init__(self) -> None:
        self.now = 0


class TimedBackend(FakeBackend):
    """Each pass (a reset) takes ``factor(pass) x`` the base time; reading logits costs CHOOSE_NS."""

    def __init__(self, clock: Clock, factor=lambda index: 1.0):
        super().__init__()
        self.clock, self.factor, self.passes = clock, factor, -1

    def reset(self):
        super().reset()
        self.passes += 1

    def prefill(self, tokens):
        super().prefill(tokens)
        self.clock.now += int(PREFILL_NS_PER_TOKEN * len(tokens) * self.factor(self.passes))

    def decode_one(self, token):
        super().decode_one(token)
        self.clock.now += int(DECODE_NS * self.factor(self.passes))

    def logits(self):
        self.clock.now += CHOOSE_NS
        return super().logits()


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(runner, "now_ns", lambda: c.now)
    return c


def timed(clock, factor=lambda index: 1.0):
    backend = TimedBackend(clock, factor)
    return backend, tokens_for(backend)


# ----------------------------------------------------------------------------- the rule


def test_ci_half_width():
    # mean 2, sd 1, n 3: 4.3027 / sqrt(3) / 2
    assert adaptive.ci95_rel([1.0, 2.0, 3.0]) == pytest.approx(4.3027 / math.sqrt(3) / 2, rel=1e-4)
    assert adaptive.ci95_rel([5.0]) is None


def test_mann_kendall_sees_a_ramp_and_not_noise():
    ramp = [100 - 1.5 * i for i in range(10)]
    assert mann_kendall_z(ramp) < -adaptive.TREND_Z
    assert adaptive.theil_sen_drift(ramp) == pytest.approx(-13.5 / statistics_median(ramp))
    noise = list(100 + np.random.default_rng(3).normal(0, 10, 40))
    assert abs(mann_kendall_z(noise)) < adaptive.TREND_Z
    assert adaptive.find_trend(noise, 0.01) is None
    # a significant but tiny drift is within the target: averaging over it is harmless
    assert adaptive.find_trend([100 - 0.01 * i for i in range(12)], 0.01) is None


def statistics_median(values):
    return float(np.median(values))


def test_stop_rule_order_and_minimum():
    rule = AutoReps(ci_target=0.01, max_time_s=10)
    assert adaptive.stop_reason([100.0, 100.0], 0, 1, rule) == (None, None)  # below the minimum
    assert adaptive.stop_reason([100.0, 100.1, 99.9], 0, 1, rule)[0] is None  # narrow, but only 3
    tight = [100.0, 100.1, 99.9] * 6
    assert adaptive.stop_reason(tight[:15], 0, 1, rule)[0] is None  # met at 15, but its first 7 are too few
    assert adaptive.stop_reason(tight[:16], 0, 1, rule)[0] == "target"  # at 16 and at 8
    assert adaptive.stop_reason([100.0, 80.0, 120.0], 8.5, 1, rule)[0] is None
    assert adaptive.stop_reason([100.0, 80.0, 120.0], 9.5, 1, rule)[0] == "time-cap"  # the next would end late
    assert adaptive.stop_reason([100.0, 80.0, 120.0], 0, 1, AutoReps(max_reps=3))[0] == "rep-cap"
    reason, trend = adaptive.stop_reason([100 - 2.0 * i for i in range(8)], 0, 1, rule)
    assert reason == "trend" and trend.drift_rel < -0.1


# ----------------------------------------------------------------------------- the loop, synthetic streams


def test_target_must_hold_twice_half_the_samples_apart():
    assert [adaptive.look_back(n) for n in (16, 17, 20, 30, 200)] == [8, 8, 10, 20, 190]
    assert adaptive.earliest_target_stop() == 16 and adaptive.earliest_target_stop(3) == 6
    rule = AutoReps(ci_target=0.01, max_time_s=10)
    assert adaptive.stop_reason([100.0, 100.1, 99.9] * 6, 0, 1, rule)[0] == "target"
    # the first 8 were wide, the last 8 tight: the 16 meet the target but their first 8 did not
    wide_then_tight = [100.0, 97.0, 103.0, 100.0, 97.0, 103.0, 100.0, 100.0] + [100.0] * 8
    assert adaptive.stop_ci95_rel(wide_then_tight) <= 0.01 < adaptive.stop_ci95_rel(wide_then_tight[:8])
    assert adaptive.stop_reason(wide_then_tight, 0, 1, rule)[0] is None


def test_target_is_checked_with_a_higher_bound_on_the_autocorrelation():
    # 20 repetitions that wander slowly (rho_hat ~0.6): the printed interval, +-0.49% (and +-0.66% on
    # the first 10), meets a 0.7% target twice, but with rho one standard error (1/sqrt(n)) above its
    # estimate instead of 0.6 of one the mean is known to +-0.84% only: the test goes on
    wander = [99.8, 100.13, 100.44, 100.19, 100.39, 100.03, 100.12, 100.19, 99.76, 99.86,
              99.5, 99.71, 99.98, 99.79, 100.12, 99.95, 100.25, 100.5, 100.18, 100.31]
    earlier = adaptive.look_back(len(wander))
    assert adaptive.ci95_rel(wander) <= 0.007 and adaptive.ci95_rel(wander[:earlier]) <= 0.007
    assert adaptive.stop_ci95_rel(wander) > 0.007
    assert adaptive.stop_reason(wander, 0, 1, AutoReps(ci_target=0.007, max_time_s=10))[0] is None
    assert adaptive.stop_reason(wander, 0, 1, AutoReps(ci_target=0.03, max_time_s=10))[0] == "target"
    # below 8 samples rho is not estimated: both checks are Student's t
    assert adaptive.stop_ci95_rel(wander[:7]) == adaptive.ci95_rel(wander[:7])


def test_quiet_stream_stops_at_the_minimum(clock):
    backend, tokens = timed(clock, lambda i: 1.0 + 0.0005 * (i % 2))
    timings = run_test(backend, make_config(p=16, n=4), tokens, AutoReps(ci_target=0.01, max_time_s=60))
    assert timings.stop_reason == "target"
    assert len(timings.samples_ns) == adaptive.earliest_target_stop()
    assert timings.warmup_passes == 1  # llama-bench's short pass; the first two full passes agreed


def test_noisy_stream_runs_to_the_time_cap(clock):
    noise = np.random.default_rng(7).normal(1.0, 0.2, 10_000).clip(0.5)
    backend, tokens = timed(clock, lambda i: float(noise[i]))
    rule = AutoReps(ci_target=0.01, max_time_s=30)
    timings = run_test(backend, make_config(p=16, n=4), tokens, rule)
    assert timings.stop_reason == "time-cap" and timings.trend is None
    assert clock.now / 1e9 <= rule.max_time_s  # stopped before a repetition would overrun the cap
    assert len(timings.samples_ns) > 100  # each pass is ~0.1 s: it used the time it had
    ts = [20 * 1e9 / ns for ns in timings.samples_ns]
    assert adaptive.ci95_rel(ts) > rule.ci_target


def test_trending_stream_stops_early_with_a_warning(clock):
    backend, tokens = timed(clock, lambda i: 1.0 + 0.02 * i)  # each pass 2% slower: a thermal ramp
    rule = AutoReps(ci_target=0.01, max_time_s=600)
    timings = run_test(backend, make_config(n=16), tokens, rule)
    assert timings.stop_reason == "trend"
    assert adaptive.TREND_MIN_REPS <= len(timings.samples_ns) <= 12
    assert clock.now / 1e9 < 10  # long before the cap
    ts = [16 * 1e9 / ns for ns in timings.samples_ns]
    fields = adaptive.row_fields(timings, ts, rule, "m tg16")
    assert fields["stop_reason"] == "trend" and fields["trend_drift_rel"] < -0.1
    (warning,) = fields["warnings"]
    assert warning.startswith("m tg16: t/s fell") and "instead of averaging" in warning


def test_warmup_passes_are_repeated_until_two_agree(clock):
    slow = {0: 3.0, 1: 1.5, 2: 1.2}  # the short pass, then two full passes still warming up
    backend, tokens = timed(clock, lambda i: slow.get(i, 1.0))
    timings = run_test(backend, make_config(p=16, n=4), tokens, AutoReps())
    assert timings.warmup_passes == 3 and timings.warmup_settled
    assert set(timings.samples_ns) == {16 * PREFILL_NS_PER_TOKEN + 4 * DECODE_NS}  # no warm-up pass kept
    assert len(timings.windows) == 2 * len(timings.samples_ns)  # their energy windows went with them
    assert len(timings.ttft_ns) == len(timings.itl_ns) == len(timings.samples_ns)


def test_warmup_that_never_settles_is_capped_and_said(clock):
    backend, tokens = timed(clock, lambda i: 1.0 if i % 2 else 1.3)
    rule = AutoReps(max_time_s=20)
    timings = run_test(backend, make_config(n=8), tokens, rule)
    assert timings.warmup_passes == 1 + adaptive.MAX_WARMUP_PASSES and not timings.warmup_settled
    ts = [8 * 1e9 / ns for ns in timings.samples_ns]
    assert any("warm-up did not settle" in w for w in adaptive.row_fields(timings, ts, rule, "x")["warnings"])


def test_no_warmup_means_no_calibration(clock):
    backend, tokens = timed(clock, lambda i: 1.3 if i == 0 else 1.0)
    timings = run_test(backend, make_config(n=4), tokens, AutoReps(ci_target=0.5), warmup=False)
    assert timings.warmup_passes == 0 and len(timings.samples_ns) == adaptive.earliest_target_stop()
    assert timings.samples_ns[0] > timings.samples_ns[1]  # the slow first pass is a sample


def test_fixed_repetitions_say_so(clock):
    backend, tokens = timed(clock)
    timings = run_test(backend, make_config(p=8, n=2), tokens, 4)
    fields = adaptive.row_fields(timings, [1.0, 1.0, 1.0, 1.0], 4, "x")
    assert len(timings.samples_ns) == 4 and fields["stop_reason"] == "fixed" and fields["warmup_passes"] == 1
    assert fields["ci_target_rel"] is None and fields["ci95_rel"] == 0.0 and fields["warnings"] == []


@pytest.mark.parametrize("shape", [dict(p=16), dict(n=8), dict(p=16, n=8), dict(p=8, n=4, d=32)],
                         ids=["pp", "tg", "pg", "depth"])
def test_every_test_type_reaches_the_target(clock, shape):
    backend, tokens = timed(clock)
    timings = run_test(backend, make_config(**shape), tokens, AutoReps())
    assert timings.stop_reason == "target" and len(timings.samples_ns) == adaptive.earliest_target_stop()


# ----------------------------------------------------------------------------- TTFT and ITL (issue 10.5)


def test_ttft_is_prefill_plus_choosing_the_first_token_not_one_more_decode(clock):
    backend, tokens = timed(clock)
    timings = run_test(backend, make_config(p=10, n=4), tokens, 2, warmup=False)
    prefill = 10 * PREFILL_NS_PER_TOKEN
    assert timings.ttft_ns == [prefill + CHOOSE_NS] * 2
    # four tokens after the first, each a decode + choosing the next; the sample stays llama-bench's
    assert timings.itl_ns == [[DECODE_NS + CHOOSE_NS] * 4] * 2
    assert timings.samples_ns == [prefill + 4 * DECODE_NS] * 2


def test_prompt_only_test_decodes_nothing_for_its_ttft(clock):
    backend, tokens = timed(clock)
    timings = run_test(backend, make_config(p=10), tokens, 1, warmup=False)
    assert not [c for c in backend.calls if c[0] == "decode"]
    assert timings.ttft_ns == [10 * PREFILL_NS_PER_TOKEN + CHOOSE_NS]
    assert timings.itl_ns == [[]]


def test_no_prompt_no_ttft(clock):
    backend, tokens = timed(clock)
    timings = run_test(backend, make_config(n=4, d=8), tokens, 2, warmup=False)
    assert timings.ttft_ns == []
    assert len(timings.itl_ns[0]) == 4


def test_context_holds_exactly_the_test():
    (test,) = expand(Sweep(n_prompt=[512], n_gen=[0]), 1)
    assert test.n_ctx_needed == 512  # no extra decode for the first token


# ----------------------------------------------------------------------------- options


def test_sweep_accepts_auto_and_refuses_bad_values():
    expand(Sweep(repetitions="auto", ci_target=0.02, max_time_s=5), 1)
    for bad, match in [(dict(repetitions="often"), "-r/--repetitions"), (dict(repetitions=0), "-r/--repetitions"),
                       (dict(ci_target=0.0), "--ci-target"), (dict(ci_target=1.5), "--ci-target"),
                       (dict(max_time_s=0), "--max-time")]:
        with pytest.raises(UserError, match=match):
            expand(Sweep(**bad), 1)


def test_cli_parsing_of_repetitions_and_target():
    from profiler.cli.reps import parse_fraction, parse_repetitions

    assert parse_repetitions("AUTO") == "auto" and parse_repetitions("7") == 7
    assert parse_fraction("1%", "--ci-target") == pytest.approx(0.01)
    assert parse_fraction("0.005", "--ci-target") == 0.005
    with pytest.raises(UserError, match="ambiguous"):
        parse_fraction("2", "--ci-target")
    with pytest.raises(UserError, match="-r/--repetitions 'x'"):
        parse_repetitions("x")
    assert adaptive.policy("auto", 0.02, 9) == AutoReps(ci_target=0.02, max_time_s=9)
    assert adaptive.policy(5) == 5


def test_missed_target_mark():
    class Row:
        ci_target_rel, ci95_rel, stop_reason = 0.01, 0.03, "time-cap"

    assert adaptive.target_mark(Row()) == "*"
    Row.ci95_rel = 0.005  # narrow, but the time cap stopped it before the target's minimum
    assert adaptive.target_mark(Row()) == "*"
    Row.stop_reason = "target"
    assert adaptive.target_mark(Row()) == ""
    Row.ci_target_rel = None  # fixed -r: no target to miss
    Row.ci95_rel = 0.5
    assert not adaptive.missed_target(Row())


def test_wall_time_covers_warmup_and_dropped_passes(clock):
    backend, tokens = timed(clock, lambda i: 1.5 if i == 1 else 1.0)  # the first full pass is dropped
    timings = run_test(backend, make_config(n=10), tokens, AutoReps())
    fields = adaptive.row_fields(timings, [1.0] * len(timings.samples_ns), AutoReps(), "x")
    assert timings.warmup_passes == 2
    assert timings.wall_ns == clock.now > sum(timings.samples_ns)
    assert fields["test_wall_s"] == pytest.approx(clock.now / 1e9)


def test_warmup_calibration_stops_at_a_quarter_of_the_time_cap(clock):
    # passes of ~0.2 s that never agree: with a 2 s cap calibration may use only 0.5 s
    backend, tokens = timed(clock, lambda i: 1.0 if i % 2 else 1.3)
    timings = run_test(backend, make_config(n=8), tokens, AutoReps(max_time_s=2))
    assert not timings.warmup_settled
    assert timings.warmup_passes < 1 + adaptive.MAX_WARMUP_PASSES
    assert len(timings.samples_ns) >= adaptive.MIN_REPS


def test_a_run_that_was_not_adaptive_has_no_target_to_miss(clock):
    # --sustained ignores -r: its chunks vary by design and must not be marked as a missed target
    from profiler.measure import sustained

    backend, tokens = timed(clock, lambda i: 1.0 + 0.1 * (i % 3))
    timings = sustained.run_sustained(backend, make_config(n=8), tokens, duration_s=3)
    ts = [8 * 1e9 / ns for ns in timings.samples_ns]
    fields = adaptive.row_fields(timings, ts, AutoReps(), "x")
    assert fields["stop_reason"] == "fixed" and fields["ci_target_rel"] is None and fields["warnings"] == []


# ----------------------------------------------------------------------------- coverage (issue 19.3)


def simulated_auto(cv: float, target: float, rule: AutoReps | None, runs: int, seed: int):
    """-r auto's rule on i.i.d. normal t/s of true mean 100: coverage of the printed interval, the
    share of runs stopped at 3 repetitions, and the mean repetitions. ``rule`` None: the rule before
    issue #19, which stopped at the first n >= 3 whose interval met the target, checked once."""
    rng = np.random.default_rng(seed)
    covered = at_three = reps = 0
    for _ in range(runs):
        x = list(100 * (1 + cv * rng.normal(size=200)))
        if rule is None:
            n = next(n for n in range(3, 201) if adaptive.ci95_rel(x[:n]) <= target)
        else:
            n = next(n for n in range(1, 201) if adaptive.stop_reason(x[:n], 0, 0, rule)[0] is not None)
        ci = adaptive.ci95_rel(x[:n])
        m = sum(x[:n]) / n
        covered += abs(m - 100) <= ci * m
        at_three += n == 3
        reps += n
    return covered / runs, at_three / runs, reps / runs


def test_auto_does_not_stop_on_a_lucky_small_variance():
    # CV 1%, target 1%: the old rule (target from 3 repetitions) stopped ~13% of runs at n = 3,
    # where the interval is +-2.5% on average (its coverage here, 92-94%, is only a little low:
    # the next test shows where it falls well short). Fixed seed: the figures are exact for this code
    _, at_three, _ = simulated_auto(0.01, 0.01, None, 600, seed=19)
    assert at_three > 0.10
    new = AutoReps(ci_target=0.01, max_time_s=math.inf)
    coverage, at_three, reps = simulated_auto(0.01, 0.01, new, 600, seed=19)
    assert at_three == 0 and 0.93 <= coverage <= 0.97
    # the fixed count that meets 1% on average is 6, and 22 in 95% of runs (benchmarks/coverage.py): the
    # minimum, the second check (from 16 on) and the bounds on the autocorrelation cost ~16, but no
    # more than a fixed count as sure to reach the target
    assert reps <= 22


def test_auto_covers_when_many_repetitions_are_needed():
    # CV 3%, target 2% (~11 repetitions): the old rule covered ~90%
    assert simulated_auto(0.03, 0.02, None, 600, seed=7)[0] < 0.925
    new = AutoReps(ci_target=0.02, max_time_s=math.inf)
    coverage, _, reps = simulated_auto(0.03, 0.02, new, 600, seed=7)
    assert coverage >= 0.93 and reps <= 30  # the fixed count that meets 2% in 95% of runs: 30


def test_time_cap_before_the_target_minimum_is_marked_and_said(clock):
    # passes of ~0.3 s against a 1.5 s cap: stops before 8 repetitions, however narrow the interval
    backend, tokens = timed(clock, lambda i: 1.0 + 0.0005 * (i % 2))
    rule = AutoReps(ci_target=0.01, max_time_s=1.5)
    timings = run_test(backend, make_config(n=16), tokens, rule)
    assert timings.stop_reason == "time-cap"
    assert adaptive.MIN_REPS <= len(timings.samples_ns) < adaptive.TARGET_MIN_REPS
    ts = [16 * 1e9 / ns for ns in timings.samples_ns]
    fields = adaptive.row_fields(timings, ts, rule, "m tg16")
    assert fields["ci95_rel"] <= rule.ci_target
    (warning,) = fields["warnings"]
    assert "fewer than the 8 the target needs" in warning


def test_time_cap_before_the_second_check_is_marked_and_said(clock):
    # passes of ~0.3 s against a 3 s cap: 9-10 repetitions, narrow, but not yet checked twice
    backend, tokens = timed(clock, lambda i: 1.0 + 0.0005 * (i % 2))
    rule = AutoReps(ci_target=0.01, max_time_s=3)
    timings = run_test(backend, make_config(n=16), tokens, rule)
    n = len(timings.samples_ns)
    assert timings.stop_reason == "time-cap" and adaptive.TARGET_MIN_REPS <= n < adaptive.earliest_target_stop()
    fields = adaptive.row_fields(timings, [16 * 1e9 / ns for ns in timings.samples_ns], rule, "m tg16")
    assert fields["ci95_rel"] <= rule.ci_target
    (warning,) = fields["warnings"]
    assert "had met the target on -r auto's check" in warning and "raise --max-time" in warning


# ----------------------------------------------------------------------------- autocorrelated repetitions (issue 19)


def auto_on(x: np.ndarray, rule: AutoReps) -> tuple[float, float]:
    """-r auto's rule fed each stream of x one repetition at a time: the coverage of the printed
    interval of true mean 100, and the mean repetitions."""
    covered = reps = 0
    for row in x:
        values = row.tolist()
        n = next(n for n in range(1, len(values) + 1) if adaptive.stop_reason(values[:n], 0, 0, rule)[0] is not None)
        m = sum(values[:n]) / n
        covered += abs(m - 100) <= adaptive.ci95_rel(values[:n]) * m
        reps += n
    return covered / len(x), reps / len(x)


def test_fixed_n_interval_holds_the_mean_of_correlated_repetitions():
    # a -r 40 row on AR(1) phi 0.5: Student's t held the mean in ~75% of runs
    from support.ar1 import streams

    x = streams(seed=21, runs=400, length=40, cv=0.03, phi=0.5)
    coverage = np.mean([abs(row.mean() - 100) <= adaptive.ci95_rel(row.tolist()) * row.mean() for row in x])
    assert 0.91 <= coverage <= 0.97


def test_auto_on_correlated_repetitions_runs_longer_and_covers_more():
    # AR(1), CV 3%, target 2%, 2000 runs per phi. Student's t stopped after ~10 repetitions and covered
    # ~74% (phi 0.5); the plain AR(1) interval checked once stopped after ~21 and covered 83% (phi 0.5)
    # and 81% (phi 0.7). The former rule (the printed bound on rho, checked again a third of the
    # samples back) covered 93.1/91.3/91.9% (phi 0.3/0.5/0.7) here, 92.1% in all; the stop check's
    # higher bound and a look-back of half the samples cover 93.8/92.5/93.5%, 93.2% in all: the
    # goal's 93%, within a point of it at each phi (docs/repetitions.md)
    from support.ar1 import streams

    covered = []
    for phi, seed in ((0.3, 24), (0.5, 22), (0.7, 23)):
        x = streams(seed=seed, runs=2000, length=400, cv=0.03, phi=phi)
        coverage, reps = auto_on(x, AutoReps(ci_target=0.02, max_time_s=math.inf))
        assert 0.92 <= coverage <= 0.97 and reps > 35, (phi, coverage, reps)
        covered.append(coverage)
    assert np.mean(covered) >= 0.93, covered


def test_rows_say_how_their_interval_was_computed():
    from support.ar1 import streams

    wander = streams(seed=24, runs=1, length=30, cv=0.03, phi=0.7)[0].tolist()
    fields = adaptive.row_fields(runner.TestTimings(samples_ns=[1] * 30), wander, 30, "x")
    assert fields["ci95_method"] == "ar1-adjusted" and fields["ci95_rho_hat"] > 0.3
    short = adaptive.row_fields(runner.TestTimings(samples_ns=[1] * 5), wander[:5], 5, "x")
    assert short["ci95_method"] == "student-t" and short["ci95_rho_hat"] is None
