"""Sampled power sensors from fixtures: batteries (both sign conventions), Pi 5 PMIC, Jetson, hwmon."""

from __future__ import annotations

import pytest

from profiler.platform import sysfs
from profiler.platform.energy import battery, hwmon, jetson, pi_pmic
from profiler.platform.energy.chooser import choose
from profiler.platform.energy.integrate import window_energy_j
from profiler.platform.energy.sampler import Sampler
from support.energy_fixtures import PI5_PMIC, PI5_PMIC_W, FakeClock, recorded, redirected, write_tree

PS = "/sys/class/power_supply"


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path) as path:
        yield path


def integrate_samples(source, watts_steps, set_step, dt_s=0.2) -> float:
    """Take one sample per step (``set_step`` writes the sensor values) and integrate them all."""
    clock = FakeClock()
    sampler = Sampler(source, clock, cpu_reader=lambda: (None, None)).open()
    for step in watts_steps:
        set_step(step)
        sampler.take()
        clock.advance(dt_s)
    readings = sampler.readings
    return window_energy_j(readings, False, readings[0].t_ns, readings[-1].t_ns)


def battery_tree(root, name, current_ua, voltage_uv, status="Discharging") -> None:
    write_tree(root, {f"{PS}/{name}/type": "Battery\n", f"{PS}/{name}/status": f"{status}\n",
                      f"{PS}/{name}/current_now": current_ua, f"{PS}/{name}/voltage_now": voltage_uv})


@pytest.mark.parametrize("sign", [1, -1], ids=["kernel-positive", "android-negative"])
def test_discharging_battery_either_sign_gives_the_same_energy(root, sign):
    battery_tree(root, "battery", sign * 800_000, 3_900_000)
    found = battery.probe()
    source = found[0].source
    assert source.provenance.scope == "battery-system" and source.provenance.method == "sampled"
    assert any("negative" in n for n in source.provenance.notes) == (sign < 0)

    def set_current(ua):
        (root / "sys/class/power_supply/battery/current_now").write_text(f"{sign * ua}\n")

    # 0.8 A then 1.2 A then 1.0 A at 3.9 V, 0.2 s apart: trapezoids of 3.12->4.68->3.9 W.
    energy = integrate_samples(source, [800_000, 1_200_000, 1_000_000], set_current)
    assert energy == pytest.approx(0.2 * (3.12 + 4.68) / 2 + 0.2 * (4.68 + 3.9) / 2, abs=1e-6)
    assert round(energy * 1e6) == 1_638_000


def test_battery_in_milliamps_and_millivolts_is_normalised_and_said(root):
    battery_tree(root, "battery", -750, 3_850)  # a vendor reporting mA and mV
    source = battery.probe()[0].source
    assert source.read(0) == pytest.approx(0.75 * 3.85, abs=1e-9)
    notes = " ".join(source.provenance.notes)
    assert "read as mA" in notes and "read as mV" in notes


def test_laptop_power_now_and_two_batteries_are_summed(root):
    write_tree(root, {f"{PS}/BAT0/type": "Battery\n", f"{PS}/BAT0/status": "Discharging\n",
                      f"{PS}/BAT0/power_now": 9_500_000,
                      f"{PS}/BAT1/type": "Battery\n", f"{PS}/BAT1/status": "Discharging\n",
                      f"{PS}/BAT1/power_now": 1_250_000,
                      f"{PS}/AC/type": "Mains\n", f"{PS}/AC/online": 0})
    source = battery.probe()[0].source
    assert source.provenance.source == "battery:BAT0+BAT1"
    assert source.read(0) == pytest.approx(10.75)


def test_charging_battery_is_skipped_with_the_fix(root):
    battery_tree(root, "BAT0", 1_000_000, 12_000_000, status="Charging")
    found = battery.probe()
    assert found[0].source is None and "unplug the charger" in found[0].reason


def test_pi5_pmic_sums_rails_with_both_readings(root):
    rails = pi_pmic.parse_rails(PI5_PMIC)
    assert len(rails) == 12 and "EXT5V" not in rails and "BATT" not in rails
    assert rails["VDD_CORE"] == (0.887, 1.54489)
    sysfs.set_command_runner(recorded({pi_pmic.COMMAND: PI5_PMIC}))
    source = pi_pmic.probe()[0].source
    assert source.provenance.scope == "board-rails" and source.provenance.measured
    energy = integrate_samples(source, [None] * 6, lambda _: None)  # constant rails for 1.0 s
    assert energy == pytest.approx(PI5_PMIC_W * 1.0, abs=1e-6)
    assert round(energy * 1e6) == round(PI5_PMIC_W * 1e6)


def test_pi4_has_no_pmic_and_says_so(root):
    sysfs.set_command_runner(recorded({pi_pmic.COMMAND: 'error=1 error_msg="Command not registered"\n'}))
    found = pi_pmic.probe()
    assert found[0].source is None and "Pi 4" in found[0].reason


