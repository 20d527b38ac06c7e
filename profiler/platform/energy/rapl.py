"""Linux powercap / RAPL energy counters (Intel, and AMD Zen, which uses the same names).

Choice: ``psys`` (the whole platform) if there is one, else every ``package-N`` plus every
``dram`` zone. Zones are never added to a zone that contains them: core (PP0) and uncore
(PP1) are inside their package, and psys contains everything. DRAM is the exception that
sysfs hides: the kernel lists it under the package zone on many servers, but the RAPL DRAM
domain is powered and counted apart from PKG, so it is added.

Counters wrap at ``max_energy_range_uj``; each zone is unwrapped on its own, and the
poller reads often enough (``max_interval_s``) that no counter can wrap twice unseen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

POWERCAP = "/sys/class/powercap"
RATE_HZ = 20.0  # the idle baseline's rate; during tests the counters are read at window edges
# The hardware updates the energy status about every millisecond: a window is resolved to that.
COUNTER_RESOLUTION_S = 0.001
# A wrap every max_range/P seconds; if the zone states no power limit assume this much.
ASSUMED_MAX_POWER_W = 500.0
PERMISSION_FIX = (
    "energy_uj is readable by root only since Linux 5.10 (PLATYPUS side channel); allow it with "
    "'sudo chmod o+r /sys/class/powercap/intel-rapl:*/energy_uj' (until reboot) or a udev rule such as "
    'ACTION=="add", SUBSYSTEM=="powercap", RUN+="/bin/chmod o+r /sys%p/energy_uj" '
    "in /etc/udev/rules.d/60-powercap.rules (see docs/energy.md)"
)


@dataclass
class Zone:
    path: str  # absolute, e.g. /sys/class/powercap/intel-rapl:0
    zone_id: str  # "intel-rapl:0" or "intel-rapl:0:2"
    name: str  # "package-0", "psys", "core", "uncore", "dram"
    max_range_uj: int | None
    max_power_w: float | None

    @property
    def top_level(self) -> bool:
        return self.zone_id.count(":") == 1

    @property
    def parent_id(self) -> str | None:
        return None if self.top_level else self.zone_id.rsplit(":", 1)[0]


def discover() -> list[Zone]:
    zones = []
    for found in sysfs.glob(f"{POWERCAP}/intel-rapl:*"):
        if not re.fullmatch(r"intel-rapl(:\d+)+", found.name):
            continue
        path = f"{POWERCAP}/{found.name}"
        limit_uw = sysfs.read_int(f"{path}/constraint_0_max_power_uw")
        zones.append(Zone(
            path=path,
            zone_id=found.name,
            name=sysfs.read_str(f"{path}/name") or found.name,
            max_range_uj=sysfs.read_int(f"{path}/max_energy_range_uj"),
            max_power_w=limit_uw / 1e6 if limit_uw else None,
        ))
    return zones


class RaplSource(EnergySource):
    """The sum of some zones' unwrapped counters, in joules since open()."""

    cumulative = True

    def __init__(self, zones: list[Zone]):
        self.zones = zones
        label = "+".join(z.name for z in zones)
        scope = "soc" if any(z.name == "psys" for z in zones) else "package"
        self.provenance = Provenance(
            source=f"rapl:{label}", method="counter", scope=scope, measured=True,
            rate_hz=RATE_HZ, system_wide=True, resolution_s=COUNTER_RESOLUTION_S,
            notes=[f"zones: {', '.join(z.zone_id + ' ' + z.name for z in zones)}"],
        )
        self.max_interval_s = min(wrap_period_s(z) for z in zones) / 4
        self._last: dict[str, int] = {}
        self._total_uj = 0

    def open(self) -> None:
        self._last = {}
        self._total_uj = 0

    def read(self, t_ns: int) -> float | None:
        raws = {}
        for zone in self.zones:
            raw = sysfs.read_int(f"{zone.path}/energy_uj")
            if raw is None:
                return None
            raws[zone.zone_id] = raw
        for zone in self.zones:
            last = self._last.get(zone.zone_id)
            if last is not None:
                self._total_uj += unwrap_delta(last, raws[zone.zone_id], zone.max_range_uj)
            self._last[zone.zone_id] = raws[zone.zone_id]
        return self._total_uj / 1e6


