"""Device fingerprint and memory readings from fixture /proc and /sys trees."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from profiler.measure import memory
from profiler.platform import device, sysfs

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Core(TM) i7-1185G7 @ 3.00GHz
flags\t\t: fpu sse sse2 avx avx2 fma f16c avx512f avx512_vnni

processor\t: 1
model name\t: Intel(R) Core(TM) i7-1185G7 @ 3.00GHz
flags\t\t: fpu sse sse2 avx avx2 fma f16c avx512f avx512_vnni
"""

PI5_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer\t: 0x41
CPU part\t: 0xd0b

Revision\t: d04170
Model\t\t: Raspberry Pi 5 Model B Rev 1.0
"""


def _topology(write, cpu: int, core: int, package: int = 0) -> None:
    write(f"/sys/devices/system/cpu/cpu{cpu}/topology/core_id", f"{core}\n")
    write(f"/sys/devices/system/cpu/cpu{cpu}/topology/physical_package_id", f"{package}\n")


def test_x86_laptop_fingerprint(sysroot, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")  # the fixture is an x86 laptop's, whatever runs the test
    sysroot("/proc/cpuinfo", X86_CPUINFO)
    for cpu, core in enumerate([0, 1, 0, 1]):  # 2 cores with hyper-threading
        _topology(sysroot, cpu, core)
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "1280K"), (3, "Unified", "12288K")]):
        base = f"/sys/devices/system/cpu/cpu0/cache/index{index}"
        sysroot(f"{base}/level", f"{level}\n")
        sysroot(f"{base}/type", f"{kind}\n")
        sysroot(f"{base}/size", f"{size}\n")
    sysroot("/proc/meminfo", "MemTotal:       16000000 kB\nMemFree: 1 kB\nMemAvailable:    8000000 kB\n")
    sysroot("/etc/os-release", 'NAME="Debian"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    sysroot("/proc/sys/kernel/osrelease", "6.1.0-13-amd64\n")
    fp = device.fingerprint()
    assert fp.cpu_model == "Intel(R) Core(TM) i7-1185G7 @ 3.00GHz"
    assert (fp.physical_cores, fp.logical_cores) == (2, 4)
    assert fp.isa == ["AVX", "AVX2", "AVX512", "AVX512_VNNI", "F16C", "FMA"]
    assert fp.caches == {"L1d": 48 * 1024, "L1i": 32 * 1024, "L2": 1280 * 1024, "L3": 12 * 2**20}
    assert fp.ram_total_bytes == 16000000 * 1024 and fp.ram_available_bytes == 8000000 * 1024
    assert fp.os == "Debian GNU/Linux 12 (bookworm)" and fp.kernel == "6.1.0-13-amd64"
    assert fp.board is None


def test_raspberry_pi_5_fingerprint(sysroot, monkeypatch):
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # the fixture is an aarch64 board's
    sysroot("/proc/cpuinfo", PI5_CPUINFO)
    for cpu in range(4):
        _topology(sysroot, cpu, cpu)
    sysroot("/proc/device-tree/model", "Raspberry Pi 5 Model B Rev 1.0\x00")
    fp = device.fingerprint()
    assert fp.board == "Raspberry Pi 5 Model B Rev 1.0"
    assert fp.cpu_model == "Raspberry Pi 5 Model B Rev 1.0"
    assert fp.isa == ["DOTPROD", "FP16", "NEON"]
    assert fp.physical_cores == fp.logical_cores == 4
    assert "Raspberry Pi 5" in fp.summary()


def test_bandwidth_probe_reports_a_positive_rate():
    result = device.measure_bandwidth(buffer_bytes=8 * 2**20, threads=2, repeats=2, caches={"L3": 2**20})
    assert result["read_gbps"] > 0 and result["buffer_bytes"] == 8 * 2**20 and result["threads"] == 2


def test_memory_snapshot_from_proc(sysroot):
    sysroot("/proc/self/status", "Name: python\nVmHWM:\t  300000 kB\nVmRSS:\t  250000 kB\n")
    sysroot("/proc/self/smaps_rollup", "Rss: 250000 kB\nPss:  200000 kB\nPrivate_Clean: 1000 kB\nPrivate_Dirty: 99000 kB\n")
    snap = memory.snapshot()
    assert snap.peak_rss_bytes == 300000 * 1024 and snap.rss_bytes == 250000 * 1024
    assert snap.pss_bytes == 200000 * 1024 and snap.uss_bytes == 100000 * 1024
    assert snap.peak_method == "VmHWM"


def test_memory_without_smaps_rollup_says_none(sysroot):
    sysroot("/proc/self/status", "VmHWM: 10 kB\nVmRSS: 5 kB\n")
    snap = memory.snapshot()
    assert snap.pss_bytes is None and snap.uss_bytes is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")
def test_peak_reset_really_lowers_vmhwm():
    """On the real kernel, not a fixture: a freed 96 MiB block leaves the high-water mark up;
    the reset brings it back down to the current RSS."""
    try:  # asked of the kernel directly: a broken reset in the product must still fail here
        Path("/proc/self/clear_refs").write_text("5")
    except OSError as exc:
        pytest.skip(f"this kernel refuses the VmHWM reset: {exc}")
    block = np.ones(96 * 2**20 // 8)  # every page written: all resident
    del block
    before = memory.proc_status()
    assert before["VmHWM"] >= before["VmRSS"] + 64 * 2**20
    assert memory.reset_peak_checked() is None
    assert memory.proc_status()["VmHWM"] <= before["VmHWM"] - 64 * 2**20


def test_command_runner_is_injectable(sysroot):
    sysfs.set_command_runner(lambda argv: "throttled=0x0\n" if argv[0] == "vcgencmd" else None)
    assert sysfs.run_command(["vcgencmd", "get_throttled"]) == "throttled=0x0\n"
    assert sysfs.run_command(["tegrastats"]) is None