def test_jetson_orin_hwmon_uses_vdd_in_and_skips_sum_and_nc(root):
    base = "/sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3"
    write_tree(root, {
        f"{base}/in1_label": "VDD_IN\n", f"{base}/in1_input": 5072, f"{base}/curr1_input": 1480,
        f"{base}/in2_label": "VDD_CPU_GPU_CV\n", f"{base}/in2_input": 5064, f"{base}/curr2_input": 400,
        f"{base}/in3_label": "VDD_SOC\n", f"{base}/in3_input": 5064, f"{base}/curr3_input": 600,
        f"{base}/in7_label": "sum of shunt voltages\n", f"{base}/in7_input": 90, f"{base}/curr7_input": 9999,
    })
    found = jetson.probe()
    source = found[0].source
    assert source.provenance.source == "jetson-ina3221:VDD_IN"
    assert {c.name for c in found[1:]} == {"jetson-ina3221:VDD_CPU_GPU_CV", "jetson-ina3221:VDD_SOC"}
    assert source.read(0) == pytest.approx(5.072 * 1.480)

    def set_current(ma):
        (root / base.lstrip("/") / "curr1_input").write_text(f"{ma}\n")

    energy = integrate_samples(source, [1480, 2480], set_current, dt_s=0.1)
    assert round(energy * 1e6) == round(0.1 * (5.072 * 1.48 + 5.072 * 2.48) / 2 * 1e6)  # 200_851 µJ


def test_jetson_nano_iio_uses_pom_5v_in_and_skips_nc(root):
    base = "/sys/bus/i2c/drivers/ina3221x/6-0040/iio:device0"
    write_tree(root, {
        f"{base}/rail_name_0": "POM_5V_IN\n", f"{base}/in_power0_input": 3280,
        f"{base}/rail_name_1": "POM_5V_GPU\n", f"{base}/in_power1_input": 120,
        f"{base}/rail_name_2": "NC\n", f"{base}/in_power2_input": 777,
    })
    found = jetson.probe()
    assert found[0].source.read(0) == pytest.approx(3.28)
    assert [c.name for c in found] == ["jetson-ina3221:POM_5V_IN", "jetson-ina3221:POM_5V_GPU"]


def test_hwmon_power_sensor_and_gpu_skipped(root):
    write_tree(root, {
        "/sys/class/hwmon/hwmon0/name": "amdgpu\n", "/sys/class/hwmon/hwmon0/power1_input": 30_000_000,
        "/sys/class/hwmon/hwmon1/name": "ina219\n", "/sys/class/hwmon/hwmon1/power1_input": 4_200_000,
        "/sys/class/hwmon/hwmon1/power1_label": "VSYS\n",
        "/sys/class/hwmon/hwmon2/name": "coretemp\n", "/sys/class/hwmon/hwmon2/temp1_input": 45000,
    })
    found = hwmon.probe()
    assert found[0].status == "" and "GPU" in found[0].reason
    chosen = found[1].source
    assert chosen.provenance.source == "hwmon:ina219/power1" and chosen.read(0) == pytest.approx(4.2)


def test_hwmon_amd_energy_sums_sockets_not_cores(root):
    base = "/sys/class/hwmon/hwmon4"
    write_tree(root, {
        f"{base}/name": "amd_energy\n",
        f"{base}/energy1_label": "Ecore000\n", f"{base}/energy1_input": 1_000_000,
        f"{base}/energy2_label": "Esocket0\n", f"{base}/energy2_input": 50_000_000,
        f"{base}/energy3_label": "Esocket1\n", f"{base}/energy3_input": 60_000_000,
    })
    source = hwmon.probe()[0].source
    assert source.cumulative and source.provenance.scope == "package"
    source.open()
    source.read(0)
    write_tree(root, {f"{base}/energy1_input": 9_000_000, f"{base}/energy2_input": 51_000_001,
                      f"{base}/energy3_input": 60_500_000})
    assert round(source.read(1) * 1e6) == 1_500_001  # both sockets; the core's +8 J is inside socket 0


def test_measured_source_beats_watts_and_models(root):
    battery_tree(root, "BAT0", 1_000_000, 12_000_000)
    write_tree(root, {"/proc/stat": "cpu  1 0 1 10 0 0 0 0 0 0\ncpu0 1 0 1 10 0 0 0 0 0 0\n"})
    choice = choose(watts=20.0, cpu_model="Intel(R) Core(TM) i7-8550U", board=None)
    assert choice.source.provenance.source == "battery:BAT0"
    statuses = {c.name: c.status for c in choice.candidates}
    assert statuses["constant:--watts"] == "not used" and statuses["model:cpu-table"] == "not used"
