"""Battery capacity from /sys/class/power_supply (issue #22.2), on dumps of real laptops and phones
(tests/platform/fixtures/laptop/README.md and android/README.md cite each)."""

from __future__ import annotations

import pytest

from profiler.platform import device
from profiler.platform.energy.capacity import BatteryCapacity, read_capacity
from support.android import LAPTOP_FIXTURES, write_power_supply
from support.energy_fixtures import redirected


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path / "root") as path:
        path.mkdir()
        yield path


def test_worn_thinkpad_uses_energy_full_and_reports_the_design_beside_it(root):
    write_power_supply(root, "thinkpad-42t4977-worn.tree", LAPTOP_FIXTURES)
    cap = read_capacity()
    assert cap.wh == pytest.approx(25.5)  # today's capacity, not the 38.92 Wh of a new battery
    assert cap.packs[0].design_wh == pytest.approx(38.92)
    assert cap.worn and cap.measured
    assert cap.to_dict()["basis"] == "full (today's, worn)"
    assert cap.packs[0].source == "energy_full (µWh)"


def test_dell_charge_is_made_energy_with_the_packs_design_voltage(root):
    write_power_supply(root, "dell-xps15-9560-discharging.tree", LAPTOP_FIXTURES)
    cap = read_capacity()
    assert cap.wh == pytest.approx(4.901 * 11.4)  # µAh x voltage_min_design, not x voltage_max or voltage_now
    assert cap.packs[0].design_wh == pytest.approx(4.912 * 11.4)
    assert "voltage_min_design 11.4 V" in cap.packs[0].source and cap.measured


def test_worn_chromebook_charge(root):
    write_power_supply(root, "asus-c300-chromebook-worn.tree", LAPTOP_FIXTURES)
    cap = read_capacity()
    assert cap.wh == pytest.approx(3.558 * 11.4)
    assert cap.packs[0].full_wh < cap.packs[0].design_wh


def test_phone_gauge_that_has_not_learned_falls_back_to_design_at_a_typical_cell_voltage(root):
    write_power_supply(root, "oneplus7-bms-unlearned.tree")
    cap = read_capacity()
    assert cap.wh == pytest.approx(3.588 * 3.85)  # charge_full 0 is not a capacity; design x 3.85 V
    assert not cap.worn and not cap.measured  # the voltage is a typical one: an estimate
    assert cap.to_dict()["basis"] == "design (the battery new)"
    assert any("charge_full is absent or 0" in n for n in cap.packs[0].notes)


def test_pixel3a_without_capacity_files_says_why(root):
    write_power_supply(root, "pixel3a-usb-not-charging.tree")
    cap = read_capacity()
    assert cap.wh is None and not cap.packs
    assert "battery reports no capacity" in cap.unavailable


def test_no_battery_is_said_not_zero(root):
    cap = read_capacity()
    assert cap.wh is None and cap.unavailable == "no battery"
    assert cap.to_dict()["capacity_wh"] is None


def test_the_capacity_travels_with_the_device_fingerprint(root):
    write_power_supply(root, "thinkpad-42t4977-worn.tree", LAPTOP_FIXTURES)
    stored = device.fingerprint().to_dict()
    again = BatteryCapacity.from_dict(device.Device.from_dict(stored).battery)
    assert again.wh == pytest.approx(25.5) and again.packs[0].name == "BAT0"


def test_profiler_device_shows_the_capacity_or_why_there_is_none(root):
    import io

    from rich.console import Console

    from profiler.report.console import print_device

    def shown() -> str:
        buffer = io.StringIO()
        print_device(device.fingerprint(), Console(file=buffer, width=300))
        return " ".join(buffer.getvalue().split())

    assert "battery │" not in shown()  # nothing extra without a battery
    write_power_supply(root, "pixel3a-usb-not-charging.tree")
    assert "battery │ capacity unavailable, because battery reports no capacity" in shown()
    write_power_supply(root, "dell-xps15-9560-discharging.tree", LAPTOP_FIXTURES)
    assert "55.9 Wh, full (today's, worn); BAT0: charge_full (µAh) x voltage_min_design 11.4 V" in shown()
