"""Integration over windows, attribution, per-phase figures, the idle baseline and the poller."""

from __future__ import annotations

import threading

import pytest

from profiler.measure.energy import (
    EnergyInputs,
    EnergySession,
    attribution_share,
    energy_fields,
    phase_energy,
)
from profiler.platform.energy.base import EnergySource, Provenance
from profiler.platform.energy.chooser import Choice
from profiler.platform.energy.estimate import ConstantPower
from profiler.platform.energy.integrate import trapezoid, value_at, window_energy_j
from profiler.platform.energy.sampler import Reading
from profiler.platform.poller import Poller
from profiler.platform.thermal import ThermalSensors
from support.energy_fixtures import FakeClock, tracked_row

S = 1_000_000_000  # ns per second


def prov(method="counter", system_wide=True, resolution_s=0.05, measured=True) -> Provenance:
    return Provenance("test", method, "package", measured, 20.0, system_wide, resolution_s)


class RampCounter(EnergySource):
    """A counter that gains ``watts`` joules per second of the clock it is read at."""

    cumulative = True

    def __init__(self, watts: float):
        self.watts = watts
        self.provenance = prov()
        self._t0 = None

    def open(self) -> None:
        self._t0 = None

    def read(self, t_ns: int) -> float:
        self._t0 = self._t0 if self._t0 is not None else t_ns
        return self.watts * (t_ns - self._t0) / S