def unwrap_delta(last_uj: int, now_uj: int, max_range_uj: int | None) -> int:
    """Energy between two reads of one counter; a smaller reading means it wrapped once."""
    if now_uj >= last_uj:
        return now_uj - last_uj
    if not max_range_uj:
        return 0  # cannot undo the wrap; discover() never chooses such a zone
    return now_uj + max_range_uj - last_uj


def wrap_period_s(zone: Zone) -> float:
    """Shortest time in which the counter can wrap: its range at the highest power it may draw."""
    power = zone.max_power_w or ASSUMED_MAX_POWER_W
    return (zone.max_range_uj or 0) / 1e6 / power if zone.max_range_uj else 1.0


def _readable(zone: Zone) -> str | None:
    """None when energy_uj reads, else the reason (with the fix for a permission error)."""
    error = sysfs.read_error(f"{zone.path}/energy_uj")
    if isinstance(error, PermissionError):
        return f"{zone.zone_id} ({zone.name}): permission denied; {PERMISSION_FIX}"
    if error is not None:
        return f"{zone.zone_id} ({zone.name}): energy_uj unreadable ({error.strerror or error})"
    if sysfs.read_int(f"{zone.path}/energy_uj") is None:
        return f"{zone.zone_id} ({zone.name}): energy_uj is not a number"
    if not zone.max_range_uj:
        return f"{zone.zone_id} ({zone.name}): no max_energy_range_uj, so a wrap could not be undone"
    return None


def probe() -> list[Candidate]:
    zones = discover()
    if not zones:
        return [skipped("rapl", f"no {POWERCAP}/intel-rapl:* zones (not an Intel/AMD CPU with the "
                        "intel_rapl driver loaded, or a VM that hides RAPL)", "counter", "package")]
    denied = {z.zone_id: _readable(z) for z in zones}
    chosen = _choose(zones, denied)
    if chosen is None:
        reasons = [r for r in denied.values() if r] or ["no psys or package-N zone"]
        return [skipped("rapl", "; ".join(dict.fromkeys(reasons)), "counter", "package")]
    return _report(zones, RaplSource(chosen[0]), chosen[1], denied)


def _choose(zones: list[Zone], denied: dict) -> tuple[list[Zone], str] | None:
    """psys alone; else every package (all must read) plus the DRAM zones that read."""
    psys = [z for z in zones if z.name == "psys" and z.top_level and denied[z.zone_id] is None]
    if psys:
        return psys, "psys covers the whole platform (SoC, DRAM and more)"
    packages = [z for z in zones if z.name.startswith("package") and z.top_level]
    if not packages or any(denied[z.zone_id] for z in packages):
        return None
    drams = [z for z in zones if z.name == "dram" and denied[z.zone_id] is None]
    why = "no psys zone; package" + (" + DRAM (its own RAPL domain, not part of PKG)" if drams else "")
    return packages + drams, why


def _report(zones: list[Zone], source: RaplSource, why: str, denied: dict) -> list[Candidate]:
    used = {z.zone_id for z in source.zones}
    found = [usable(source, f"readable counters; {why}")]
    for zone in zones:
        if zone.zone_id in used:
            continue
        if denied[zone.zone_id]:
            reason = denied[zone.zone_id]
        elif zone.parent_id in used or zone.name in ("core", "uncore"):
            reason = f"nested inside {zone.parent_id or 'the package'}; nested domains are never added"
        else:
            reason = f"{source.provenance.source} already includes it; domains are never added twice"
        found.append(skipped(f"rapl:{zone.zone_id} {zone.name}", reason, "counter", "package"))
    return found
