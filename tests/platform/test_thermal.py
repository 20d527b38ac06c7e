"""Thermal zones, hwmon temperatures, cpufreq, Intel throttle counters and Pi get_throttled."""

from __future__ import annotations

import pytest

from profiler.platform import sysfs, thermal
from profiler.platform.thermal import ThermalReading, ThermalSensors, decode_throttled, parse_get_throttled
from support.energy_fixtures import FakeClock, recorded, redirected, write_tree

CPU = "/sys/devices/system/cpu"
GET_THROTTLED = ("vcgencmd", "get_throttled")


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path) as path:
        yield path


def laptop_tree(root) -> None:
    write_tree(root, {
        "/sys/class/thermal/thermal_zone0/type": "x86_pkg_temp\n", "/sys/class/thermal/thermal_zone0/temp": 61000,
        "/sys/class/thermal/thermal_zone1/type": "broken\n", "/sys/class/thermal/thermal_zone1/temp": -273000,
        "/sys/class/hwmon/hwmon1/name": "nvme\n", "/sys/class/hwmon/hwmon1/temp1_input": 38850,
        "/sys/class/hwmon/hwmon1/temp1_label": "Composite\n",
        f"{CPU}/cpu0/cpufreq/scaling_cur_freq": 2_400_000, f"{CPU}/cpu0/cpufreq/cpuinfo_max_freq": 4_800_000,
        f"{CPU}/cpu1/cpufreq/scaling_cur_freq": 3_600_000, f"{CPU}/cpu1/cpufreq/cpuinfo_max_freq": 4_800_000,
        f"{CPU}/cpu0/thermal_throttle/core_throttle_count": 3,
        f"{CPU}/cpu0/thermal_throttle/package_throttle_count": 10,
    })


def test_reads_zones_hwmon_and_cpufreq_and_drops_broken_zones(root):
    laptop_tree(root)
    sensors = ThermalSensors.discover()
    assert set(sensors.temp_files) == {"thermal_zone0:x86_pkg_temp", "nvme:Composite"}
    reading = sensors.read(0)
    assert reading.temp_max_c == pytest.approx(61.0) and reading.temps_c["nvme:Composite"] == pytest.approx(38.85)
    assert reading.freq_ratio == pytest.approx(0.625) and reading.freq_mhz == pytest.approx(3000)
    assert reading.throttle_count == 13


def test_intel_throttle_counters_rising_flag_the_test(root):
    laptop_tree(root)
    sensors = ThermalSensors.discover()
    first = sensors.read(1)
    write_tree(root, {f"{CPU}/cpu0/thermal_throttle/package_throttle_count": 14})
    later = sensors.read(2)
    summary = thermal.summarize([first, later], sensors.has_throttle_indicator)
    assert summary.throttled is True and summary.onset_ns == 2
    assert summary.reasons == ["CPU thermal_throttle events +4"]
    calm = thermal.summarize([first, first], sensors.has_throttle_indicator)
    assert calm.throttled is False


@pytest.mark.parametrize(("text", "now", "occurred"), [
    ("throttled=0x0\n", [], []),
    ("throttled=0x50000\n", [], ["under-voltage has occurred", "throttled has occurred"]),
    ("throttled=0x50005\n", ["under-voltage", "throttled"], ["under-voltage has occurred", "throttled has occurred"]),
    ("throttled=0x80008\n", ["soft temperature limit"], ["soft temperature limit has occurred"]),
    ("throttled=0x20002\n", ["frequency capped"], ["frequency capped has occurred"]),
])
def test_pi4_get_throttled_bits_are_decoded(text, now, occurred):
    bits = parse_get_throttled(text)
    assert decode_throttled(bits) == {"now": now, "occurred": occurred}


def test_pi_throttling_during_a_test_is_flagged_with_its_onset(root):
    write_tree(root, {"/sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
                      "/sys/class/thermal/thermal_zone0/temp": 79500})
    outputs = iter(["throttled=0x50000\n"] * 3 + ["throttled=0x60004\n"] * 2)
    sysfs.set_command_runner(lambda argv: next(outputs) if tuple(argv) == GET_THROTTLED else None)
    sensors = ThermalSensors.discover()  # consumes the first recorded output
    assert sensors.pi_throttle
    readings = [sensors.read(t) for t in (10, 20, 30, 40)]
    summary = thermal.summarize(readings, sensors.has_throttle_indicator)
    # 0x50000 at the start: old "has occurred" bits do not count; 0x60004 (throttled now) does.
    assert summary.throttled is True and summary.onset_ns == 30
    assert summary.reasons == ["throttled", "frequency capped has occurred"]


def test_a_vm_has_no_indicator_so_throttled_is_unknown_not_false(root):
    sensors = ThermalSensors.discover()
    summary = thermal.summarize([sensors.read(0), sensors.read(1)], sensors.has_throttle_indicator)
    assert summary.throttled is None and summary.temp_max_c is None
    assert any("no thermal zones" in m for m in sensors.describe()["missing"])


def test_sustained_frequency_drop_marks_the_onset():
    readings = [ThermalReading(t, {"cpu": 60.0 + t}, ratio, None, None, None)
                for t, ratio in enumerate([1.0] * 10 + [0.95] * 5 + [0.8] * 5)]
    summary = thermal.summarize(readings, has_indicator=False, use_freq_drop=True)
    assert summary.onset_ns == 15 and "cpufreq" in summary.onset_basis
    assert summary.throttled is None and summary.temp_max_c == pytest.approx(79.0)


