"""Fixture sysfs trees and recorded command output for the energy and thermal tests."""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

from profiler.platform import sysfs

# /proc/stat of an idle 2-CPU VM: the "cpu" line and two "cpuN" lines.
PROC_STAT = (
    "cpu  1000 0 500 80000 100 0 50 0 0 0\n"
    "cpu0 500 0 250 40000 50 0 25 0 0 0\n"
    "cpu1 500 0 250 40000 50 0 25 0 0 0\n"
    "intr 0\n"
)
SELF_STAT = "4242 (python3 (x)) R 1 1 1 0 -1 0 0 0 0 0 300 45 0 0 20 0 3 0 100 0 0\n"
CPUINFO_VM = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: avx avx2\n\nprocessor\t: 1\nmodel name\t: AMD EPYC\n"

# Recorded `vcgencmd pmic_read_adc` of a Pi 5 (same layout as the firmware prints).
PI5_PMIC = """\
 3V7_WL_SW_A current(0)=0.05000000A
   3V3_SYS_A current(1)=0.10000000A
   1V8_SYS_A current(2)=0.20000000A
  DDR_VDD2_A current(3)=0.10000000A
  DDR_VDDQ_A current(4)=0.00000000A
   1V1_SYS_A current(5)=0.20000000A
    0V8_SW_A current(6)=0.30000000A
  VDD_CORE_A current(7)=1.54489000A
   3V3_DAC_A current(17)=0.00006105A
   3V3_ADC_A current(18)=0.00054945A
   0V8_AON_A current(16)=0.00500000A
      HDMI_A current(22)=0.02000000A
 3V7_WL_SW_V volt(8)=3.70000000V
   3V3_SYS_V volt(9)=3.30000000V
   1V8_SYS_V volt(10)=1.80000000V
  DDR_VDD2_V volt(11)=1.10000000V
  DDR_VDDQ_V volt(12)=0.60000000V
   1V1_SYS_V volt(13)=1.10000000V
    0V8_SW_V volt(14)=0.80000000V
  VDD_CORE_V volt(15)=0.88700000V
   3V3_DAC_V volt(20)=3.30000000V
   3V3_ADC_V volt(21)=3.30000000V
   0V8_AON_V volt(19)=0.80000000V
      HDMI_V volt(23)=5.00000000V
     EXT5V_V volt(24)=5.12832000V
      BATT_V volt(25)=0.00000000V
"""
# Sum of V*I over the twelve rails that report both (EXT5V and BATT have a voltage only).
PI5_PMIC_W = (0.05 * 3.7 + 0.1 * 3.3 + 0.2 * 1.8 + 0.1 * 1.1 + 0.0 * 0.6 + 0.2 * 1.1 + 0.3 * 0.8
              + 1.54489 * 0.887 + 0.00006105 * 3.3 + 0.00054945 * 3.3 + 0.005 * 0.8 + 0.02 * 5.0)


def write_tree(root: Path, files: dict[str, str | int]) -> Path:
    for rel, content in files.items():
        path = root / rel.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{content}\n" if isinstance(content, int) else content)
    return root


def vm_tree(root: Path) -> Path:
    """What this VM shows: CPUs and /proc, no powercap, hwmon, battery or thermal zones."""
    return write_tree(root, {
        "/proc/stat": PROC_STAT,
        "/proc/self/stat": SELF_STAT,
        "/proc/cpuinfo": CPUINFO_VM,
        "/sys/devices/system/cpu/cpu0/topology/core_id": 0,
        "/sys/devices/system/cpu/cpu1/topology/core_id": 1,
    })


def rapl_zone(root: Path, zone: str, name: str, energy_uj: int, max_range_uj: int = 262143328850,
              max_power_uw: int | None = None) -> None:
    base = f"/sys/class/powercap/{zone}"
    files: dict[str, str | int] = {f"{base}/name": f"{name}\n", f"{base}/energy_uj": energy_uj,
                                   f"{base}/max_energy_range_uj": max_range_uj}
    if max_power_uw is not None:
        files[f"{base}/constraint_0_max_power_uw"] = max_power_uw
    write_tree(root, files)


def set_value(root: Path, absolute: str, value: int) -> None:
    (root / absolute.lstrip("/")).write_text(f"{value}\n")


