"""hwmon power meters: ``energy*_input`` (µJ counters) or ``power*_input`` (µW, sampled).

Only one chip and one channel is used: channels of different chips (or of one chip) may
measure nested rails, and nested rails are never added. The exception is AMD's per-socket
energy counters (``Esocket*`` labels), which are disjoint and summed; their per-core
channels are inside the socket and skipped. GPU chips measure only the GPU, which does not
run llama.cpp's CPU path, and the INA3221 belongs to the Jetson reader.
"""

from __future__ import annotations

import re

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

HWMON = "/sys/class/hwmon"
RATE_HZ = 10.0
GPU_CHIPS = ("amdgpu", "radeon", "nouveau", "i915", "xe", "nvidia")
OWN_READERS = {"ina3221": "the Jetson reader handles INA3221 rails"}
PACKAGE_CHIPS = ("amd_energy", "zenpower", "fam15h_power")
WALL_CHIPS = ("power_meter",)  # ACPI power meter: the server's input power
PREFERRED_LABEL = re.compile(r"total|input|sys|board|psu|vin|in\b", re.I)


def _scope(chip: str) -> str:
    if chip in PACKAGE_CHIPS:
        return "package"
    if chip in WALL_CHIPS:
        return "wall"
    return "board-rails"


class HwmonSource(EnergySource):
    """One hwmon channel, or the sum of AMD socket counters."""

    def __init__(self, chip_dir: str, chip: str, files: list[str], cumulative: bool):
        self.files = [f"{chip_dir}/{f}" for f in files]
        self.cumulative = cumulative
        method = "counter" if cumulative else "sampled"
        self.provenance = Provenance(
            source=f"hwmon:{chip}/{'+'.join(f.split('_')[0] for f in files)}",
            method=method, scope=_scope(chip), measured=True, rate_hz=RATE_HZ,
            system_wide=True, resolution_s=1 / RATE_HZ, notes=[f"files: {', '.join(self.files)}"],
        )
        self._last: list[int] | None = None
        self._total_uj = 0

    def open(self) -> None:
        self._last, self._total_uj = None, 0

    def read(self, t_ns: int) -> float | None:
        values = [sysfs.read_int(f) for f in self.files]
        if any(v is None for v in values):
            return None
        if not self.cumulative:
            return sum(values) / 1e6  # µW -> W
        if self._last is not None:
            # hwmon energy counters are 64-bit; a drop means the driver restarted it.
            self._total_uj += sum(max(v - last, 0) for v, last in zip(values, self._last))
        self._last = values
        return self._total_uj / 1e6


def _channels(chip_dir: str, kind: str) -> list[tuple[str, str]]:
    """(file name, label) of every readable ``{kind}N_input`` in one chip."""
    found = []
    for path in sysfs.glob(f"{chip_dir}/{kind}[0-9]*_input"):
        if sysfs.read_int(f"{chip_dir}/{path.name}") is None:
            continue
        label = sysfs.read_str(f"{chip_dir}/{path.name.replace('_input', '_label')}") or ""
        found.append((path.name, label))
    return found


def _chip_source(chip_dir: str, chip: str) -> tuple[HwmonSource | None, str]:
    energy = _channels(chip_dir, "energy")
    sockets = [f for f, label in energy if label.lower().startswith("esocket")]
    if sockets:
        return HwmonSource(chip_dir, chip, sockets, True), "per-socket energy counters (cores are nested, skipped)"
    if energy:
        name, label = _pick(energy)
        return HwmonSource(chip_dir, chip, [name], True), f"energy counter {name} {label}".strip()
    power = _channels(chip_dir, "power")
    if power:
        name, label = _pick(power)
        return HwmonSource(chip_dir, chip, [name], False), f"power sensor {name} {label}".strip()
    return None, "no readable power*_input or energy*_input channel"


def _pick(channels: list[tuple[str, str]]) -> tuple[str, str]:
    """A channel labelled as the total/input if there is one, else the first."""
    for name, label in channels:
        if PREFERRED_LABEL.search(label):
            return name, label
    return channels[0]


def probe() -> list[Candidate]:
    found: list[Candidate] = []
    chosen = False
    for found_dir in sysfs.glob(f"{HWMON}/hwmon*"):
        chip_dir = f"{HWMON}/{found_dir.name}"
        chip = sysfs.read_str(f"{chip_dir}/name") or found_dir.name
        name = f"hwmon:{chip} ({found_dir.name})"
        if chip in OWN_READERS:
            found.append(skipped(name, OWN_READERS[chip]))
            continue
        source, why = _chip_source(chip_dir, chip)
        if source is None:
            continue  # temperature-only chips are the thermal tracker's business
        if chip.startswith(GPU_CHIPS):
            found.append(skipped(name, "measures only the GPU, not the CPU that runs the model", "sampled"))
        elif chosen:
            found.append(skipped(name, "another hwmon chip was taken first; chips may measure nested rails, "
                                 "never added", source.provenance.method, source.provenance.scope))
        else:
            found.append(usable(source, why))
            chosen = True
    if not found:
        found.append(skipped("hwmon", f"no power or energy channel under {HWMON}", "sampled"))
    return found
