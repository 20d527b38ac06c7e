"""hwmon power meters, accepted only from drivers known to meter the CPU package, the SoC or the system.

A chip is used only when its driver is on ``KNOWN``, which says what the chip meters (its
scope) and which channels to read. Any other chip with a ``power*`` or ``energy*`` channel
is listed as skipped, with the reason: since Linux 6.11 ``acpi_fan`` exposes the *fan's*
power as ``power1_input``, and USB-C ``ucsi_source_psy_*`` chips the *charger port's* power;
either would otherwise become a "measured" J/token on a laptop whose RAPL is root-only.

Known drivers (Documentation/hwmon/ in the kernel, and the out-of-tree Zen drivers):

* ``amd_energy`` (mainline 5.8-5.12) and ``zenergy`` (its out-of-tree successor): µJ counters,
  ``Esocket*`` per socket (summed; the ``Ecore*`` channels are inside them): ``package``.
* ``zenpower``: ``SVI2_P_Core`` + ``SVI2_P_SoC``, the two CPU voltage regulators: ``package``.
* ``fam15h_power``: ``power1_input``, the processor's power (AMD family 15h/16h): ``package``.
* ``power_meter``: ACPI power meter, ``power1_average``, the server's input power: ``wall``.
* TI INA2xx current monitors (``ina2xx``, ``ina238``, ``ina233``): they meter whatever rail the board
  wires them to, so they are used only when a label names the board's input or system rail
  (``VIN``, ``VSYS``, ``input``, ``system``, ``board``, ``total``): ``board-rails``.

The INA3221 belongs to the Jetson reader and GPU chips meter only the GPU; both are skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

HWMON = "/sys/class/hwmon"
RATE_HZ = 10.0
# Energy counters are read at window edges; this is the resolution of the counter itself.
COUNTER_RESOLUTION_S = 0.001


@dataclass(frozen=True)
class KnownChip:
    scope: str
    what: str  # what the chip meters, shown in `profiler device`
    kind: str  # "energy-sockets", "power-all", "power-first", "average", "labelled-rail"
    labels: tuple[str, ...] = ()  # channels to read, by label (empty: by kind)


SYSTEM_RAIL = re.compile(r"\b(vin|vsys|sys|system|input|in|board|total|psu|dc.?in|vbus)\b", re.I)
INA_CHIPS = ("ina209", "ina219", "ina220", "ina226", "ina230", "ina231", "ina233", "ina238", "ina260")
KNOWN: dict[str, KnownChip] = {
    "amd_energy": KnownChip("package", "AMD per-socket energy counters", "energy-sockets"),
    "zenergy": KnownChip("package", "AMD per-socket energy counters", "energy-sockets"),
    "zenpower": KnownChip("package", "the CPU's core and SoC voltage regulators (SVI2)", "power-all",
                          ("SVI2_P_Core", "SVI2_P_SoC")),
    "fam15h_power": KnownChip("package", "the AMD processor's power", "power-first"),
    "power_meter": KnownChip("wall", "the ACPI power meter: the machine's input power", "average"),
    **{chip: KnownChip("board-rails", "a TI current monitor on a board rail", "labelled-rail") for chip in INA_CHIPS},
}
GPU_CHIPS = ("amdgpu", "radeon", "nouveau", "i915", "xe", "nvidia")
# Chips with power channels that meter something other than the CPU, and why.
NOT_THE_CPU = {
    "acpi_fan": "the fan's own power (acpi_fan, Linux 6.11+), not the CPU's",
    "ucsi_source_psy": "a USB-C port's power (what a charger offers or a device draws), not the CPU's",
    "ina3221": "the Jetson reader handles INA3221 rails",
}


class HwmonSource(EnergySource):
    """Summed hwmon channels of one chip: µJ counters (cumulative) or µW power (sampled)."""

    def __init__(self, chip_dir: str, chip: str, files: list[str], cumulative: bool, scope: str, what: str):
        self.files = [f"{chip_dir}/{f}" for f in files]
        self.cumulative = cumulative
        method = "counter" if cumulative else "sampled"
        self.provenance = Provenance(
            source=f"hwmon:{chip}/{'+'.join(f.split('_')[0] for f in files)}",
            method=method, scope=scope, measured=True, rate_hz=RATE_HZ, system_wide=True,
            resolution_s=COUNTER_RESOLUTION_S if cumulative else 1 / RATE_HZ,
            notes=[f"{chip} meters {what}", f"files: {', '.join(self.files)}"],
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
            self._total_uj += sum(max(v - last, 0) for v, last in zip(values, self._last, strict=True))
        self._last = values
        return self._total_uj / 1e6


def _channels(chip_dir: str, kind: str, suffix: str = "input") -> list[tuple[str, str]]:
    """(file name, label) of every readable ``{kind}N_{suffix}`` in one chip."""
    found = []
    for path in sysfs.glob(f"{chip_dir}/{kind}[0-9]*_{suffix}"):
        if sysfs.read_int(f"{chip_dir}/{path.name}") is None:
            continue
        label = sysfs.read_str(f"{chip_dir}/{path.name.rsplit('_', 1)[0]}_label") or ""
        found.append((path.name, label))
    return found


def average_interval_s(chip_dir: str, channel: str) -> float | None:
    """``powerN_average_interval`` (ms): the span one ``powerN_average`` value averages over."""
    interval_ms = sysfs.read_int(f"{chip_dir}/{channel.removesuffix('_average')}_average_interval")
    return interval_ms / 1000 if interval_ms and interval_ms > 0 else None


def _has_meter(chip_dir: str) -> bool:
    return bool(_channels(chip_dir, "power") or _channels(chip_dir, "energy") or _channels(chip_dir, "power", "average"))


def _known_source(chip_dir: str, chip: str, known: KnownChip) -> tuple[HwmonSource | None, str]:
    def make(files: list[str], cumulative: bool, why: str) -> tuple[HwmonSource, str]:
        return HwmonSource(chip_dir, chip, files, cumulative, known.scope, known.what), f"{known.what}: {why}"

    if known.kind == "energy-sockets":
        sockets = [f for f, label in _channels(chip_dir, "energy") if label.lower().startswith("esocket")]
        if sockets:
            return make(sockets, True, "per-socket energy counters (per-core ones are inside them)")
        return None, "no Esocket* energy channel"
    if known.kind == "average":
        power = _channels(chip_dir, "power", "average")
        if not power:
            return None, "no power*_average channel"
        source, why = make([power[0][0]], False, f"{power[0][0]} (µW)")
        source.declared_update_s = average_interval_s(chip_dir, power[0][0])
        if source.declared_update_s:
            source.provenance.notes.append(f"averages over {source.declared_update_s:g} s "
                                           f"({power[0][0].removesuffix('_average')}_average_interval)")
        return source, why
    power = _channels(chip_dir, "power")
    if known.kind == "power-all":
        wanted = [f for f, label in power if label in known.labels]
        if len(wanted) == len(known.labels):
            return make(wanted, False, " + ".join(known.labels))
        return None, f"does not show all of {', '.join(known.labels)}"
    if known.kind == "power-first":
        return make([power[0][0]], False, power[0][0]) if power else (None, "no power*_input channel")
    return _labelled_rail(chip_dir, chip, known, power, make)


def _labelled_rail(chip_dir, chip, known, power, make):
    """An INA monitor counts only when a label says it sits on the board's input or system rail."""
    chip_label = sysfs.read_str(f"{chip_dir}/label") or ""
    for name, label in power:
        text = label or chip_label
        if text and SYSTEM_RAIL.search(text.replace("_", " ")):
            return make([name], False, f"{name} labelled '{text}'")
    labels = ", ".join(filter(None, [chip_label] + [label for _, label in power])) or "none"
    return None, (f"meters a rail the board does not name as its input or system supply (labels: {labels}); "
                  "give it a device-tree label such as 'vin' or 'vsys' if it does")


