"""No silent zeros, visible failures and visible attribution (issue #10, items 2, 3 and 11).

A counter that did not advance, or a window that readings do not bracket, is "unavailable"
with the reason, never 0.0 J with ``measured: true``; read errors and missed samples are
counted in the row and warned about past 5%; a figure that could not be split by CPU time
says "system-wide"; scores never rank an unavailable (or stored zero) energy as the best.
"""

from __future__ import annotations

import threading
import time

import pytest

from profiler.analysis import accuracy as acc
from profiler.analysis import scoring
from profiler.measure import runner
from profiler.measure.energy import EnergyInputs, EnergySession, energy_fields
from profiler.platform.energy.base import EnergySource, Provenance
from profiler.platform.energy.chooser import Choice
from profiler.platform.energy.sampler import Reading
from profiler.platform.poller import Poller
from profiler.platform.thermal import ThermalSensors
from profiler.report.energy_text import energy_cell
from support.energy_fixtures import FakeClock, redirected, tracked_row, vm_tree, write_tree
from support.runs import stored_energy_rows
from support.tests_support import make_row

S = 1_000_000_000


def prov(method="counter", system_wide=False) -> Provenance:
    return Provenance("rapl:package-0", method, "package", True, 20.0, system_wide, 0.001)


def inputs(readings, windows, method="counter", **kw) -> EnergyInputs:
    return EnergyInputs(readings, prov(method), method == "counter", windows, n_prompt=64, n_gen=16,
                        idle_w=None, idle_reason="skipped", interval_s=None, **kw)


