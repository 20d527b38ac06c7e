"""How much energy a full charge holds: the battery's capacity from /sys/class/power_supply.

The kernel ABI gives ``energy_full`` / ``energy_full_design`` in µWh, or ``charge_full`` /
``charge_full_design`` in µAh. ``energy_full`` (or ``charge_full``) is what the gauge last learned
a full charge holds: today's, worn capacity. ``*_design`` is the battery new. The worn figure is
used when the gauge gives one (a zero or absent value is not one: a OnePlus 7's ``bms`` reads
``charge_full`` 0 until it has learned), and both are reported.

A charge becomes energy through the pack's nominal voltage:

* ``voltage_min_design``: ACPI laptops report the pack's design (nominal) voltage there, 11.4 V
  for three 3.8 V cells, 14.8 V for four 3.7 V cells. Phone gauges put the cut-off voltage there
  instead (about 3.0-3.4 V for one cell), so a value under ``MIN_NOMINAL_CELL_V`` is not taken.
* ``voltage_max_design`` is never used: it is the full-charge voltage (4.2-4.45 V a cell), some
  10-15% above nominal, and would overstate the energy by as much.
* ``energy_full_design / charge_full_design`` when the gauge gives both.
* Else, for a single cell (``voltage_now`` under 4.6 V), a typical Li-ion nominal of 3.85 V: an
  estimate, and the capacity says so (``measured`` False).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from profiler.platform import sysfs
from profiler.platform.energy.battery import SUPPLY

TYPICAL_CELL_NOMINAL_V = 3.85  # today's phone cells 3.85-3.89 V, older ones 3.7 V
MIN_NOMINAL_CELL_V = 3.5  # below this, voltage_min_design is a cut-off voltage, not a nominal one
MAX_SINGLE_CELL_V = 4.6  # above this, voltage_now is of several cells in series
WH_PER_UWH = 1e-6
J_PER_WH = 3600.0


@dataclass
class PackCapacity:
    """One battery's capacity, in Wh; the figure used is ``full_wh`` when known, else ``design_wh``."""

    name: str
    full_wh: float | None  # today's (worn) capacity: energy_full, or charge_full x voltage
    design_wh: float | None  # the battery new: energy_full_design, or charge_full_design x voltage
    source: str  # which files, e.g. "energy_full (µWh)" or "charge_full (µAh) x voltage_min_design 11.4 V"
    measured: bool  # False when the voltage is a typical nominal, not this battery's own figure
    notes: list[str] = field(default_factory=list)

    @property
    def wh(self) -> float | None:
        return self.full_wh if self.full_wh else self.design_wh


def _positive(path: str) -> int | None:
    value = sysfs.read_int(path)
    return value if value and value > 0 else None


def nominal_voltage(path: str) -> tuple[float | None, str, bool]:
    """(volts, where from, measured) for turning µAh into µWh; None when nothing says it."""
    vmin = _positive(f"{path}/voltage_min_design")
    if vmin and vmin / 1e6 >= MIN_NOMINAL_CELL_V:
        return vmin / 1e6, f"voltage_min_design {vmin / 1e6:g} V (the pack's design voltage)", True
    energy, charge = _positive(f"{path}/energy_full_design"), _positive(f"{path}/charge_full_design")
    if energy and charge:
        return energy / charge, f"energy_full_design / charge_full_design = {energy / charge:.3g} V", True
    now = _positive(f"{path}/voltage_now")
    if now and now / 1e6 < MAX_SINGLE_CELL_V:
        return TYPICAL_CELL_NOMINAL_V, (f"a typical Li-ion cell's nominal {TYPICAL_CELL_NOMINAL_V:g} V (not this "
                                        "battery's own figure: ±4% for 3.7-4.0 V cells)"), False
    return None, "no design voltage and no single-cell voltage_now", False


def pack_capacity(path: str, name: str) -> tuple[PackCapacity | None, str]:
    """The battery's capacity, or None and why."""
    full, design = _positive(f"{path}/energy_full"), _positive(f"{path}/energy_full_design")
    if full or design:
        notes = [] if full else ["energy_full is absent or 0: the capacity is the design one (the battery new)"]
        return PackCapacity(name, full * WH_PER_UWH if full else None, design * WH_PER_UWH if design else None,
                            "energy_full (µWh)" if full else "energy_full_design (µWh)", True, notes), ""
    full, design = _positive(f"{path}/charge_full"), _positive(f"{path}/charge_full_design")
    if not (full or design):
        return None, f"{name} reports no capacity (no energy_full, energy_full_design, charge_full or charge_full_design)"
    volts, basis, measured = nominal_voltage(path)
    if volts is None:
        return None, f"{name} reports its charge in µAh but no voltage to make it energy ({basis})"
    notes = [] if full else ["charge_full is absent or 0 (a gauge that has not learned it): the capacity is the "
                             "design one (the battery new)"]
    which = "charge_full" if full else "charge_full_design"
    return PackCapacity(name, full * volts * WH_PER_UWH if full else None,
                        design * volts * WH_PER_UWH if design else None,
                        f"{which} (µAh) x {basis}", measured, notes), ""


@dataclass
class BatteryCapacity:
    """Every battery's capacity (a ThinkPad may have two), or why there is none."""

    packs: list[PackCapacity] = field(default_factory=list)
    unavailable: str | None = None

    @property
    def wh(self) -> float | None:
        values = [p.wh for p in self.packs]
        return sum(values) if values and None not in values else None

    @property
    def measured(self) -> bool:
        return all(p.measured for p in self.packs)

    @property
    def worn(self) -> bool:
        """Whether the figure is today's (learned) capacity for every pack, not the design one."""
        return bool(self.packs) and all(p.full_wh for p in self.packs)

    def to_dict(self) -> dict:
        return {"capacity_wh": self.wh, "capacity_j": self.wh * J_PER_WH if self.wh else None,
                "basis": "full (today's, worn)" if self.worn else ("design (the battery new)" if self.packs else None),
                "measured": self.measured if self.packs else None, "unavailable": self.unavailable,
                "packs": [asdict(p) for p in self.packs]}

    @classmethod
    def from_dict(cls, data: dict | None) -> BatteryCapacity:
        if not data:
            return cls(unavailable="no battery capacity recorded (a run stored before issue #22)")
        return cls([PackCapacity(**p) for p in data.get("packs") or []], data.get("unavailable"))


def _packs(kind: str) -> tuple[list[PackCapacity], list[str]]:
    packs, reasons = [], []
    for supply in sysfs.glob(f"{SUPPLY}/*"):
        path = f"{SUPPLY}/{supply.name}"
        if (sysfs.read_str(f"{path}/type") or "") != kind:
            continue
        pack, why = pack_capacity(path, supply.name)
        if pack is None:
            reasons.append(why)
        else:
            packs.append(pack)
    return packs, reasons


def read_capacity() -> BatteryCapacity:
    """The capacity of every battery under /sys/class/power_supply. On Qualcomm phones the fuel
    gauge is a separate ``bms`` supply (type BMS) that holds the capacity files the ``battery``
    supply lacks; it is read only when no Battery supply gives a capacity (it is the same cell)."""
    packs, reasons = _packs("Battery")
    if not packs:
        packs, more = _packs("BMS")
        reasons += more if packs or reasons else []
    if packs:
        return BatteryCapacity(packs)
    return BatteryCapacity(unavailable="; ".join(reasons) if reasons else "no battery")
