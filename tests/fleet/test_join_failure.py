"""A failed join is one line that names its cause, and under qemu-user says why it cannot work."""

from __future__ import annotations

import platform

import pytest

from profiler.fleet.connection import join_failure
from profiler.platform import device
from support.core_trees import arm_cpuinfo, x86_cpuinfo
from support.emulation import skip_ray_under_emulation

X86_CPUINFO = x86_cpuinfo(1, "Intel(R) Xeon(R)")
ARM_CPUINFO = arm_cpuinfo(["0xd0b"])


def _ray_style_failure() -> ConnectionError:
    """The chain ray.init raises when its driver finds no raylet of its own node (Ray 2.60)."""
    try:
        try:
            raise RuntimeError("No node info found matching attributes: '' when trying to resolve node to connect to.")
        except RuntimeError as cause:
            raise ConnectionError("Failed to connect to Ray cluster at 127.0.0.2:6379") from cause
    except ConnectionError as exc:
        return exc


def test_the_chained_cause_is_kept_in_the_one_line(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", ARM_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # a real arm64 board: nothing contradicts
    text = join_failure("127.0.0.2:6379", _ray_style_failure())
    assert text == ("cannot join the Ray cluster at 127.0.0.2:6379: Failed to connect to Ray cluster at "
                    "127.0.0.2:6379 (No node info found matching attributes: '' when trying to resolve node to "
                    "connect to.)")
    assert "\n" not in text


def test_under_emulation_the_line_says_the_fleet_cannot_run_there(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", X86_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")  # qemu-user: the host's x86 /proc/cpuinfo
    assert device.emulation_note()
    text = join_failure("127.0.0.2:6379", _ray_style_failure())
    assert text.endswith("; this machine looks emulated (qemu-user), where Ray's driver cannot find its own "
                         "node's raylet: run the fleet on the device itself, not under emulation")
    assert "\n" not in text


def test_a_failure_without_a_cause_is_ray_s_own_line(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", X86_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert device.emulation_note() is None
    assert join_failure("h:1", ValueError("token mismatch\nmore")) == "cannot join the Ray cluster at h:1: token mismatch"


def test_ray_tests_are_skipped_only_under_emulation(sysroot, monkeypatch):
    sysroot("/proc/cpuinfo", X86_CPUINFO)
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    skip_ray_under_emulation()  # a native machine: no skip
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(pytest.skip.Exception, match="Ray cannot join a cluster under emulation"):
        skip_ray_under_emulation()
