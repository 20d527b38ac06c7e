"""hwmon is a meter only for drivers known to meter the CPU package, the SoC or the system.

Fixture trees shaped like real laptops (Linux 6.11+ puts the *fan's* power in acpi_fan's
power1_input; UCSI chips report a USB-C port's power): on today's main either would become
the "measured" energy source. They must be skipped with the reason, and a discharging
battery must win.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from profiler.cli import app as cli_mod
from profiler.platform.energy import hwmon
from profiler.platform.energy.chooser import choose
from support.energy_fixtures import (
    laptop_fan_battery,
    laptop_fan_only,
    laptop_usbc_battery,
    redirected,
    vm_tree,
    write_tree,
)

EPYC = "AMD Ryzen 7 7840U"


@pytest.fixture
def root(tmp_path):
    with redirected(tmp_path) as path:
        yield path


def statuses(choice) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.reason) for c in choice.candidates}


def test_fan_plus_battery_uses_the_battery_and_skips_the_fan(root):
    laptop_fan_battery(root)
    choice = choose(cpu_model=EPYC, board=None)
    assert choice.source.provenance.source == "battery:BAT0"
    assert choice.source.provenance.scope == "battery-system"
    status, reason = statuses(choice)["hwmon:acpi_fan (hwmon2)"]
    assert status == "skipped" and "fan's own power" in reason


def test_usbc_plus_battery_uses_the_battery_and_skips_the_port(root):
    laptop_usbc_battery(root)
    choice = choose(cpu_model=EPYC, board=None)
    assert choice.source.provenance.source == "battery:BAT0"
    status, reason = statuses(choice)["hwmon:ucsi_source_psy_USBC000:001 (hwmon4)"]
    assert status == "skipped" and "USB-C port" in reason


def test_fan_only_on_the_charger_is_an_estimate_never_the_fan(root):
    laptop_fan_only(root)
    choice = choose(cpu_model=EPYC, board=None)
    prov = choice.source.provenance
    assert prov.source == "model:cpu-table" and prov.measured is False
    assert statuses(choice)["hwmon:acpi_fan (hwmon2)"][0] == "skipped"
    assert "unplug the charger" in statuses(choice)["battery:BAT0"][1]


def test_temperature_only_chips_are_not_energy_candidates(root):
    laptop_fan_battery(root)
    names = [c.name for c in hwmon.probe()]
    assert names == ["hwmon:acpi_fan (hwmon2)"]  # acpitz, k10temp and nvme have no power channel


def test_an_unknown_power_chip_is_skipped_with_the_list_of_known_ones(root):
    write_tree(root, {"/sys/class/hwmon/hwmon5/name": "dell_smm\n", "/sys/class/hwmon/hwmon5/power1_input": 9_000_000})
    (found,) = hwmon.probe()
    assert found.source is None and "not a driver known to meter" in found.reason and "zenpower" in found.reason


def test_zenpower_sums_the_core_and_soc_regulators_as_package(root):
    base = "/sys/class/hwmon/hwmon2"
    write_tree(root, {f"{base}/name": "zenpower\n",
                      f"{base}/power1_input": 21_500_000, f"{base}/power1_label": "SVI2_P_Core\n",
                      f"{base}/power2_input": 6_250_000, f"{base}/power2_label": "SVI2_P_SoC\n",
                      f"{base}/temp1_input": 60000})
    source = hwmon.probe()[0].source
    assert source.provenance.scope == "package" and source.provenance.source == "hwmon:zenpower/power1+power2"
    assert source.read(0) == pytest.approx(27.75)


def test_fam15h_power_and_the_acpi_power_meter_have_their_scopes(root):
    write_tree(root, {"/sys/class/hwmon/hwmon0/name": "fam15h_power\n", "/sys/class/hwmon/hwmon0/power1_input": 35_000_000})
    (found,) = hwmon.probe()
    assert found.source.provenance.scope == "package" and found.source.read(0) == pytest.approx(35.0)
    write_tree(root, {"/sys/class/hwmon/hwmon0/name": "power_meter\n", "/sys/class/hwmon/hwmon0/power1_average": 182_000_000})
    (found,) = hwmon.probe()
    assert found.source.provenance.scope == "wall" and found.source.read(0) == pytest.approx(182.0)


def test_an_ina_monitor_counts_only_when_labelled_as_the_input_rail(root):
    base = "/sys/class/hwmon/hwmon1"
    write_tree(root, {f"{base}/name": "ina226\n", f"{base}/power1_input": 4_200_000})
    (found,) = hwmon.probe()
    assert found.source is None and "does not name as its input or system supply" in found.reason
    write_tree(root, {f"{base}/label": "vin\n"})
    (found,) = hwmon.probe()
    assert found.source.provenance.scope == "board-rails" and found.source.read(0) == pytest.approx(4.2)


def test_profiler_device_shows_the_skipped_fan_with_its_reason(tmp_path):
    with redirected(laptop_fan_battery(vm_tree(tmp_path))):
        result = CliRunner().invoke(cli_mod.cli, ["device", "--no-bandwidth", "--json"], catch_exceptions=False)
        table = CliRunner().invoke(cli_mod.cli, ["device", "--no-bandwidth"], catch_exceptions=False)
    assert result.exit_code == 0
    sources = json.loads(result.stdout)["energy"]["sources"]
    fan = next(c for c in sources["candidates"] if c["name"].startswith("hwmon:acpi_fan"))
    assert fan["status"] == "skipped" and "fan" in fan["reason"]
    assert sources["chosen"]["source"] == "battery:BAT0"
    assert "acpi_fan" in table.stdout and "battery:BAT0" in table.stdout
