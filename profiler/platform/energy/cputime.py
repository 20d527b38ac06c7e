"""CPU time from /proc: this process's, and the whole machine's busy time.

Both feed two things: the utilisation models (energy from busy CPU-seconds) and the
attribution of a system-wide energy figure to this process,
``E_proc = E_domain * d(proc CPU time) / d(busy CPU time)``. Both counters are read
in clock ticks from /proc, so their ratio has no unit mismatch.
"""

from __future__ import annotations

import os

from profiler.platform import sysfs


def clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK")) or 100
    except (ValueError, OSError, AttributeError):
        return 100


def parse_proc_stat(text: str | None) -> tuple[int, int] | None:
    """(busy ticks summed over all CPUs, number of CPUs) from /proc/stat.

    Busy is user + nice + system + irq + softirq. Idle and iowait are not busy; steal is
    time the hypervisor gave to someone else, and guest time is already inside user.
    """
    if not text:
        return None
    busy, n_cpus = None, 0
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "cpu" and len(parts) >= 8:
            busy = _busy_ticks(parts)
        elif parts[0].startswith("cpu") and parts[0][3:].isdigit():
            n_cpus += 1
    if busy is None:
        return None
    return busy, max(n_cpus, 1)


def _busy_ticks(parts: list[str]) -> int:
    """Busy ticks of one /proc/stat cpu line split into fields: user + nice + system + irq + softirq."""
    user, nice, system, _idle, _iowait, irq, softirq = (int(x) for x in parts[1:8])
    return user + nice + system + irq + softirq


def parse_per_cpu_busy(text: str | None) -> dict[str, int]:
    """Busy ticks of each CPU (``"0"``, ``"1"``, ...) from /proc/stat's cpuN lines, busy as above."""
    busy = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 8 and parts[0].startswith("cpu") and parts[0][3:].isdigit():
            busy[parts[0][3:]] = _busy_ticks(parts)
    return busy


def per_cpu_busy_s() -> dict[str, float]:
    """Busy CPU-seconds of each CPU since boot (empty when /proc/stat cannot be read)."""
    ticks = clock_ticks()
    return {cpu: n / ticks for cpu, n in parse_per_cpu_busy(sysfs.read_text("/proc/stat")).items()}


def parse_self_stat(text: str | None) -> int | None:
    """utime + stime ticks of the process from /proc/self/stat (all its threads)."""
    if not text or ")" not in text:
        return None
    # The command name may contain spaces and parentheses: split after the last ")".
    fields = text.rsplit(")", 1)[1].split()
    try:
        return int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5)
    except (IndexError, ValueError):
        return None


def busy_cpu_s() -> float | None:
    """Busy CPU-seconds of the whole machine since boot."""
    parsed = parse_proc_stat(sysfs.read_text("/proc/stat"))
    return parsed[0] / clock_ticks() if parsed else None


def cpu_count() -> int | None:
    parsed = parse_proc_stat(sysfs.read_text("/proc/stat"))
    return parsed[1] if parsed else None


def process_cpu_s(pid: int | None = None) -> float | None:
    """CPU-seconds a process has used, all threads (llama.cpp's workers included): this one by
    default, or ``pid`` (the monitor process reads the measured process's from outside it)."""
    ticks = parse_self_stat(sysfs.read_text(f"/proc/{pid if pid is not None else 'self'}/stat"))
    if ticks == 0 and pid is None:
        # qemu-user writes its own /proc/self/stat with every CPU time 0 (scripts/arm64-root); a
        # process that has started Python has used ticks, so ask the kernel with times(2) instead.
        own = os.times()
        return own.user + own.system
    return ticks / clock_ticks() if ticks is not None else None