def _skip_reason(chip: str) -> str:
    for prefix, reason in NOT_THE_CPU.items():
        if chip.startswith(prefix):
            return reason
    if chip.startswith(GPU_CHIPS):
        return "measures only the GPU, not the CPU that runs the model"
    return ("not a driver known to meter the CPU package, the SoC or the whole system "
            f"(known: {', '.join(sorted(set(KNOWN) - set(INA_CHIPS)))}, INA2xx with an input-rail label)")


def probe() -> list[Candidate]:
    found: list[Candidate] = []
    chosen = False
    for found_dir in sysfs.glob(f"{HWMON}/hwmon*"):
        chip_dir = f"{HWMON}/{found_dir.name}"
        chip = sysfs.read_str(f"{chip_dir}/name") or found_dir.name
        name = f"hwmon:{chip} ({found_dir.name})"
        if not _has_meter(chip_dir):
            continue  # temperature-only chips are the thermal tracker's business
        known = KNOWN.get(chip)
        if known is None:
            found.append(skipped(name, _skip_reason(chip), "sampled"))
            continue
        source, why = _known_source(chip_dir, chip, known)
        if source is None:
            found.append(skipped(name, why, None, known.scope))
        elif chosen:
            found.append(skipped(name, "another hwmon chip was taken first; chips may measure nested rails, "
                                 "never added", source.provenance.method, source.provenance.scope))
        else:
            found.append(usable(source, why))
            chosen = True
    if not found:
        found.append(skipped("hwmon", f"no power or energy channel under {HWMON}", "sampled"))
    return found