def test_trapezoid_cuts_segments_at_the_window_edges():
    ts, ws = [0, 1 * S, 2 * S], [10.0, 20.0, 10.0]
    assert trapezoid(ts, ws, 0, 2 * S) == pytest.approx(30.0)
    # 0.5..1.5 s: power 15 -> 20 -> 15 W, two half-second trapezoids.
    assert trapezoid(ts, ws, S // 2, 3 * S // 2) == pytest.approx(0.5 * 17.5 * 2)


def test_counter_is_interpolated_inside_a_read_interval():
    readings = [Reading(0, 0.0, None, None), Reading(S, 5.0, None, None), Reading(2 * S, 7.0, None, None)]
    assert value_at([r.t_ns for r in readings], [r.value for r in readings], S // 4) == pytest.approx(1.25)
    assert window_energy_j(readings, True, S // 2, 3 * S // 2) == pytest.approx(2.5 + 1.0)


def cpu_readings() -> list[Reading]:
    # Counter at 10 W; the process uses 0.3 of the 0.6 busy CPU-seconds each second.
    return [Reading(i * S, 10.0 * i, 0.3 * i, 0.6 * i) for i in range(5)]


def test_share_is_process_over_busy_cpu_time_in_the_windows():
    share, basis = attribution_share(cpu_readings(), [("prefill", S, 2 * S), ("decode", 2 * S, 4 * S)])
    assert share == pytest.approx(0.5) and basis == "timed windows"


def test_share_with_too_few_ticks_is_not_attributed():
    readings = [Reading(0, 0.0, 1.0, 5.0), Reading(S, 1.0, 1.0, 5.01)]
    share, basis = attribution_share(readings, [("decode", 0, S)])
    assert share is None and "not attributed" in basis


def test_phase_energy_gross_net_attributed_and_resolution():
    windows = [("prefill", S, 2 * S), ("prefill", 3 * S, 3 * S + S // 100)]  # 1 s and 10 ms
    phase = phase_energy(cpu_readings(), True, windows, tokens_per_window=64, idle_w=4.0, share=0.5,
                         resolution_s=0.1)
    assert phase.domain_j == pytest.approx(10.1)  # 10 W over 1.01 s
    assert phase.domain_net_j == pytest.approx(10.1 - 4.0 * 1.01)
    assert phase.energy_j == pytest.approx(5.05) and phase.net_j == pytest.approx((10.1 - 4.04) / 2)
    assert phase.tokens == 128 and phase.j_per_token == pytest.approx(5.05 / 128)
    assert phase.resolved is True  # mean window 505 ms >= 2 x 100 ms
    short = phase_energy(cpu_readings(), True, windows[1:], 64, 4.0, 0.5, resolution_s=0.1)
    assert short.resolved is False


def test_energy_fields_to_the_microjoule_with_provenance():
    # RAPL-like counter (µJ-exact values) read every 50 ms; prefill 0.1..0.2 s, decode 0.2..0.4 s.
    values = [0, 250_000, 1_000_000, 1_500_000, 2_100_000, 2_600_000, 3_050_000, 3_400_000, 3_999_999]
    readings = [Reading(i * S // 20, v / 1e6, 0.01 * i, 0.01 * i) for i, v in enumerate(values)]
    inputs = EnergyInputs(readings, prov(), True, [("prefill", S // 10, 2 * S // 10), ("decode", 2 * S // 10, 4 * S // 10)],
                          n_prompt=100, n_gen=4, idle_w=2.0, idle_reason=None, interval_s=0.05)
    fields, warnings = energy_fields(inputs, "m pp100+tg4")
    assert round(fields["energy_prefill_j"] * 1e6) == 2_100_000 - 1_000_000
    assert round(fields["energy_decode_j"] * 1e6) == 3_999_999 - 2_100_000
    assert round(fields["energy_prefill_net_j"] * 1e6) == 1_100_000 - 200_000
    assert fields["j_per_prefill_token"] == pytest.approx(0.011) and fields["j_per_decode_token"] == pytest.approx(1.899999 / 4)
    assert fields["tokens_per_j"] == pytest.approx(104 / 2.999999)
    assert fields["energy_method"] == "counter" and fields["energy_measured"] is True
    assert fields["energy_attributed"] is True and fields["energy_detail"]["attribution"]["share"] == pytest.approx(1.0)
    assert fields["energy_detail"]["samples"]["value"][-1] == pytest.approx(3.999999)
    assert warnings == []  # 100 ms and 200 ms windows are resolved at 2 x 50 ms


def test_short_phase_is_flagged_not_reported_as_precise():
    readings = [Reading(0, 0.0, None, None), Reading(S // 10, 1.0, None, None)]
    inputs = EnergyInputs(readings, prov(resolution_s=0.1), True, [("decode", S // 100, S // 50)], 0, 16,
                          None, "skipped", 0.1)
    fields, warnings = energy_fields(inputs, "m tg16")
    assert fields["energy_detail"]["phases"]["decode"]["resolved"] is False
    assert fields["energy_attributed"] is False
    assert any("not resolved" in w for w in warnings)


def test_no_source_means_unavailable_with_a_reason_not_zero():
    session = EnergySession(Choice(None, [], "no energy source: everything skipped"), ThermalSensors())
    with session.track() as tracker:
        pass
    row = tracked_row(tracker, [("prefill", 0, 1)], "m pp8", n_prompt=8, n_gen=0)
    assert row.energy_unavailable.startswith("no energy source")
    assert not hasattr(row, "energy_prefill_j") or row.energy_prefill_j is None


def test_idle_baseline_from_a_counter_with_a_fake_clock():
    clock = FakeClock()
    session = EnergySession(Choice(RampCounter(3.25)), ThermalSensors(), clock=clock)
    idle = session.measure_idle(5.0, sleep=lambda s: clock.advance(s))
    assert idle.power_w == pytest.approx(3.25) and idle.duration_s == pytest.approx(5.0)


def test_idle_baseline_is_unavailable_for_a_constant_and_when_skipped():
    session = EnergySession(Choice(ConstantPower(12.0)), ThermalSensors())
    assert session.measure_idle(5.0, sleep=lambda s: None).reason.startswith("a constant --watts")
    session = EnergySession(Choice(RampCounter(1.0)), ThermalSensors())
    idle = session.measure_idle(0)
    assert idle.power_w is None and "--idle 0" in idle.reason


def test_background_poller_records_every_value_in_order():
    """A real thread: assert on the values it stored, not on how fast it ran."""
    counter = iter(range(10**6))
    enough = threading.Event()

    def read(t_ns):
        value = next(counter)
        if value >= 5:
            enough.set()
        return (t_ns, value)

    poller = Poller(read, interval_s=0.001)
    poller.start()
    assert enough.wait(timeout=30)
    samples = poller.stop()
    values = [v for _, v in samples]
    assert values == list(range(len(values))) and len(values) >= 6
    assert [t for t, _ in samples] == sorted(t for t, _ in samples)


def test_poller_survives_a_failing_reader():
    calls = iter([1, None, ValueError("sensor gone"), 4])

    def read(t_ns):
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    poller = Poller(read, interval_s=1.0, clock=FakeClock())
    for _ in range(4):
        poller.take()
    assert poller.samples == [1, 4] and poller.missed == 2
    # both failures are on record, each with what happened
    assert poller.stats.read_errors == 2 and poller.errors == ["the reader returned no value", "ValueError: sensor gone"]


def test_back_to_back_short_windows_are_resolved_but_scattered_ones_are_not():
    readings = [Reading(i * S // 10, float(i), None, None) for i in range(40)]
    chunks = [("decode", i * S // 100, (i + 1) * S // 100 - S // 1000) for i in range(100)]  # 9 ms each
    together = phase_energy(readings, True, chunks, 8, None, None, resolution_s=0.1)
    assert together.resolved is True and together.domain_j == pytest.approx(0.9 * 10.0)
    scattered = phase_energy(readings, True, chunks[::10], 8, None, None, resolution_s=0.1)
    assert scattered.resolved is False


def test_process_below_one_tick_is_not_attributed_instead_of_a_zero_share():
    # Others kept the machine busy (1 s of busy CPU) while /proc saw no tick of ours.
    readings = [Reading(0, 0.0, 2.0, 10.0), Reading(S, 5.0, 2.0, 11.0)]
    share, basis = attribution_share(readings, [("prefill", 0, S // 1000)])
    assert share is None and "this process used under 20 ms" in basis
    fields, _ = energy_fields(EnergyInputs(readings, prov(), True, [("prefill", 0, S // 1000)], 64, 0, None,
                                           "skipped", 0.1), "m pp64")
    assert fields["energy_prefill_j"] > 0 and fields["energy_attributed"] is False


def test_net_energy_and_power_by_hand_with_a_half_share():
    """Issue #19.11: net = (E_domain - P_idle * t) * share, as docs/energy.md states; process power is
    the attributed energy over the windows' time, device power the domain's (10 W here)."""
    windows = [("prefill", S, 2 * S), ("decode", 2 * S, 4 * S)]  # 1 s and 2 s of a 10 W counter
    fields, _ = energy_fields(EnergyInputs(cpu_readings(), prov(), True, windows, n_prompt=64, n_gen=16, idle_w=4.0,
                                           idle_reason=None, interval_s=None), "m pp64+tg16")
    assert fields["energy_detail"]["attribution"]["share"] == pytest.approx(0.5)  # 0.3 of 0.6 busy CPU-s
    assert (fields["energy_prefill_j"], fields["energy_decode_j"]) == (pytest.approx(5.0), pytest.approx(10.0))
    # (10 J - 4 W x 1 s) x 0.5 and (20 J - 4 W x 2 s) x 0.5; E_proc - P_idle * t would give 1 and 2
    assert (fields["energy_prefill_net_j"], fields["energy_decode_net_j"]) == (pytest.approx(3.0), pytest.approx(6.0))
    assert fields["process_power_w"] == pytest.approx(15.0 / 3) and fields["device_power_w"] == pytest.approx(30.0 / 3)
    assert "avg_power_w" not in fields
