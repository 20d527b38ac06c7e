"""An Android phone's battery through ``termux-battery-status``, where /sys/class/power_supply is closed.

Android's SELinux policy keeps most apps, Termux included, out of the fuel gauge's sysfs files on
many phones. The Termux:API app reads the same gauge through Android's BatteryManager and prints
JSON (termux-api ``BatteryStatusAPI.java``): ``current`` is ``BATTERY_PROPERTY_CURRENT_NOW``, in µA
by Android's contract, though some vendors give mA and either sign (normalised as sysfs current
is, battery.py); ``plugged`` is ``UNPLUGGED`` when the phone runs on its battery. termux-api 0.51
(January 2025) added ``voltage`` in mV, the battery voltage of the last battery-changed broadcast
(sent when the level or state changes, so it can be a few minutes old). Older versions give no
voltage: the power is then current x the battery's nominal voltage, an estimate, and says so.

Each read starts the Termux:API app (about a second, with some CPU of its own that the gauge
also sees), so it is polled slowly.
"""

from __future__ import annotations

import json

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable
from profiler.platform.energy.battery import SUPPLY, normalise_current_ua

COMMAND = ("termux-battery-status",)
NAME = "termux-battery-status"
RATE_HZ = 0.2  # one call takes about a second and wakes an app: every 5 s
# A Li-ion phone cell's typical nominal voltage (3.7 V for older cells, 3.85-3.89 V for the
# high-voltage cells of recent phones); used only when neither termux nor sysfs gives one.
NOMINAL_V = 3.85
PLAUSIBLE_NOMINAL_V = (3.0, 4.5)
INSTALL = "pkg install termux-api, and install the Termux:API app (F-Droid or GitHub, as Termux itself)"


def status() -> dict | None:
    """The parsed JSON of ``termux-battery-status``, or None when it is absent, fails or prints no object."""
    text = sysfs.run_command(COMMAND)
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def unplugged_reason(data: dict) -> str | None:
    """Why this reading cannot meter the phone (on a charger), or None when it is unplugged."""
    plugged = data.get("plugged")
    if plugged == "UNPLUGGED":
        return None
    return (f"plugged is {plugged}, status {data.get('status')}; on a charger the battery current is not the "
            "phone's draw (only an unplugged, discharging phone meters itself): unplug the charger")


def design_nominal_v() -> float | None:
    """The cell's nominal voltage from sysfs design capacity (µWh / µAh), where that is readable."""
    for supply in sysfs.glob(f"{SUPPLY}/*"):
        path = f"{SUPPLY}/{supply.name}"
        energy, charge = sysfs.read_int(f"{path}/energy_full_design"), sysfs.read_int(f"{path}/charge_full_design")
        if energy and charge and PLAUSIBLE_NOMINAL_V[0] < energy / charge < PLAUSIBLE_NOMINAL_V[1]:
            return energy / charge
    return None


def nominal_voltage() -> tuple[float, str]:
    """The voltage to use without a measured one, and where it comes from."""
    design = design_nominal_v()
    if design is not None:
        return design, f"the cell's design nominal voltage {design:.2f} V (energy_full_design / charge_full_design)"
    return NOMINAL_V, f"a typical Li-ion nominal voltage {NOMINAL_V:g} V (not this phone's own figure)"


def volts(data: dict) -> float | None:
    """The reported battery voltage in V (termux-api gives mV), or None when absent or implausible."""
    mv = data.get("voltage")
    return mv / 1000 if isinstance(mv, (int, float)) and 2500 < mv < 5000 else None


class TermuxBatterySource(EnergySource):
    """Battery current x voltage (measured) or x nominal voltage (estimated), from termux-battery-status."""

    cumulative = False

    def __init__(self, nominal_v: float | None, notes: list[str]):
        self.nominal_v = nominal_v  # None: the reported voltage is used at every read
        self.provenance = Provenance(
            source=NAME if nominal_v is None else f"{NAME} x nominal voltage", method="sampled",
            scope="battery-system", measured=nominal_v is None, rate_hz=RATE_HZ, system_wide=True,
            resolution_s=1 / RATE_HZ, notes=notes,
        )

    def read(self, t_ns: int) -> float | None:
        data = status()
        if data is None:
            return None
        why = unplugged_reason(data)
        if why:  # plugged in mid-run
            raise RuntimeError(why)
        current = data.get("current")
        voltage = self.nominal_v or volts(data)
        if not isinstance(current, (int, float)) or voltage is None:
            return None
        return normalise_current_ua(int(current))[0] / 1e6 * voltage


def _source(data: dict) -> tuple[TermuxBatterySource, str]:
    notes = normalise_current_ua(int(data["current"]))[1]
    notes.append("each read starts the Termux:API app, whose own CPU use is in the current it reports")
    if volts(data) is not None:
        notes.append("voltage is the battery voltage of Android's last battery-changed broadcast (mV)")
        return TermuxBatterySource(None, notes), "unplugged; current (µA) x voltage (mV) from termux-api"
    nominal_v, basis = nominal_voltage()
    notes.append(f"termux-api gives no voltage (older than 0.51): power is current x {basis}; "
                 "the voltage of a discharging cell varies by about ±10% around it")
    return TermuxBatterySource(nominal_v, notes), f"unplugged; current (µA) x {basis}"


def probe() -> list[Candidate]:
    data = status()
    if data is None:
        return [skipped(NAME, f"termux-battery-status not found or failed (Android/Termux only: {INSTALL})",
                        "sampled", "battery-system")]
    why = unplugged_reason(data)
    if why:
        return [skipped(NAME, why, "sampled", "battery-system")]
    if not isinstance(data.get("current"), (int, float)) or not data["current"]:
        return [skipped(NAME, "termux-battery-status reports no battery current on this phone",
                        "sampled", "battery-system")]
    source, reason = _source(data)
    return [usable(source, reason)]