def test_a_counter_that_did_not_advance_is_unavailable_not_zero():
    readings = [Reading(i * S // 10, 5.0, None, None) for i in range(5)]  # stuck at 5 J
    fields, warnings = energy_fields(inputs(readings, [("decode", S // 10, 3 * S // 10)]), "m tg16")
    assert fields["energy_unavailable"] and "did not advance" in fields["energy_unavailable"]
    assert fields.get("energy_decode_j") is None and fields.get("j_per_decode_token") is None
    assert fields.get("energy_measured") is None  # no "measured: true" next to a missing figure
    assert any("energy unavailable" in w for w in warnings)


def test_a_power_sensor_reading_zero_watts_is_unavailable():
    readings = [Reading(i * S // 10, 0.0, None, None) for i in range(5)]
    fields, _ = energy_fields(inputs(readings, [("decode", S // 10, 3 * S // 10)], "sampled"), "m tg16")
    assert "0 W" in fields["energy_unavailable"] and fields.get("j_per_decode_token") is None


def test_a_single_reading_is_unavailable_with_the_count():
    fields, _ = energy_fields(inputs([Reading(0, 1.0, None, None)], [("decode", 0, S)]), "m tg16")
    assert "gave 1 reading(s)" in fields["energy_unavailable"] and fields.get("energy_decode_j") is None


def test_a_window_the_readings_do_not_bracket_is_unavailable_for_that_phase_only():
    # readings from 0 to 1 s; prefill inside, decode after the last reading (the sensor stopped)
    readings = [Reading(i * S // 4, i * 2.0, None, None) for i in range(5)]
    fields, warnings = energy_fields(inputs(readings, [("prefill", S // 4, S // 2), ("decode", 2 * S, 3 * S)]), "m")
    assert fields["energy_unavailable"] is None and fields["energy_prefill_j"] == pytest.approx(2.0)
    assert fields["energy_decode_j"] is None and fields["j_per_decode_token"] is None
    decode = fields["energy_detail"]["phases"]["decode"]
    assert "do not bracket" in decode["unavailable"] and decode["energy_j"] is None
    assert any("decode energy unavailable" in w for w in warnings)


def test_a_counter_read_further_apart_than_its_wrap_allows_is_unavailable():
    readings = [Reading(0, 0.0, None, None), Reading(400 * S, 900.0, None, None)]
    fields, _ = energy_fields(inputs(readings, [("decode", S, 300 * S)], max_gap_s=100.0), "m")
    assert "wrap may have been missed" in fields["energy_unavailable"]


class FlakyCounter(EnergySource):
    """A 10 W counter on a fake clock whose reads fail when told to."""

    cumulative = True

    def __init__(self, clock: FakeClock):
        self.clock, self.fail = clock, False
        self.provenance = prov()

    def read(self, t_ns: int) -> float | None:
        if self.fail:
            raise OSError(5, "Input/output error")
        return 10.0 * t_ns / S


def test_counters_are_read_at_window_edges_and_failures_land_in_the_row():
    clock = FakeClock(0)
    source = FlakyCounter(clock)
    session = EnergySession(Choice(source), ThermalSensors(), clock=clock)
    windows = []
    with session.track() as tracker:
        assert tracker.sampler.poller._thread is None  # no sampling thread for a counter
        for rep in range(10):
            clock.advance(0.05)
            runner.at_window_edge()  # what run_repetition calls before the window ...
            start = clock.advance(0.01)
            source.fail = rep % 3 == 0  # a third of the closing reads fail
            end = clock.advance(0.5)
            runner.at_window_edge()  # ... and after it
            source.fail = False
            windows.append(("decode", start, end))
    row = tracked_row(tracker, windows, "m tg16", n_prompt=0)
    assert row.energy_sampling.startswith("window edges") and row.energy_rate_hz is None
    assert row.energy_read_errors == 4 and row.energy_samples_missed == 4 and row.energy_samples == 18
    assert row.energy_detail["sampling"]["errors"] == ["OSError: [Errno 5] Input/output error"]
    assert any("4 of 22 energy samples missed" in w for w in row.warnings)
    # the failed reads are interpolated over, not zeros: 10 W over 10 x 0.5 s
    assert row.energy_decode_j == pytest.approx(50.0, rel=1e-6)


def test_a_clean_series_has_zero_counts_and_no_warning():
    clock = FakeClock(0)
    session = EnergySession(Choice(FlakyCounter(clock)), ThermalSensors(), clock=clock)
    with session.track() as tracker:
        runner.at_window_edge()
        start = clock.advance(0.01)
        end = clock.advance(1.0)
        runner.at_window_edge()
    row = tracked_row(tracker, [("decode", start, end)], "m", n_prompt=0)
    assert (row.energy_read_errors, row.energy_samples_missed) == (0, 0)
    assert not any("missed" in w for w in row.warnings)
    assert runner.window_edge.get() is None  # the hook is gone once the test is over


def test_the_poller_counts_slots_it_woke_too_late_for():
    release = threading.Event()

    def slow_read(t_ns):
        time.sleep(0.05)  # five periods of 10 ms: at least four slots go by unserved
        release.set()
        return t_ns

    poller = Poller(slow_read, interval_s=0.01)
    poller.start()
    assert release.wait(30)
    while poller.stats.taken < 3:
        time.sleep(0.01)
    poller.stop()
    assert poller.stats.late_slots >= 4 and poller.stats.missed == poller.stats.late_slots
    assert poller.stats.expected == poller.stats.taken + poller.stats.missed


def test_a_thermal_sensor_that_fails_mid_test_is_counted(tmp_path):
    with redirected(tmp_path):
        write_tree(tmp_path, {"/sys/class/thermal/thermal_zone0/temp": 45000,
                              "/sys/class/thermal/thermal_zone0/type": "x86_pkg_temp\n"})
        sensors = ThermalSensors.discover()
        good = sensors.read(0)
        (tmp_path / "sys/class/thermal/thermal_zone0/temp").unlink()
        bad = sensors.read(1)
    assert good.read_errors == 0 and bad.read_errors == 1 and bad.temps_c == {}


def test_an_unattributed_system_wide_figure_says_system_wide(tmp_path):
    # CPU times that do not move: no share can be computed
    readings = [Reading(i * S // 10, i * 1.0, 3.0, 7.0) for i in range(11)]
    inp = EnergyInputs(readings, prov(system_wide=True), True, [("decode", S // 10, 9 * S // 10)], 0, 16,
                       None, "skipped", None)
    fields, warnings = energy_fields(inp, "m tg16")
    assert fields["energy_attributed"] is False and fields["energy_attribution"] == "system-wide"
    assert any("whole machine's (system-wide)" in w for w in warnings)
    assert energy_cell(make_row(**{**fields, "n_gen": 16})).endswith("system-wide")
    shared = [Reading(i * S // 10, i * 1.0, 0.05 * i, 0.1 * i) for i in range(11)]
    fields, _ = energy_fields(EnergyInputs(shared, prov(system_wide=True), True, [("decode", S // 10, 9 * S // 10)],
                                           0, 16, None, "skipped", None), "m tg16")
    assert fields["energy_attribution"] == "process-share" and "system-wide" not in energy_cell(make_row(**fields))


def test_a_stored_zero_joules_is_never_the_best_energy():
    zero = scoring.configurations(stored_energy_rows("zero", 0.0))[0]
    real = scoring.configurations(stored_energy_rows("real", 0.02))[0]
    assert zero.j_per_decode_token is None and "0" in zero.energy_note
    published = acc.AccuracyScore(metric="hellaswag", value_pct=40.0, provenance="published", n_shot=0, source="card")
    board = scoring.scoreboard([scoring.score(c, "hellaswag", published, 0.3) for c in (zero, real)], 0.3)
    assert "J/token" not in board.objectives_used
    assert [s.on_frontier for s in board.scores] == [True, True]  # neither dominates on a missing energy
    rec = scoring.recommend(board, max_j_per_token=1.0)
    assert rec.best.config.model_name == "real" and dict(rec.excluded)["zero t2"] == "energy unavailable"


def test_no_energy_flag_reads_nothing(tmp_path):
    with redirected(vm_tree(tmp_path)):
        session = EnergySession.open(track=False)
    assert session.choice.source is None and session.sensors.empty
    assert "--no-energy" in session.choice.unavailable_reason



class StuckCounter(EnergySource):
    cumulative = True

    def __init__(self):
        self.provenance = prov()

    def read(self, t_ns: int) -> float:
        return 3.0


def test_an_idle_baseline_from_a_stuck_counter_is_unavailable_not_zero_watts():
    clock = FakeClock()
    session = EnergySession(Choice(StuckCounter()), ThermalSensors(), clock=clock)
    idle = session.measure_idle(2.0, sleep=lambda s: clock.advance(s))
    assert idle.power_w is None and "no energy while idle" in idle.reason


def test_a_broken_thermal_zone_is_shown_as_not_used_with_why(tmp_path):
    with redirected(tmp_path):
        write_tree(tmp_path, {"/sys/class/thermal/thermal_zone0/temp": 45000,
                              "/sys/class/thermal/thermal_zone0/type": "x86_pkg_temp\n",
                              "/sys/class/thermal/thermal_zone1/temp": -273000,
                              "/sys/class/thermal/thermal_zone1/type": "broken\n"})
        described = ThermalSensors.discover().describe()
    assert described["temperatures"] == ["thermal_zone0:x86_pkg_temp"]
    assert "outside -40..150" in described["rejected"]["thermal_zone1:broken"]
