"""The sampling rates the README and docs/energy.md state are the ones the code uses (issue #10, item 3)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from profiler.platform import thermal
from profiler.platform.energy import battery, hwmon, jetson, pi_pmic, termux

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "energy.md").read_text()
README = (ROOT / "README.md").read_text()


def table_rate(source_starts: str) -> str:
    """The rate column of the sources table row whose source starts with ``source_starts``."""
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 6 and cells[1].startswith(source_starts):
            return cells[5]
    raise AssertionError(f"no row for {source_starts}")


@pytest.mark.parametrize("row, rate", [
    ("Raspberry Pi 5 PMIC", pi_pmic.RATE_HZ), ("Jetson INA3221", jetson.RATE_HZ), ("a discharging battery", battery.RATE_HZ),
    ("an unplugged Android phone", termux.RATE_HZ),
])
def test_the_sources_table_states_the_code_rate(row, rate):
    assert table_rate(row).startswith(f"{rate:g} Hz")


def test_hwmon_power_rate_and_counters_at_window_edges():
    assert f"power: {hwmon.RATE_HZ:g} Hz" in table_rate("hwmon") and "window edges" in table_rate("hwmon")
    assert table_rate("CPU power table") == "window edges" and table_rate("Linux powercap").startswith("window edges")


def test_readme_and_thermal_section_agree_with_the_code():
    stated = re.findall(r"`pmic_read_adc` rails are sampled at ([0-9.]+) Hz", README)
    assert stated == [f"{pi_pmic.RATE_HZ:g}"]
    assert f"Sampled at {thermal.RATE_HZ:g} Hz during every test" in DOC


def test_the_net_energy_formula_is_the_codes():
    """Issue #19.11: docs/energy.md once wrote E_net = E - P_idle * t while the code computes
    (E_domain - P_idle * t) * share (tests/platform/test_energy_integrate.py checks it by hand)."""
    net = next(line for line in DOC.splitlines() if line.startswith("* **Net**"))
    assert "`E_net = (E_domain − P_idle · t_phase) · share`" in net
    assert "E_net = E − P_idle" not in DOC


def test_power_fields_are_named_for_what_they_hold():
    assert "`process_power_w`" in DOC and "`device_power_w`" in DOC and "avg_power_w" in DOC  # the old name, explained
