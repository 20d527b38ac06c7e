"""Android phones under Termux (issue #20.3): the battery through sysfs or termux-battery-status,
CPU and skin thermal zones. Fixtures from real phones: tests/platform/fixtures/android/README.md."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from profiler.measure.energy import thermal_fields
from profiler.platform import sysfs
from profiler.platform.energy import battery, termux
from profiler.platform.energy.chooser import choose
from profiler.platform.energy.sampler import Sampler
from profiler.platform.thermal import ThermalSensors, summarize
from profiler.report import energy_text
from support.android import (
    FIXTURES,
    fake_termux_battery_status,
    path_with,
    write_power_supply,
    write_thermal_zones,
)
from support.energy_fixtures import FakeClock, redirected

PS = "sys/class/power_supply"


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path / "root") as path:
        path.mkdir()
        yield path


@pytest.fixture
def phone(tmp_path, root, monkeypatch):
    """A fixture root plus a fake termux-battery-status on PATH, run for real (not a recorded runner)."""
    output = tmp_path / "termux.json"
    fake_termux_battery_status(tmp_path / "bin", output)
    monkeypatch.setenv("PATH", path_with(tmp_path / "bin"))
    sysfs.set_command_runner(None)

    def show(name: str) -> None:
        shutil.copy(FIXTURES / name, output)

    return show


def sampled(source, clock=None):
    return Sampler(source, clock or FakeClock(), cpu_reader=lambda: (None, None)).open()


# --- sysfs battery ---------------------------------------------------------------------------

def test_pixel3a_not_charging_on_usb_is_not_a_meter(root):
    write_power_supply(root, "pixel3a-usb-not-charging.tree")
    found = battery.probe()
    assert found[0].source is None
    assert "usb is online" in found[0].reason and "unplug the charger" in found[0].reason


def test_not_charging_with_every_charger_offline_is_discharging(root):
    write_power_supply(root, "pixel3a-usb-not-charging.tree")
    (root / PS / "usb/online").write_text("0\n")  # the same phone, unplugged (constructed)
    source = battery.probe()[0].source
    assert source is not None
    # 976 is too small for µA on a running phone: read as mA, and the note says so
    assert source.read(0) == pytest.approx(0.976 * 3.815175)
    assert any("read as mA" in n for n in source.provenance.notes)


def test_plugging_in_mid_run_fails_the_reads_with_the_reason(root):
    write_power_supply(root, "lisa-battery-discharging.tree")
    sampler = sampled(battery.probe()[0].source)
    assert sampler.take().value == pytest.approx(0.446 * 3.987968)
    (root / PS / "battery/status").write_text("Charging\n")
    (root / PS / "usb/online").write_text("1\n")
    assert sampler.take() is None
    assert sampler.poller.stats.read_errors == 1
    assert "unplug the charger" in sampler.poller.stats.errors[0]


# --- termux-battery-status -------------------------------------------------------------------

def test_old_termux_api_without_voltage_is_an_estimate_at_nominal_voltage(phone):
    phone("termux-neofetch-1939-discharging.json")  # -394: mA on that phone, discharging sign
    choice = choose(cpu_model="Qualcomm", board=None)
    assert choice.source.provenance.source == "termux-battery-status x nominal voltage"
    prov = choice.source.provenance
    assert not prov.measured and prov.method == "sampled" and prov.scope == "battery-system"
    assert choice.source.read(0) == pytest.approx(0.394 * termux.NOMINAL_V)
    assert any("3.85 V" in n for n in prov.notes) and any("read as mA" in n for n in prov.notes)
    assert "ESTIMATED" in energy_text.provenance_line({"sources": choice.to_dict()})


def test_nominal_voltage_from_design_capacity_when_sysfs_shows_it(phone, root):
    phone("termux-neofetch-1939-discharging.json")
    (root / PS / "battery").mkdir(parents=True)
    (root / PS / "battery/charge_full_design").write_text("3588000\n")  # OnePlus 7 (acc #195)
    (root / PS / "battery/energy_full_design").write_text("13885560\n")  # constructed: 3.87 V
    source = termux.probe()[0].source
    assert source.nominal_v == pytest.approx(3.87) and source.read(0) == pytest.approx(0.394 * 3.87)


def test_unplugged_not_charging_phone_is_metered(phone):
    phone("termux-vim-battery-9-unplugged-not-charging.json")
    source = termux.probe()[0].source
    assert source is not None and source.read(0) == pytest.approx(0.232 * termux.NOMINAL_V)


def test_termux_api_with_voltage_is_measured(phone):
    phone("termux-api-0.51-constructed.json")
    source = termux.probe()[0].source
    assert source.provenance.measured and source.provenance.source == "termux-battery-status"
    assert source.read(0) == pytest.approx(0.512 * 3.985)


def test_charging_phone_is_skipped_and_plugging_in_mid_run_fails_the_reads(phone):
    phone("termux-battery-nvim-27-charging.json")
    found = termux.probe()
    assert found[0].source is None and "PLUGGED_AC" in found[0].reason and "unplug" in found[0].reason
    phone("termux-neofetch-1939-discharging.json")
    sampler = sampled(termux.probe()[0].source)
    assert sampler.take() is not None
    phone("termux-battery-nvim-27-charging.json")
    assert sampler.take() is None and "PLUGGED_AC" in sampler.poller.stats.errors[0]


def test_without_termux_the_chooser_says_how_to_get_it(root):
    names = {c.name: c for c in choose(cpu_model="x", board=None).candidates}
    assert names[termux.NAME].status == "skipped" and "pkg install termux-api" in names[termux.NAME].reason


# --- thermal zones ---------------------------------------------------------------------------

def test_max_is_over_cpu_zones_and_skin_is_beside_it(root):
    write_thermal_zones(root, "lisa-thermal.tree")
    sensors = ThermalSensors.discover()
    reading = sensors.read(0)
    # the hottest zone of all is pm8350c_tz, a stub stuck at 37 °C; the CPU's hottest is cpu-1-7 at 30
    assert max(reading.temps_c.values()) == pytest.approx(37.0)
    assert reading.temp_max_c == pytest.approx(30.0)
    assert sensors.skin_zone.endswith(":quiet_therm") and reading.skin_temp_c == pytest.approx(25.6)
    kinds = {name.split(":", 1)[1] for name in sensors.cpu_zones}
    assert {"cpuss-0-usr", "cpu-1-7-usr", "cpu-0-0-step"} <= kinds
    assert not kinds & {"cpu_therm", "gpuss-0-usr", "pm7325_tz", "battery"}  # cpu_therm: a board NTC
    assert "CPU zone" in sensors.describe()["temp_basis"]


def test_battery_current_limiter_zones_are_not_temperatures(root):
    zones = write_thermal_zones(root, "lisa-thermal.tree")
    sensors = ThermalSensors.discover()
    for kind in ("vbat", "pm7325b-ibat-lvl0", "pm7325b-bcl-lvl0"):  # 3986 mV would read as 3.986 °C
        name = f"{zones[kind]}:{kind}"
        assert name not in sensors.temp_files and "not a temperature" in sensors.rejected[name]


def test_summary_and_row_cell_carry_the_skin_temperature(root):
    write_thermal_zones(root, "lisa-thermal.tree")
    sensors = ThermalSensors.discover()
    readings = [sensors.read(0)]
    (root / "sys/class/thermal/thermal_zone0/temp").write_text("41250\n")  # quiet_therm warms
    readings.append(sensors.read(1))
    summary = summarize(readings, has_indicator=False)
    assert summary.temp_max_c == pytest.approx(30.0) and summary.skin_temp_max_c == pytest.approx(41.25)

    fields, _, _ = thermal_fields(readings, sensors, "tiny pp16")
    row = SimpleNamespace(temp_max_c=fields["temp_max_c"], freq_ratio=None, throttled=None,
                          thermal_detail=fields["thermal_detail"])
    assert energy_text.thermal_cell(row) == "30 °C, skin 41 °C, n/a clk"
    assert fields["thermal_detail"]["samples"]["skin_temp_c"] == [pytest.approx(25.6), pytest.approx(41.25)]
