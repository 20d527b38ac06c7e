"""Process memory: RSS, peak RSS (resettable), PSS and USS from /proc/self."""

from __future__ import annotations

import resource
import sys
from dataclasses import dataclass

from profiler.platform import sysfs


@dataclass
class MemorySnapshot:
    rss_bytes: int | None
    peak_rss_bytes: int | None
    pss_bytes: int | None
    uss_bytes: int | None
    peak_method: str  # "VmHWM" (resettable per model) or "ru_maxrss" (process lifetime)


def _kib_fields(text: str | None, names: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, rest = line.partition(":")
        if key in names:
            try:
                found[key] = int(rest.split()[0]) * 1024
            except (ValueError, IndexError):
                continue
    return found


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) so the next peak is this model's alone."""
    return sysfs.write_text("/proc/self/clear_refs", "5")


def snapshot() -> MemorySnapshot:
    status = _kib_fields(sysfs.read_text("/proc/self/status"), ("VmRSS", "VmHWM"))
    rollup = _kib_fields(
        sysfs.read_text("/proc/self/smaps_rollup"), ("Pss", "Private_Clean", "Private_Dirty", "Private_Hugetlb")
    )
    peak = status.get("VmHWM")
    method = "VmHWM"
    if peak is None:
        # ru_maxrss is KiB on Linux, bytes on macOS; it covers the whole process lifetime.
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        peak = maxrss if sys.platform == "darwin" else maxrss * 1024
        method = "ru_maxrss"
    uss = None
    if "Private_Clean" in rollup or "Private_Dirty" in rollup:
        uss = sum(rollup.get(k, 0) for k in ("Private_Clean", "Private_Dirty", "Private_Hugetlb"))
    rss = status.get("VmRSS")
    if rss is None:
        import psutil

        rss = psutil.Process().memory_info().rss
    return MemorySnapshot(rss, peak, rollup.get("Pss"), uss, method)
