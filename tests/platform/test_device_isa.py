"""ISA flags that contradict the architecture (qemu-user, containers) are named, not printed as the device's."""

from __future__ import annotations

import platform

from profiler.platform import device
from profiler.platform.device import Device, foreign_isa

X86_CPUINFO = ("processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n"
               "flags\t\t: fpu sse avx avx2 f16c fma\n\n")
ARM_CPUINFO = ("processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd asimddp\nCPU implementer\t: 0x41\n"
               "CPU part\t: 0xd0b\n\n")


def test_x86_flags_on_aarch64_are_dropped_and_explained(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", X86_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    fp = device.fingerprint()
    assert fp.isa == []
    assert len(fp.notes) == 1
    assert "x86 features (AVX AVX2 F16C FMA) on an aarch64 machine" in fp.notes[0]
    assert "emulation (qemu-user) or a container" in fp.notes[0]
    assert "ISA unknown" in fp.summary()
    assert Device.from_dict(fp.to_dict()).notes == fp.notes


def test_matching_flags_are_kept_without_a_note(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", ARM_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    fp = device.fingerprint()
    assert fp.isa == ["DOTPROD", "NEON"]
    assert fp.notes == []


def test_arm_features_on_x86_are_foreign_too():
    assert foreign_isa("x86_64", ["AVX2", "NEON"])[0] == ["AVX2"]
    assert foreign_isa("riscv64", ["AVX2"]) == (["AVX2"], [])  # an architecture we do not classify: kept


def test_devices_stored_before_notes_still_load(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", ARM_CPUINFO)
    data = device.fingerprint().to_dict()
    del data["notes"]
    assert Device.from_dict(data).notes == []
