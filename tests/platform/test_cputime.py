"""This process's CPU time, also where /proc/self/stat is written by an emulator (qemu-user)."""

from __future__ import annotations

import os
import time

from profiler.platform.energy import cputime
from support.energy_fixtures import SELF_STAT

# What qemu-user returns for /proc/self/stat: pid, name, state and a few more; every CPU time 0.
QEMU_SELF_STAT = "4242 (python3) R 1 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 100 0 0\n"


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_a_real_stat_is_read_in_ticks(sysroot):
    sysroot("/proc/self/stat", SELF_STAT)  # utime 300 + stime 45 ticks
    assert cputime.process_cpu_s() == 345 / cputime.clock_ticks()


def test_an_emulator_s_zero_cpu_times_give_way_to_the_kernel_s(sysroot):
    sysroot("/proc/self/stat", QEMU_SELF_STAT)
    _spin(0.05)
    own = os.times()
    read = cputime.process_cpu_s()
    assert read >= 0.05 and read >= own.user + own.system


def test_another_process_s_zero_is_kept(sysroot):
    sysroot("/proc/77/stat", QEMU_SELF_STAT)  # a process that has not run yet: its 0 is true
    assert cputime.process_cpu_s(77) == 0.0