def test_cooldown_waits_until_the_hottest_zone_is_below_target(root):
    write_tree(root, {"/sys/class/thermal/thermal_zone0/type": "soc\n",
                      "/sys/class/thermal/thermal_zone0/temp": 71000})
    sensors = ThermalSensors.discover()
    clock, temps = FakeClock(0), iter([66000, 58000, 49000])

    def sleep(seconds):
        clock.advance(seconds)
        write_tree(root, {"/sys/class/thermal/thermal_zone0/temp": next(temps)})

    result = thermal.wait_for_cooldown(sensors, 50.0, poll_s=2.0, sleep=sleep, clock=lambda: clock.t_ns / 1e9)
    assert result["reached"] and result["start_c"] == 71.0 and result["end_c"] == 49.0
    assert result["waited_s"] == pytest.approx(6.0)


def test_cooldown_gives_up_at_the_timeout(root):
    write_tree(root, {"/sys/class/thermal/thermal_zone0/type": "soc\n",
                      "/sys/class/thermal/thermal_zone0/temp": 90000})
    clock = FakeClock(0)
    result = thermal.wait_for_cooldown(ThermalSensors.discover(), 50.0, timeout_s=10, poll_s=1.0,
                                       sleep=clock.advance, clock=lambda: clock.t_ns / 1e9)
    assert result["reached"] is False and result["waited_s"] == pytest.approx(10.0)


def test_recorded_runner_is_used_for_get_throttled(root):
    sysfs.set_command_runner(recorded({GET_THROTTLED: "throttled=0x0\n"}))
    assert ThermalSensors.discover().has_throttle_indicator


def test_delay_only_between_tests_and_cooldown_before_each(root):
    from profiler.measure.energy import EnergySession
    from profiler.measure.session import EnergyOptions, pause
    from profiler.platform.energy.chooser import Choice

    write_tree(root, {"/sys/class/thermal/thermal_zone0/type": "soc\n",
                      "/sys/class/thermal/thermal_zone0/temp": 40000})
    session = EnergySession(Choice(None, [], "none"), ThermalSensors.discover())
    slept: list[float] = []
    opts = EnergyOptions(delay_s=3.0, cooldown_to_c=50.0)
    first = pause(session, opts, first=True, sleep=slept.append)
    later = pause(session, opts, first=False, sleep=slept.append)
    assert slept == [3.0]  # no delay before the first test, none for cooling at 40 °C
    assert first["reached"] and later["start_c"] == 40.0
    assert pause(session, EnergyOptions(delay_s=2.0), first=False, sleep=slept.append) is None
    assert slept == [3.0, 2.0]


def eight_cores(root, busy_ticks: dict[int, int], cur_khz: dict[int, int]) -> None:
    """An 8-CPU tree: each CPU's clock and its /proc/stat busy ticks (user column)."""
    lines = ["cpu  0 0 0 0 0 0 0 0 0 0"] + [f"cpu{i} {busy_ticks.get(i, 0)} 0 0 1000 0 0 0 0 0 0" for i in range(8)]
    write_tree(root, {"/proc/stat": "\n".join(lines) + "\n",
                      **{f"{CPU}/cpu{i}/cpufreq/scaling_cur_freq": cur_khz.get(i, 800_000) for i in range(8)},
                      **{f"{CPU}/cpu{i}/cpufreq/cpuinfo_max_freq": 4_000_000 for i in range(8)}})


def test_the_clock_is_the_busy_cpus_not_a_mean_with_idle_ones(root):
    """Issue #19.11: one busy thread at full clock on 8 cores read 0.3 (7 idle cores parked at 0.2)."""
    eight_cores(root, {}, {3: 4_000_000})
    sensors = ThermalSensors.discover()
    first = sensors.read(1)
    assert first.freq_ratio == pytest.approx((1.0 + 7 * 0.2) / 8)  # the mean as read, idle CPUs included
    eight_cores(root, {3: 200, 5: 0}, {3: 4_000_000})
    readings = thermal.on_busy_cpus([first, sensors.read(2)], allowed=set(range(8)))
    assert [r.freq_ratio for r in readings] == [pytest.approx(1.0)] * 2
    assert readings[1].freq_mhz == pytest.approx(4000.0)
    summary = thermal.summarize(readings, sensors.has_throttle_indicator)
    assert summary.freq_ratio == pytest.approx(1.0) and summary.freq_ratio_min == pytest.approx(1.0)
    assert summary.freq_basis.startswith("weighted by each CPU's busy time in the test, over CPUs 0-7")
    assert "cpu3 2.00 s" in summary.freq_basis


def test_busy_time_weights_the_clocks_within_the_affinity(root):
    eight_cores(root, {}, {0: 4_000_000, 1: 2_000_000, 6: 4_000_000})
    sensors = ThermalSensors.discover()
    first = sensors.read(1)
    # cpu0 busy 3 s at 1.0, cpu1 busy 1 s at 0.5; cpu6 is busy too but outside the process's affinity
    eight_cores(root, {0: 300, 1: 100, 6: 500}, {0: 4_000_000, 1: 2_000_000, 6: 4_000_000})
    readings = thermal.on_busy_cpus([first, sensors.read(2)], allowed={0, 1, 2, 3})
    assert readings[1].freq_ratio == pytest.approx((3 * 1.0 + 1 * 0.5) / 4)
    assert "CPUs 0-3 (the process's affinity)" in readings[1].freq_basis


def test_without_per_cpu_busy_time_the_mean_is_over_the_affinity(root):
    eight_cores(root, {}, {0: 4_000_000, 1: 2_000_000})
    sensors = ThermalSensors.discover()
    readings = thermal.on_busy_cpus([sensors.read(1)], allowed={0, 1})  # one reading: no busy time over the test
    assert readings[0].freq_ratio == pytest.approx(0.75)
    assert readings[0].freq_basis.startswith("mean over CPUs 0-1 (the process's affinity): no per-CPU busy time")
