"""Raspberry Pi 5 PMIC rails, read through the firmware mailbox (``vcgencmd`` as the fallback).

The firmware's ``pmic_read_adc`` answers one line per ADC channel, e.g.
``VDD_CORE_A current(7)=1.54489000A`` and ``VDD_CORE_V volt(15)=0.88700000V``. It is fetched
with the same mailbox message ``vcgencmd`` sends (``sysfs.gencmd``: one persistent /dev/vcio
descriptor, no process per sample) and, where the mailbox cannot be opened, by running
``vcgencmd pmic_read_adc``; both answers go through the one parser below.

Power is the sum of V * I over the rails that report both; rails with a voltage only (EXT5V,
BATT) are left out. The rails are the PMIC's outputs: the 5 V input stage, USB devices and the
fan are not in them. Within them, each reading is also split into groups (``GROUPS``):
CPU = ``VDD_CORE``, DRAM = ``DDR_VDD2`` + ``DDR_VDDQ``, and ``total-pmic`` = every rail.
"""

from __future__ import annotations

import re

from profiler.platform import sysfs
from profiler.platform.energy.base import Candidate, EnergySource, Provenance, skipped, usable

COMMAND = ("vcgencmd", "pmic_read_adc")
GENCMD = "pmic_read_adc"
# 10 Hz: a read costs the firmware about 23 ms of ADC time (Zeus measured 22.6 ms per mailbox read
# on a Pi 5), so a faster poll takes time from the workload; without a fork it is cheap for us.
RATE_HZ = 10.0
LINE = re.compile(r"^\s*(\S+)_([AV])\s+(?:current|volt)\(\d+\)=\s*([-+0-9.eE]+)\s*[AV]\s*$")
TOTAL = "total-pmic"
# group -> rails, and where each group's figure comes from (shown with the results)
GROUPS: dict[str, tuple[str, ...]] = {"cpu": ("VDD_CORE",), "dram": ("DDR_VDD2", "DDR_VDDQ")}
GROUP_PROVENANCE = {
    "cpu": "VDD_CORE, the SoC core rail (CPU cores plus the rest of the SoC core logic), PMIC ADC V*I",
    "dram": "DDR_VDD2 + DDR_VDDQ, the LPDDR4X supply rails, PMIC ADC V*I; both read 0 A at idle "
            "(the ADC's floor, not the rail's draw), so a light load is under-counted",
    TOTAL: "every PMIC rail with both current and voltage (12 on a Pi 5 Model B)",
}
OUTSIDE = "the 5 V input stage, USB devices and the fan are outside every group, so wall power is higher"
# what vcgencmd prints when the user cannot open the firmware device (old userland, new raspberrypi/utils)
NO_ACCESS = ("VCHI initialization failed", "Can't open device file")
TRANSPORT_NOTE = {
    "mailbox": "read through the firmware mailbox (/dev/vcio ioctl, one open descriptor, no process per sample)",
    "vcgencmd": "read by running 'vcgencmd pmic_read_adc' (a process per sample)",
}


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


def group_watts(rails: dict[str, tuple[float, float]]) -> dict[str, float]:
    """Watts per group; a group none of whose rails this board reports is left out, never 0."""
    found = {name: rails_watts({r: rails[r] for r in members if r in rails})
             for name, members in GROUPS.items() if any(r in rails for r in members)}
    return {**found, TOTAL: rails_watts(rails)}


def read_pmic() -> sysfs.Gencmd:
    """``pmic_read_adc`` through the mailbox, else vcgencmd."""
    return sysfs.gencmd(GENCMD)


class PiPmicSource(EnergySource):
    cumulative = False

    def __init__(self, rails: list[str], transport: str = "vcgencmd", why_not_mailbox: str | None = None):
        self.transport = transport
        how = TRANSPORT_NOTE.get(transport, transport)
        if transport != "mailbox" and why_not_mailbox:
            how += f"; the mailbox was not used: {why_not_mailbox}"
        groups = "; ".join(f"{name}: {text}" for name, text in GROUP_PROVENANCE.items())
        self.provenance = Provenance(
            source="pi5-pmic", method="sampled", scope="board-rails", measured=True, rate_hz=RATE_HZ,
            system_wide=True, resolution_s=1 / RATE_HZ, transport=transport,
            notes=[f"sum of V*I over {len(rails)} PMIC rails ({', '.join(rails)}); {OUTSIDE}", how,
                   f"groups in energy_detail.groups: {groups}"],
        )
        self._parts: dict[str, float] | None = None

    def read(self, t_ns: int) -> float | None:
        rails = parse_rails(read_pmic().text)
        self._parts = group_watts(rails) if rails else None
        return self._parts[TOTAL] if self._parts else None

    def last_parts(self) -> dict[str, float] | None:
        return self._parts


def _no_pmic_reason(reply: sysfs.Gencmd, board: str | None) -> str:
    """Why there are no rails: a board without the PMIC ADC, no access to the firmware, or old firmware."""
    board = board or ""
    rejected = reply.error or "error_msg" in (reply.text or "")
    is_pi5 = "Raspberry Pi 5" in board or "Compute Module 5" in board
    if not is_pi5 and (rejected or board.startswith("Raspberry Pi")):
        return (f"the firmware has no PMIC ADC to read on '{board or 'this board'}' (Pi 4 and older have none); "
                "the published board estimate is used instead, labelled (est.)")
    if rejected:
        return (f"the firmware rejected pmic_read_adc ({(reply.text or '').strip()}); "
                "update the firmware (sudo apt full-upgrade)")
    if reply.text is not None and any(m in reply.text for m in NO_ACCESS):
        return (f"vcgencmd cannot reach the firmware ({reply.text.strip()}): add your user to the video group "
                "(sudo usermod -aG video $USER, then log in again)")
    if reply.text is None:
        where = reply.mailbox_problem or "no firmware mailbox"
        return (f"no answer from the firmware: {where}; and vcgencmd is not in PATH or failed "
                "(not a Raspberry Pi, or not in the video group)")
    return "pmic_read_adc reported no rail with both current and voltage (update the firmware on a Pi 5)"


def _group_candidates(source: PiPmicSource, rails: dict[str, tuple[float, float]]) -> list[Candidate]:
    """The CPU and DRAM groups, listed like RAPL's nested zones: inside the total, never added to it."""
    watts = group_watts(rails)
    found = []
    for name, members in GROUPS.items():
        present = [r for r in members if r in rails]
        label = f"pi5-pmic:{name} {'+'.join(members)}"
        if not present:
            found.append(skipped(label, "this PMIC reports none of these rails", "sampled", "board-rails"))
            continue
        found.append(skipped(label, f"inside pi5-pmic ({TOTAL}); a group is reported per test in "
                             f"energy_detail.groups, never added; {watts[name]:.2f} W at the probe",
                             "sampled", "board-rails"))
    return found


def probe(board: str | None = None) -> list[Candidate]:
    if board is None:
        board = sysfs.read_str("/proc/device-tree/model") or None
    reply = read_pmic()
    rails = parse_rails(reply.text) if not reply.error else {}
    if not rails:
        return [skipped("pi5-pmic", _no_pmic_reason(reply, board), "sampled", "board-rails")]
    source = PiPmicSource(sorted(rails), reply.transport, reply.mailbox_problem)
    reason = f"{len(rails)} rails report current and voltage, {TRANSPORT_NOTE[reply.transport]}"
    return [usable(source, reason)] + _group_candidates(source, rails)
