"""Raspberry Pi 5 PMIC rails through ``vcgencmd pmic_read_adc``.

The command prints one line per ADC channel, e.g. ``VDD_CORE_A current(7)=1.54489000A``
and ``VDD_CORE_V volt(15)=0.88700000V``. Power is the sum of V * I over the rails that
report both; rails with a voltage only (EXT5V, BATT) are left out. The rails are the
PMIC's outputs: the 5 V input stage, USB devices and the fan are not in them.
"""

from __future__ import annotations

import re

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

COMMAND = ("vcgencmd", "pmic_read_adc")
RATE_HZ = 5.0  # each read is a subprocess of a few ms
LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=\s*([-+0-9.eE]+)\s*[AV]\s*$")


def parse_rails(text: str | None) -> dict[str, tuple[float, float]]:
    """rail -> (volts, amps) for the rails with both readings."""
    amps: dict[str, float] = {}
    volts: dict[str, float] = {}
    for line in (text or "").splitlines():
        match = LINE.match(line)
        if not match:
            continue
        rail, kind, value = match.group(1), match.group(2), float(match.group(3))
        (amps if kind == "A" else volts)[rail] = value
    return {rail: (volts[rail], amps[rail]) for rail in amps if rail in volts}


def rails_watts(rails: dict[str, tuple[float, float]]) -> float:
    return sum(v * a for v, a in rails.values())


class PiPmicSource(EnergySource):
    cumulative = False

    def __init__(self, rails: list[str]):
        self.provenance = Provenance(
            source="pi5-pmic", method="sampled", scope="board-rails", measured=True, rate_hz=RATE_HZ,
            system_wide=True, resolution_s=1 / RATE_HZ,
            notes=[f"sum of V*I over {len(rails)} PMIC rails ({', '.join(rails)}); the 5 V input stage, "
                   "USB and fan are outside them, so wall power is higher"],
        )

    def read(self, t_ns: int) -> float | None:
        rails = parse_rails(sysfs.run_command(COMMAND))
        return rails_watts(rails) if rails else None


def probe() -> list[Candidate]:
    output = sysfs.run_command(COMMAND)
    if output is None:
        return [skipped("pi5-pmic", "vcgencmd not found or pmic_read_adc failed (not a Raspberry Pi, "
                        "or vcgencmd not in PATH)", "sampled", "board-rails")]
    rails = parse_rails(output)
    if not rails:
        return [skipped("pi5-pmic", "pmic_read_adc reported no rail with both current and voltage "
                        "(Pi 4 and older have no PMIC ADC; update the firmware on a Pi 5)", "sampled", "board-rails")]
    return [usable(PiPmicSource(sorted(rails)), f"{len(rails)} rails report current and voltage")]
