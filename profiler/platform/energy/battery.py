"""A discharging laptop or phone battery as a power meter for the whole system.

The kernel ABI says ``power_now`` in µW, ``current_now`` in µA, ``voltage_now`` in µV,
all positive. Android vendors differ: some report current as negative while discharging,
some in mA or mV. Magnitudes are used, and values far too small to be µA / µV are scaled
from mA / mV; each such normalisation is written into the provenance notes.

Only a battery that feeds the system alone meters it: on a charger the current is the charge
current (or, with charging paused, about zero, as on a Pixel 3a on USB reading 976 µA). So the
battery must say "Discharging", or "Not charging" with every charger input offline (some phones
say that unplugged), and it is checked again at every read: plugging in mid-run fails the reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

SUPPLY = "/sys/class/power_supply"
RATE_HZ = 2.0  # fuel gauges refresh about once a second: 2 Hz loses nothing and wakes less
# Fuel gauges refresh anywhere from every 10 ms to every 40 s or so: this is only a floor for the
# poller; the real period is measured while idle (meter.py) and windows are held to it.
GAUGE_REFRESH_S = 1.0
# A running system draws more than 10 mA, and a battery is above 0.1 V: a smaller
# magnitude can only be a reading in mA (or mV) instead of µA (or µV).
MIN_MICRO_AMPS = 10_000
MIN_MICRO_VOLTS = 100_000


@dataclass
class Battery:
    path: str
    name: str
    use_power_now: bool
    notes: list[str] = field(default_factory=list)


def normalise_current_ua(raw: int) -> tuple[float, list[str]]:
    notes = []
    if raw < 0:
        notes.append("current_now is negative while discharging (this vendor's sign convention); "
                     "its magnitude is used")
    value = float(abs(raw))
    if 0 < value < MIN_MICRO_AMPS:
        notes.append(f"current_now {raw} is too small to be µA; read as mA")
        value *= 1000
    return value, notes


def normalise_voltage_uv(raw: int) -> tuple[float, list[str]]:
    value = float(abs(raw))
    if 0 < value < MIN_MICRO_VOLTS:
        return value * 1000, [f"voltage_now {raw} is too small to be µV; read as mV"]
    return value, []


def battery_watts(battery: Battery) -> float | None:
    if battery.use_power_now:
        raw = sysfs.read_int(f"{battery.path}/power_now")
        return abs(raw) / 1e6 if raw is not None else None
    current = sysfs.read_int(f"{battery.path}/current_now")
    voltage = sysfs.read_int(f"{battery.path}/voltage_now")
    if current is None or voltage is None:
        return None
    return normalise_current_ua(current)[0] * normalise_voltage_uv(voltage)[0] / 1e12


class BatterySource(EnergySource):
    """The sum of the discharging batteries' power (a ThinkPad may have two)."""

    cumulative = False

    def __init__(self, batteries: list[Battery]):
        self.batteries = batteries
        notes = [n for b in batteries for n in b.notes]
        notes.append("fuel gauges refresh anywhere from every 10 ms to every 40 s; the update period is measured "
                     "during the idle baseline (energy_detail.sampling.meter_update_s) and shorter phases are "
                     "not resolved")
        self.provenance = Provenance(
            source=f"battery:{'+'.join(b.name for b in batteries)}", method="sampled",
            scope="battery-system", measured=True, rate_hz=RATE_HZ, system_wide=True,
            resolution_s=max(GAUGE_REFRESH_S, 1 / RATE_HZ), notes=notes,
        )

    def read(self, t_ns: int) -> float | None:
        for b in self.batteries:
            ok, why = discharging(b.path)
            if not ok:  # plugged in mid-run: the reading is no longer the system's draw
                raise RuntimeError(f"{b.name}: {why}")
        watts = [battery_watts(b) for b in self.batteries]
        return None if any(w is None for w in watts) else sum(watts)


def _charger_online() -> list[str]:
    """The external supplies (mains, USB, wireless) that say they are online."""
    found = []
    for supply in sysfs.glob(f"{SUPPLY}/*"):
        path = f"{SUPPLY}/{supply.name}"
        if (sysfs.read_str(f"{path}/type") or "Battery") != "Battery" and sysfs.read_int(f"{path}/online") == 1:
            found.append(supply.name)
    return found


def discharging(path: str) -> tuple[bool, str]:
    """Whether the battery at ``path`` alone feeds the system, and the reason when not."""
    status = sysfs.read_str(f"{path}/status") or "unknown"
    if status == "Discharging":
        return True, ""
    online = _charger_online()
    if status == "Not charging" and not online and sysfs.glob(f"{SUPPLY}/*/online"):
        return True, ""  # some phones say "Not charging" on battery; no charger input is online
    plugged = f" and {', '.join(online)} is online" if online else ""
    return False, (f"status is {status}{plugged}; on external power the battery does not see the system's "
                   "draw (only a discharging, unplugged device meters itself): unplug the charger")


def _inspect(path: str, name: str) -> tuple[Battery | None, str]:
    ok, why = discharging(path)
    if not ok:
        return None, why
    power = sysfs.read_int(f"{path}/power_now")
    if power:
        return Battery(path, name, True), "discharging, power_now (µW)"
    current = sysfs.read_int(f"{path}/current_now")
    voltage = sysfs.read_int(f"{path}/voltage_now")
    if not current or not voltage:
        return None, "discharging but reports neither power_now nor current_now and voltage_now"
    notes = normalise_current_ua(current)[1] + normalise_voltage_uv(voltage)[1]
    return Battery(path, name, False, notes), "discharging, current_now x voltage_now (µA x µV)"


def probe() -> list[Candidate]:
    batteries, found = [], []
    for supply in sysfs.glob(f"{SUPPLY}/*"):
        path = f"{SUPPLY}/{supply.name}"
        if (sysfs.read_str(f"{path}/type") or "") != "Battery":
            continue
        battery, why = _inspect(path, supply.name)
        if battery is None:
            found.append(skipped(f"battery:{supply.name}", why, "sampled", "battery-system"))
        else:
            batteries.append((battery, why))
    if batteries:
        source = BatterySource([b for b, _ in batteries])
        found.insert(0, usable(source, "; ".join(why for _, why in batteries)))
    if not found:
        found.append(skipped("battery", f"no battery under {SUPPLY}", "sampled", "battery-system"))
    return found
