"""Which CPUs a measurement runs on: llama-bench's ``-C/--cpu-mask`` and ``--cores big|little|all|N-M``.

A mask is llama-bench's (llama.cpp common's ``parse_cpu_mask``): hexadecimal, bit i = CPU i, the
``0x`` optional, at most 128 digits (512 CPUs, GGML_MAX_N_THREADS); ``0x0`` is llama-bench's
default and means no placement (any CPU the process may use). ``--cores`` names CPUs by core
cluster (platform/cores.py): ``big`` the performance cores (every cluster that is not an Arm efficiency design, else the
fastest cluster), ``little`` the efficiency cores, ``all``
every CPU, and ``N-M`` / ``N-M,K`` / ``N`` a CPU list; each resolves to a mask.

The placement is applied with ``sched_setaffinity`` to every thread of the measuring process
(llama.cpp's and OpenMP's workers included, and the threads they start later inherit it) and
checked with ``sched_getaffinity``: what a row records is what the kernel reports, not what
was asked.
"""

from __future__ import annotations

import os
import re
import string

from profiler.errors import UserError
from profiler.platform import sysfs
from profiler.platform.cores import CoreClusters

NO_MASK = "0x0"  # llama-bench's default: no placement
MAX_MASK_DIGITS = 128  # llama.cpp reads at most 128 hex digits (GGML_MAX_N_THREADS = 512 CPUs)
CORE_NAMES = ("big", "little", "all")


def is_placed(mask: str | None) -> bool:
    """Whether a row's or test's mask is a placement (None: a row stored before placements)."""
    return mask not in (None, NO_MASK)


def parse_cpu_mask(text: str) -> list[int]:
    """The CPU ids a llama-bench mask selects, ascending; ``0x0`` selects none (no placement)."""
    raw = text.strip()
    digits = raw[2:] if raw[:2].lower() == "0x" else raw
    if not digits or any(c not in string.hexdigits for c in digits):
        raise UserError(f"-C/--cpu-mask '{text}' is not a hex CPU mask (bit i = CPU i: 0x1 is CPU 0, 0x3 CPUs 0-1)")
    if len(digits) > MAX_MASK_DIGITS:
        raise UserError(f"-C/--cpu-mask '{text}' has {len(digits)} hex digits; llama.cpp reads at most "
                        f"{MAX_MASK_DIGITS} ({MAX_MASK_DIGITS * 4} CPUs)")
    value = int(digits, 16)
    return [cpu for cpu in range(value.bit_length()) if value >> cpu & 1]


def format_cpu_mask(cpus: list[int]) -> str:
    """The canonical mask of ``cpus`` (lower-case hex with 0x, as llama-bench prints it)."""
    return hex(sum(1 << cpu for cpu in set(cpus)))


def cpu_list_text(cpus: list[int]) -> str:
    """``[0, 1, 2, 3, 6]`` -> ``0-3,6`` (the kernel's cpulist format)."""
    parts, ordered = [], sorted(set(cpus))
    start = prev = None
    for cpu in [*ordered, None]:
        if cpu is not None and prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = cpu
    return ",".join(parts)


def _cpu_list(text: str) -> list[int] | None:
    """``N``, ``N-M`` and comma lists of them; None when ``text`` is not that."""
    cpus: list[int] = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            return None
        first, last = int(match.group(1)), int(match.group(2) or match.group(1))
        if last < first:
            raise UserError(f"--cores '{text}': range {first}-{last} runs backwards")
        cpus.extend(range(first, last + 1))
    return sorted(set(cpus))


def split_cores(text: str) -> list[str]:
    """One --cores argument as sweep values: names split at commas, a CPU list kept whole
    (``big,little`` -> two values, ``0-3,6`` -> one; repeat --cores for two CPU lists)."""
    values: list[str] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        numeric = part[0].isdigit()
        if numeric and values and values[-1][0].isdigit():
            values[-1] += f",{part}"
        else:
            values.append(part)
    return values


def known_cpus(clusters: CoreClusters | None, logical_cores: int) -> list[int]:
    """This device's CPU ids: its clusters' when they were read, else 0 .. logical_cores - 1."""
    ids = sorted(cpu for c in (clusters.clusters if clusters else []) for cpu in c.cpu_ids)
    return ids or list(range(logical_cores))


def resolve_cores(spec: str, clusters: CoreClusters | None, logical_cores: int) -> list[int]:
    """The CPUs ``--cores spec`` names on this device."""
    name = spec.strip().lower()
    groups = clusters.clusters if clusters else []
    if name == "all":
        return known_cpus(clusters, logical_cores)
    if name in ("big", "little"):
        if not groups:
            why = clusters.describe() if clusters else "core clusters were not read"
            raise UserError(f"--cores {name}: this device's core clusters are {why}; give CPUs instead (e.g. 0-3)")
        if name == "little" and not clusters.mixed:
            raise UserError(f"--cores little: this device has no little cores ({clusters.describe()}); use all")
        if name == "big":
            return (clusters.big() or groups[0]).cpu_ids
        return clusters.little().cpu_ids
    cpus = _cpu_list(name)
    if cpus is None:
        raise UserError(f"--cores '{spec}' is not big, little, all or a CPU list like 4-7 or 0-3,6")
    check_cpus(cpus, clusters, logical_cores, f"--cores {spec}")
    return cpus


def check_cpus(cpus: list[int], clusters: CoreClusters | None, logical_cores: int, flag: str) -> None:
    """A placement must name CPUs this device has."""
    known = known_cpus(clusters, logical_cores)
    missing = sorted(set(cpus) - set(known))
    if missing:
        raise UserError(f"{flag}: CPU {cpu_list_text(missing)} does not exist on this device "
                        f"(its CPUs are {cpu_list_text(known)})")


def describe_cpus(cpus: list[int], clusters: CoreClusters | None) -> str:
    """The clusters ``cpus`` cover: ``4× Cortex-A76``, ``2× Cortex-A76 + 1× Cortex-A55``; without
    clusters the CPU list."""
    chosen = set(cpus)
    parts = [f"{len(chosen & set(c.cpu_ids))}× {c.core_name}" for c in (clusters.clusters if clusters else [])
             if chosen & set(c.cpu_ids)]
    return " + ".join(parts) if parts else f"CPUs {cpu_list_text(cpus)}"


# ----------------------------------------------------------------------------- this process's affinity


def process_affinity() -> list[int]:
    """The CPUs any thread of this process may run on (the union over its threads, from the kernel)."""
    cpus: set[int] = set()
    for tid in sysfs.own_thread_ids():
        try:
            cpus |= os.sched_getaffinity(tid)
        except OSError:
            continue  # the thread ended between listing and asking
    return sorted(cpus or os.sched_getaffinity(0))


def set_process_affinity(cpus: list[int]) -> None:
    """Confine every thread of this process to ``cpus``; threads started later inherit it."""
    wanted = set(cpus)
    try:
        os.sched_setaffinity(0, wanted)  # this thread first: it fails here when no CPU is usable
    except OSError as exc:
        raise UserError(f"cannot run on CPUs {cpu_list_text(cpus)}: {exc.strerror or exc} "
                        f"(this process may use {cpu_list_text(sorted(os.sched_getaffinity(0)))})") from None
    for tid in sysfs.own_thread_ids():
        try:
            os.sched_setaffinity(tid, wanted)
        except OSError:
            continue  # the thread ended between listing and setting
