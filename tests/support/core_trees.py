"""Fixture /proc/cpuinfo and /sys cpu trees of big/little and plain devices, written through the
``sysroot`` fixture's writer (tests/conftest.py): RK3588, a Snapdragon 1+3+4 phone, a Raspberry Pi 5
and x86 hybrids."""

from __future__ import annotations


def arm_cpuinfo(parts: list[str]) -> str:
    return "".join(f"processor\t: {i}\nBogoMIPS\t: 48.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n"
                   f"CPU part\t: {part}\n\n" for i, part in enumerate(parts))


def x86_cpuinfo(count: int, model: str) -> str:
    return "".join(f"processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: {model}\nflags\t\t: avx2\n\n"
                   for i in range(count))


def cpus(write, specs: list[tuple[int | None, int | None]]) -> None:
    """One /sys cpu directory per (max kHz, capacity); None leaves that file out."""
    for cpu, (khz, capacity) in enumerate(specs):
        base = f"/sys/devices/system/cpu/cpu{cpu}"
        write(f"{base}/topology/core_id", f"{cpu}\n")
        if khz is not None:
            write(f"{base}/cpufreq/cpuinfo_max_freq", f"{khz}\n")
        if capacity is not None:
            write(f"{base}/cpu_capacity", f"{capacity}\n")


def rk3588(write) -> None:
    """CPUs 0-3 Cortex-A55 @ 1.8 GHz, 4-7 Cortex-A76 @ 2.4 GHz."""
    write("/proc/cpuinfo", arm_cpuinfo(["0xd05"] * 4 + ["0xd0b"] * 4))
    cpus(write, [(1800000, 530)] * 4 + [(2400000, 1024)] * 4)


def snapdragon_1_3_4(write) -> None:
    """CPUs 0-3 Cortex-A55, 4-6 Cortex-A78, 7 Cortex-X1 (the prime core)."""
    write("/proc/cpuinfo", arm_cpuinfo(["0xd05"] * 4 + ["0xd41"] * 3 + ["0xd44"]))
    cpus(write, [(1804800, 250)] * 4 + [(2419200, 870)] * 3 + [(2841600, 1024)])


def pi5(write) -> None:
    """CPUs 0-3 Cortex-A76 @ 2.4 GHz: one cluster."""
    write("/proc/cpuinfo", arm_cpuinfo(["0xd0b"] * 4))
    cpus(write, [(2400000, 1024)] * 4)


def x86_hybrid(write) -> None:
    """CPUs 0-3 P-cores (cpu1 a favoured core 4% faster), 4-11 E-cores."""
    write("/proc/cpuinfo", x86_cpuinfo(12, "13th Gen Intel(R) Core(TM) i7-1360P"))
    cpus(write, [(5000000, None), (5200000, None), (5000000, None), (5000000, None)] + [(3700000, None)] * 8)
