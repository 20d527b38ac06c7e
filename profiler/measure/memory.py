"""Process memory: RSS, the peak RSS of one test, PSS and USS from /proc/self.

The peak of a test comes from the kernel's high-water mark (``VmHWM``), reset just before the
test. The reset is checked, not assumed: where the kernel refuses it or ignores it (old kernels,
some sandboxes, macOS), another process (``rss_watch.py``) samples our RSS during the test
instead, and the row says so; only if that process cannot run does a thread here sample it.
"""

from __future__ import annotations

import os
import resource
import sys
import threading
from dataclasses import dataclass

from profiler.measure.rss_watch import RssWatch, WatchError, rss_of
from profiler.platform import sysfs

# A successful reset leaves VmHWM equal to VmRSS at that moment; allow for the few pages the
# interpreter touches between the write and the read.
RESET_SLACK_BYTES = 2 * 2**20
SAMPLE_INTERVAL_S = 0.05  # fallback only: a 20 Hz RSS poll while the test runs


@dataclass
class MemorySnapshot:
    rss_bytes: int | None
    peak_rss_bytes: int | None
    pss_bytes: int | None
    uss_bytes: int | None
    peak_method: str  # "VmHWM" (resettable per model) or "ru_maxrss" (process lifetime)


def proc_status() -> dict[str, int]:
    """This process's VmRSS and VmHWM (peak RSS since the last reset_peak) in bytes; empty where unreadable."""
    return sysfs.read_kib_fields("/proc/self/status", ("VmRSS", "VmHWM"))


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) so the next peak is this model's alone."""
    return sysfs.write_text("/proc/self/clear_refs", "5")


def reset_peak_checked() -> str | None:
    """Reset VmHWM and confirm it dropped to the current RSS: ``None`` when it did, else why not."""
    if "VmHWM" not in proc_status():
        return "this system has no VmHWM in /proc/self/status"
    if not reset_peak():
        return "the kernel refused the VmHWM reset (/proc/self/clear_refs not writable)"
    after = proc_status()
    hwm, rss = after.get("VmHWM"), after.get("VmRSS")
    if hwm is None or rss is None:
        return "VmHWM or VmRSS vanished from /proc/self/status after the reset"
    if hwm > rss + RESET_SLACK_BYTES:
        return f"the VmHWM reset had no effect (VmHWM {hwm / 2**20:.0f} MiB > VmRSS {rss / 2**20:.0f} MiB after it)"
    return None


def rss_now() -> int | None:
    """This process's resident set size now, in bytes."""
    return rss_of(None)


class PeakWatch:
    """The peak RSS during a ``with`` block (one test).

    On entry VmHWM is reset and the reset checked; if that fails, RSS is sampled every
    ``interval_s`` by a watcher process until exit, or by a thread here when that process cannot
    run (``method`` says which, and why).
    """

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.refused: str | None = None
        self.peak_bytes: int | None = None
        self.samples: list[int] = []
        self.sampler: str = ""  # "a watcher process" / "a thread of the measured process (...)"
        self.watcher: RssWatch | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakWatch:
        self.refused = reset_peak_checked()
        if self.refused:
            self._sample()
            try:
                self.watcher = RssWatch(os.getpid(), self.interval_s)
                self.sampler = "a watcher process"
            except WatchError as exc:
                self.sampler = f"a thread of the measured process ({exc})"
                self._thread = threading.Thread(target=self._poll, name="rss-sampler", daemon=True)
                self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.watcher is not None:
            self._collect_watcher()
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        if self.refused:
            self._sample()
            self.peak_bytes = max(self.samples, default=None)
        else:
            self.peak_bytes = proc_status().get("VmHWM")

    def _collect_watcher(self) -> None:
        try:
            figures = self.watcher.stop()
        except WatchError as exc:  # the figures are lost: only our own first and last readings remain
            self.sampler = f"a watcher process that failed ({exc}); the peak is the larger of the readings at the edges"
            return
        if figures.get("peak_bytes") is not None:
            self.samples.append(int(figures["peak_bytes"]))

    @property
    def method(self) -> str:
        if self.refused is None:
            return "VmHWM, reset before the test"
        return (f"VmRSS sampled every {self.interval_s * 1000:.0f} ms during the test by {self.sampler}, "
                f"because {self.refused}")

    def _sample(self) -> None:
        rss = rss_now()
        if rss is not None:
            self.samples.append(rss)

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()


def snapshot() -> MemorySnapshot:
    status = proc_status()
    rollup = sysfs.read_kib_fields("/proc/self/smaps_rollup", ("Pss", "Private_Clean", "Private_Dirty", "Private_Hugetlb"))
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
        rss = rss_now()
    return MemorySnapshot(rss, peak, rollup.get("Pss"), uss, method)


def row_fields(peak: PeakWatch, rss_before_load_bytes: int | None) -> dict:
    """A test row's peak-memory fields: the process peak, and the model's share of it."""
    model_peak = None
    if peak.peak_bytes is not None and rss_before_load_bytes is not None:
        model_peak = max(0, peak.peak_bytes - rss_before_load_bytes)
    return {
        "peak_rss_bytes": peak.peak_bytes,
        "peak_rss_method": peak.method,
        "rss_before_load_bytes": rss_before_load_bytes,
        "model_peak_rss_bytes": model_peak,
    }
