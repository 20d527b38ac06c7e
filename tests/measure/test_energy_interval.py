"""Every measured J/token has a 95% interval, and --energy-target repeats until it is narrow enough
(issue #19.10). Estimates keep "(est.)" and get no interval.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from profiler.measure import runner
from profiler.measure.adaptive import AutoReps
from profiler.measure.energy import EnergyInputs, EnergySession, energy_fields
from profiler.measure.session import EnergyOptions, row_fields, run_tracked
from profiler.platform.energy.base import EnergySource, Provenance
from profiler.platform.energy.chooser import Choice
from profiler.platform.energy.sampler import Reading
from profiler.platform.thermal import ThermalSensors
from profiler.report.energy_text import energy_cell
from profiler.stats import mean_ci_half_width
from support.fakes import FakeBackend, make_config, tokens_for
from support.tests_support import make_row

S = 1_000_000_000
DECODE_NS = 20_000_000


def counter_readings(joules_per_window: list[float], window_s: float = 1.0, gap_s: float = 0.01):
    """Counter reads at every window edge (as the runner's hook takes them) and the windows."""
    readings, windows, t, total = [Reading(0, 0.0, None, None)], [], 0, 0.0
    for joules in joules_per_window:
        t += round(gap_s * S)
        readings.append(Reading(t, total, None, None))
        start, t = t, t + round(window_s * S)
        total += joules
        readings.append(Reading(t, total, None, None))
        windows.append(("decode", start, t))
    return readings, windows


def fields_for(joules, method="counter", measured=True, n_gen=16):
    readings, windows = counter_readings(joules)
    prov = Provenance("rapl:package-0" if measured else "model:cpu-table", method, "package", measured, 20.0,
                      False, 0.001)
    return energy_fields(EnergyInputs(readings, prov, True, windows, 0, n_gen, None, "skipped", None), "m tg16")


def test_a_counter_j_per_token_gets_the_textbook_t_interval():
    joules = [10.0, 10.4, 9.7, 10.2, 9.9, 10.5]
    fields, _ = fields_for(joules)
    decode = fields["energy_detail"]["phases"]["decode"]
    per_token = [j / 16 for j in joules]
    # a counter read at the window edges adds no smear and no step: the spread is all there is
    assert decode["j_per_token_ci95_j"] == pytest.approx(mean_ci_half_width(per_token), rel=1e-9)
    assert decode["j_per_token_ci95_rel"] == pytest.approx(decode["j_per_token_ci95_j"] / fields["j_per_decode_token"])
    cell = energy_cell(make_row(**{**fields, "n_gen": 16}))
    assert f"±{decode['j_per_token_ci95_rel']:.0%}" in cell and "(est.)" not in cell


def test_an_estimated_j_per_token_keeps_est_and_gets_no_interval():
    fields, _ = fields_for([10.0, 10.4, 9.7, 10.2], method="model", measured=False)
    decode = fields["energy_detail"]["phases"]["decode"]
    assert decode["j_per_token_ci95_j"] is None and "estimated" in decode["interval"]["unavailable"]
    cell = energy_cell(make_row(**{**fields, "n_gen": 16}))
    assert cell.endswith("(est.)") or "(est.)" in cell
    assert "±" not in cell


def test_a_sampled_meter_adds_its_gap_and_step_terms_in_quadrature():
    # a 0.05 W step sampled at 10 Hz: the interval is wider than the spread's alone
    t = np.arange(0, 12.5, 0.1)
    watts = np.where((t % 2.0) < 1.9, 10.0, 5.0) + 0.05 * (np.arange(len(t)) % 3)
    readings = [Reading(round(x * S), float(w), None, None) for x, w in zip(t, watts, strict=True)]
    windows = [("decode", round((2 * i + 0.02) * S), round((2 * i + 1.88) * S)) for i in range(6)]
    prov = Provenance("battery:BAT0", "sampled", "battery-system", True, 10.0, False, 0.1)
    fields, _ = energy_fields(EnergyInputs(readings, prov, False, windows, 0, 16, None, "skipped", 0.1), "m")
    interval = fields["energy_detail"]["phases"]["decode"]["interval"]
    spread = mean_ci_half_width(interval["per_window_j_per_token"])
    assert interval["u_gap_j"] > 0 and interval["u_step_j"] > 0 and interval["half_width_j"] > spread


# ----------------------------------------------------------------------------- coverage (benchmarks/coverage.py)


def coverage_section():
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    from coverage_sections import energy

    return energy


def test_the_printed_interval_covers_the_true_j_per_token_on_a_slow_meter():
    energy = coverage_section()
    result = energy.simulate(1.0, 5.0, runs=300, seed=19)
    assert result["unresolved"] == 0 and result["n_interval"] == 300
    assert 0.92 <= result["covered"] / 300 <= 0.98
    short = energy.simulate(1.0, 2.0, runs=40, seed=19)  # 2 s windows, a 1 s meter: unresolved, no interval
    assert short["unresolved"] == 1.0 and short["n_interval"] == 0


def test_the_interval_printed_when_the_energy_target_stops_covers_the_truth():
    """--energy-target 2% on the simulated 1 s meter: the rule stops on the interval it computes after each
    repetition; stopping when it looks narrow must not make it hold the truth less often than 95%."""
    row = coverage_section().target_row(200, 19, 1.0, 5.0, 0.02)
    assert 0.91 <= row.coverage <= 0.99 and row.mean_width <= 2.0


# ----------------------------------------------------------------------------- --energy-target


class Clock:
    def __init__(self) -> None:
        self.now = 1


class MeteredBackend(FakeBackend):
    """Decoding takes DECODE_NS a token and draws a power that varies from pass to pass (5%)."""

    def __init__(self, clock: Clock, seed: int = 3) -> None:
        super().__init__()
        self.clock, self.joules, self.watts = clock, 0.0, 10.0
        self.rng = np.random.default_rng(seed)

    def reset(self):
        super().reset()
        self.watts = 10.0 * (1 + 0.05 * self.rng.standard_normal())

    def decode_one(self, token):
        super().decode_one(token)
        self.clock.now += DECODE_NS
        self.joules += self.watts * DECODE_NS / S


class BackendCounter(EnergySource):
    cumulative = True

    def __init__(self, backend: MeteredBackend, resolution_s: float = 0.001) -> None:
        self.backend = backend
        self.provenance = Provenance("rapl:package-0", "counter", "package", True, 20.0, False, resolution_s)

    def read(self, t_ns: int) -> float:
        return self.backend.joules


def targeted_run(monkeypatch, rule, target, resolution_s=0.001):
    clock = Clock()
    monkeypatch.setattr(runner, "now_ns", lambda: clock.now)
    backend = MeteredBackend(clock)
    session = EnergySession(Choice(BackendCounter(backend, resolution_s)), ThermalSensors(), clock=lambda: clock.now)
    opts = EnergyOptions(idle_s=0, energy_target=target)
    test = make_config(n=8, t=1)
    timings, tracker = run_tracked(session, backend, test, tokens_for(backend), rule, True, opts, lambda _: None)
    return timings, row_fields("m", test, tracker, timings, opts, None)


def test_energy_target_repeats_until_the_j_per_token_interval_meets_it(monkeypatch):
    timings, fields = targeted_run(monkeypatch, AutoReps(ci_target=None, max_time_s=1e6, energy_target=0.01), 0.01)
    target = fields["energy_detail"]["target"]
    assert timings.stop_reason == "target" and target["met"] and target["stop_reason"] == "target"
    assert target["j_per_token_ci95_rel"] <= 0.01
    assert len(timings.samples_ns) > 20  # 5% per-pass variation needs ~100 passes for +-1%
    assert not any("energy-target" in w for w in fields["warnings"])


def test_energy_target_stops_short_windows_as_unresolved_and_says_why(monkeypatch):
    rule = AutoReps(ci_target=None, max_time_s=1e6, energy_target=0.01)
    timings, fields = targeted_run(monkeypatch, rule, 0.01, resolution_s=1.0)  # 160 ms windows, a 1 s meter
    assert timings.stop_reason == "energy-unresolved" and len(timings.samples_ns) == rule.min_reps
    assert fields["energy_detail"]["target"]["met"] is False
    assert any("missed the --energy-target 1.0%" in w and "energy-unresolved" in w for w in fields["warnings"])


def test_energy_target_within_the_time_cap_says_it_missed(monkeypatch):
    rule = AutoReps(ci_target=None, max_time_s=2.0, energy_target=0.001)
    timings, fields = targeted_run(monkeypatch, rule, 0.001)
    assert timings.stop_reason == "time-cap" and fields["energy_detail"]["target"]["met"] is False
    assert any("raise --max-time" in w for w in fields["warnings"])
