"""NVIDIA Jetson INA3221 power monitors, in both sysfs layouts.

JetPack 5 and later: an hwmon device under ``/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*``
with ``inN_label``, ``inN_input`` (mV) and ``currN_input`` (mA). JetPack 4: an IIO device
under ``/sys/bus/i2c/drivers/ina3221x/*/iio:device*`` with ``rail_name_N`` and
``in_powerN_input`` (mW). The module's input rail (``VDD_IN`` on Orin / Xavier NX,
``POM_5V_IN`` on Nano / TX2) contains every other rail, so it is used alone. The
"sum of shunt voltages" channel and unconnected ("NC") channels are never read.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

HWMON_GLOB = "/sys/bus/i2c/drivers/ina3221/*/hwmon/hwmon*"
IIO_GLOB = "/sys/bus/i2c/drivers/ina3221x/*/iio:device*"
INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
RATE_HZ = 10.0


@dataclass
class Rail:
    label: str
    files: tuple[str, ...]  # (power mW) or (voltage mV, current mA)

    def watts(self) -> float | None:
        values = [sysfs.read_int(f) for f in self.files]
        if any(v is None for v in values):
            return None
        if len(values) == 1:
            return values[0] / 1e3  # mW
        return values[0] * values[1] / 1e6  # mV * mA = µW


def _ignored(label: str) -> bool:
    low = label.strip().lower()
    return not low or low == "nc" or "sum of shunt" in low


def _hwmon_rails(rel_dir: str) -> list[Rail]:
    rails = []
    for n in range(1, 9):
        label = sysfs.read_str(f"{rel_dir}/in{n}_label")
        if label is None or _ignored(label):
            continue
        volt, curr = f"{rel_dir}/in{n}_input", f"{rel_dir}/curr{n}_input"
        if sysfs.read_int(volt) is not None and sysfs.read_int(curr) is not None:
            rails.append(Rail(label, (volt, curr)))
    return rails


def _iio_rails(rel_dir: str) -> list[Rail]:
    rails = []
    for n in range(0, 8):
        label = sysfs.read_str(f"{rel_dir}/rail_name_{n}")
        if label is None or _ignored(label):
            continue
        power = f"{rel_dir}/in_power{n}_input"
        if sysfs.read_int(power) is not None:
            rails.append(Rail(label, (power,)))
    return rails


def find_rails() -> list[Rail]:
    rails = []
    for found in sysfs.glob(HWMON_GLOB):
        rails += _hwmon_rails("/" + str(found.relative_to(sysfs.root())))
    for found in sysfs.glob(IIO_GLOB):
        rails += _iio_rails("/" + str(found.relative_to(sysfs.root())))
    return rails


class JetsonSource(EnergySource):
    cumulative = False

    def __init__(self, rails: list[Rail], note: str):
        self.rails = rails
        self.provenance = Provenance(
            source=f"jetson-ina3221:{'+'.join(r.label for r in rails)}", method="sampled",
            scope="board-rails", measured=True, rate_hz=RATE_HZ, system_wide=True,
            resolution_s=1 / RATE_HZ, notes=[note],
        )

    def read(self, t_ns: int) -> float | None:
        watts = [r.watts() for r in self.rails]
        return None if any(w is None for w in watts) else sum(watts)


def probe() -> list[Candidate]:
    rails = find_rails()
    if not rails:
        return [skipped("jetson-ina3221", "no INA3221 rails under /sys/bus/i2c/drivers/ina3221*/ (not a Jetson)",
                        "sampled", "board-rails")]
    inputs = [r for r in rails if r.label in INPUT_RAILS]
    if inputs:
        chosen = inputs[:1]
        note = f"{chosen[0].label} is the module's input rail and contains the others"
    else:
        chosen = rails
        note = "no VDD_IN/POM_5V_IN rail; summed the rails that report, which may miss unmonitored parts"
    found = [usable(JetsonSource(chosen, note), note)]
    for rail in rails:
        if rail not in chosen:
            found.append(skipped(f"jetson-ina3221:{rail.label}", f"nested inside {chosen[0].label}; "
                                 "nested rails are never added", "sampled", "board-rails"))
    return found