class FakeClock:
    """perf_counter_ns stand-in that only moves when told to."""

    def __init__(self, t_ns: int = 1_000_000_000):
        self.t_ns = t_ns

    def __call__(self) -> int:
        return self.t_ns

    def advance(self, seconds: float) -> int:
        self.t_ns += round(seconds * 1e9)
        return self.t_ns


@contextmanager
def redirected(tmp_path: Path):
    """Send every sysfs read and device command to a fixture root (no commands unless recorded)."""
    sysfs.set_root(tmp_path)
    sysfs.set_command_runner(lambda argv: None)
    try:
        yield tmp_path
    finally:
        sysfs.set_root(None)
        sysfs.set_command_runner(None)
        sysfs.set_mailbox_ioctl(None)


def recorded(outputs: dict[tuple[str, ...], str]):
    """A command runner that answers with recorded output (None for anything else)."""
    return lambda argv: outputs.get(tuple(argv))


def deny_reads(monkeypatch, denied: set[str]) -> None:
    """Make reads of ``denied`` paths fail with EACCES, as for a non-root user on Linux >= 5.10.

    Tests run as root here, and root reads a chmod-000 file anyway, so the denial is done in
    the sysfs layer, which is the one place the readers go through.
    """
    real_error, real_text = sysfs.read_error, sysfs.read_text

    def read_error(absolute: str):
        return PermissionError(13, "Permission denied") if absolute in denied else real_error(absolute)

    def read_text(absolute: str):
        return None if absolute in denied else real_text(absolute)

    monkeypatch.setattr(sysfs, "read_error", read_error)
    monkeypatch.setattr(sysfs, "read_text", read_text)


# --- laptops, as their /sys looks (Linux 6.11+: acpi_fan exposes the fan's power in hwmon) ---

def _laptop_common(root: Path, charging: bool) -> None:
    vm_tree(root)
    write_tree(root, {
        "/sys/class/hwmon/hwmon0/name": "acpitz\n", "/sys/class/hwmon/hwmon0/temp1_input": 48000,
        "/sys/class/hwmon/hwmon1/name": "k10temp\n", "/sys/class/hwmon/hwmon1/temp1_input": 55250,
        "/sys/class/hwmon/hwmon1/temp1_label": "Tctl\n",
        "/sys/class/hwmon/hwmon3/name": "nvme\n", "/sys/class/hwmon/hwmon3/temp1_input": 38850,
        "/sys/class/power_supply/AC/type": "Mains\n", "/sys/class/power_supply/AC/online": int(charging),
        "/sys/class/power_supply/BAT0/type": "Battery\n",
        "/sys/class/power_supply/BAT0/status": "Charging\n" if charging else "Discharging\n",
        "/sys/class/power_supply/BAT0/power_now": 11_250_000,
    })


def acpi_fan(root: Path, hwmon: str = "hwmon2", fan_uw: int = 2_400_000) -> None:
    write_tree(root, {f"/sys/class/hwmon/{hwmon}/name": "acpi_fan\n", f"/sys/class/hwmon/{hwmon}/fan1_input": 2900,
                      f"/sys/class/hwmon/{hwmon}/power1_input": fan_uw})


def laptop_fan_battery(root: Path) -> Path:
    """A Ryzen laptop on battery: acpi_fan's power1_input (the fan) and a discharging BAT0."""
    _laptop_common(root, charging=False)
    acpi_fan(root)
    return root


def laptop_usbc_battery(root: Path) -> Path:
    """A laptop on battery with a USB-C port's hwmon (UCSI) that reports the port's power."""
    _laptop_common(root, charging=False)
    port = "/sys/class/hwmon/hwmon4"
    write_tree(root, {f"{port}/name": "ucsi_source_psy_USBC000:001\n", f"{port}/in0_input": 5000,
                      f"{port}/curr1_input": 3000, f"{port}/power1_input": 15_000_000})
    return root


def laptop_fan_only(root: Path) -> Path:
    """On the charger (the battery does not see the draw) with only the fan's hwmon power."""
    _laptop_common(root, charging=True)
    acpi_fan(root)
    return root


def tracked_row(tracker, windows, label: str, n_prompt: int = 64, n_gen: int = 16) -> SimpleNamespace:
    """A tracker's row fields for ``windows`` as attributes, as they land in a result row; its
    warnings as ``warnings``."""
    fields, warnings, _ = tracker.row_fields(windows, n_prompt, n_gen, label)
    return SimpleNamespace(**fields, warnings=warnings)
