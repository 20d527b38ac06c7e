"""The meter's update period is measured, not assumed (issue #19.9).

A fuel gauge that refreshes every 5 s, read at 2 Hz: the idle baseline sees its value change
every 5 s and records it; a 3 s decode window integrates one or two stale values and must be
marked unresolved, with no interval. Before, the battery's refresh was taken as 1 s and such a
window passed as resolved. hwmon's ``power1_average_interval`` is read too.
"""

from __future__ import annotations

import math

import pytest

from profiler.measure.energy import EnergyInputs, EnergySession, energy_fields
from profiler.platform.energy import Sampler, battery, hwmon
from profiler.platform.energy.chooser import Choice
from profiler.platform.energy.meter import observe
from profiler.platform.thermal import ThermalSensors
from support.energy_fixtures import FakeClock, laptop_fan_battery, redirected, set_value, vm_tree, write_tree

S = 1_000_000_000
BAT = "/sys/class/power_supply/BAT0/power_now"


class Gauge:
    """A fuel gauge in a fixture tree: it shows the true power only at its refresh instants."""

    def __init__(self, root, clock: FakeClock, period_s: float, watts) -> None:
        self.root, self.clock, self.period_s, self.watts = root, clock, period_s, watts
        self.start = clock()
        self.refresh()

    def refresh(self) -> None:
        t = (self.clock() - self.start) / S
        last = math.floor(t / self.period_s + 1e-9) * self.period_s  # the latest refresh instant
        set_value(self.root, BAT, round(self.watts(last) * 1e6))

    def sleep(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.refresh()


def idle_watts(t: float) -> float:
    return 6.0 + 0.05 * math.sin(7 * t)  # a fluctuating idle draw: every refresh shows a new value


def gauge_run(tmp_path, period_s: float, window_s: float):
    """Idle 20 s, then four decode windows of window_s at ~12 W, read at 2 Hz; the row's fields."""
    with redirected(laptop_fan_battery(tmp_path)):
        (candidate,) = [c for c in battery.probe() if c.source is not None]
        clock = FakeClock()
        gauge = Gauge(tmp_path, clock, period_s, idle_watts)
        session = EnergySession(Choice(candidate.source), ThermalSensors(), clock=clock)
        idle = session.measure_idle(20.0, sleep=gauge.sleep)
        gauge.watts = lambda t: 12.0 + 0.1 * math.sin(3 * t) if t >= 20.0 else idle_watts(t)
        sampler = Sampler(candidate.source, clock).open()
        sampler.take()
        windows = []
        for _ in range(4):
            gauge.sleep(0.1)
            start = clock()
            for _ in range(round(window_s / 0.5)):
                gauge.sleep(0.5)
                sampler.take()
            windows.append(("decode", start, clock()))
        gauge.sleep(0.5)
        sampler.take()
    inputs = EnergyInputs(sampler.readings, candidate.source.provenance, False, windows, 0, 16, idle.power_w,
                          None, sampler.interval_s, meter=idle.meter)
    return idle, *energy_fields(inputs, "m tg16")


def test_a_slow_fuel_gauge_is_measured_while_idle_and_a_short_window_is_unresolved(tmp_path):
    idle, fields, warnings = gauge_run(tmp_path, period_s=5.0, window_s=3.0)
    assert idle.meter.bound == "measured" and idle.meter.update_s == pytest.approx(5.0, abs=0.5)
    sampling = fields["energy_detail"]["sampling"]
    assert sampling["meter_update_s"] == pytest.approx(5.0, abs=0.5)
    decode = fields["energy_detail"]["phases"]["decode"]
    # 3 s windows hold one or two refreshes of a 5 s gauge: before, the assumed 1 s made them "resolved"
    assert decode["resolved"] is False
    assert decode["j_per_token_ci95_j"] is None and "resolves" in decode["interval"]["unavailable"]
    assert any("update period" in w and "not resolved" in w for w in warnings)


def test_a_fast_gauge_resolves_the_same_windows_and_gives_an_interval(tmp_path):
    idle, fields, _ = gauge_run(tmp_path, period_s=0.5, window_s=3.0)
    assert idle.meter.bound == "at most" and idle.meter.stale_s == 0.0
    decode = fields["energy_detail"]["phases"]["decode"]
    assert decode["resolved"] is True and decode["j_per_token_ci95_rel"] is not None


def test_a_gauge_that_never_changes_while_idle_holds_windows_to_the_idle_span(tmp_path):
    idle, fields, _ = gauge_run(tmp_path, period_s=60.0, window_s=3.0)
    assert idle.meter.bound == "at least" and idle.meter.update_s == pytest.approx(20.0, abs=0.6)
    assert fields["energy_detail"]["phases"]["decode"]["resolved"] is False


def test_hwmon_power_average_interval_is_read_and_holds_the_windows(tmp_path):
    vm_tree(tmp_path)
    write_tree(tmp_path, {"/sys/class/hwmon/hwmon4/name": "power_meter\n",
                          "/sys/class/hwmon/hwmon4/power1_average": 48_000_000,
                          "/sys/class/hwmon/hwmon4/power1_average_interval": 2000})
    with redirected(tmp_path):
        (source,) = [c.source for c in hwmon.probe() if c.source is not None]
    assert source.declared_update_s == 2.0 and any("averages over 2 s" in n for n in source.provenance.notes)
    # values that change at every 0.1 s read: the declared 2 s averaging still holds the windows
    ts = [i * S // 10 for i in range(50)]
    found = observe(ts, [48.0 + 0.01 * i for i in range(50)], 0.1, declared_s=source.declared_update_s)
    assert (found.bound, found.stale_s) == ("declared", 2.0)


def test_the_measured_period_reaches_the_measuring_child(tmp_path):
    """Each model runs in a child process that gets the parent's idle baseline as a dict."""
    from profiler.measure.energy import IdleBaseline

    idle, *_ = gauge_run(tmp_path, period_s=5.0, window_s=3.0)
    assert IdleBaseline.from_dict(idle.to_dict()).meter == idle.meter and idle.meter.stale_s > 4
