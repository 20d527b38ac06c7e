"""Peak RSS sampled from outside: the fallback where the kernel will not reset ``VmHWM``.

A sampling thread inside the measured process would wake 20 times a second, take the GIL and
preempt one of llama.cpp's OpenMP workers, so each token would wait at the barrier (issue #10,
8b). This process reads the measured process's ``/proc/<pid>/status`` instead, at a lower
priority, and reports the peak when asked.

Protocol, one JSON object per line on stdin/stdout (``platform/sideproc.py``): first
``{"pid", "interval_s"}``, answered with ``{"ok": true}`` once the first reading is taken; then
``{"cmd": "peek"}`` answers the figures so far, and ``{"cmd": "stop"}`` (or the end of input)
answers them one last time and ends the process. Figures: ``peak_bytes``, ``samples``,
``errors`` (reads that failed).
"""

from __future__ import annotations

import json
import select
import sys
from typing import IO

from profiler.platform.sideproc import SideProcess, SideProcessError, serve_beside


def rss_of(pid: int | None) -> int | None:
    """Resident set size of process ``pid`` (None: this one) in bytes, or None when unreadable."""
    from profiler.platform import sysfs

    if sysfs.exists("/proc"):
        return sysfs.read_kib_fields(f"/proc/{'self' if pid is None else pid}/status", ("VmRSS",)).get("VmRSS")
    try:  # no /proc (macOS): psutil asks the kernel
        import psutil

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:  # noqa: BLE001 - any failure is one counted error, reported with the figures
        return None


class _Figures:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_bytes: int | None = None
        self.samples = 0
        self.errors = 0

    def sample(self) -> None:
        rss = rss_of(self.pid)
        if rss is None:
            self.errors += 1
            return
        self.samples += 1
        self.peak_bytes = rss if self.peak_bytes is None else max(self.peak_bytes, rss)

    def as_dict(self) -> dict:
        return {"peak_bytes": self.peak_bytes, "samples": self.samples, "errors": self.errors}


def serve(inp: IO[str], out: IO[str]) -> None:
    def reply(data: dict) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    config = json.loads(inp.readline() or "{}")
    figures = _Figures(int(config["pid"]))
    interval_s = float(config["interval_s"])
    figures.sample()
    reply({"ok": True})
    while True:
        readable, _, _ = select.select([inp], [], [], interval_s)
        if not readable:
            figures.sample()
            continue
        line = inp.readline()
        figures.sample()
        reply(figures.as_dict())
        if not line or json.loads(line).get("cmd") != "peek":  # "stop", or the end of input
            return


class WatchError(SideProcessError):
    """The watcher process could not start or stopped answering."""


class RssWatch(SideProcess):
    """The measured process's handle on its watcher process."""

    error = WatchError

    def __init__(self, pid: int, interval_s: float) -> None:
        super().__init__("profiler.measure.rss_watch", "RSS watcher process")
        self.ask({"pid": pid, "interval_s": interval_s})  # answered once the first reading is taken

    def peek(self) -> dict:
        return self.ask({"cmd": "peek"})

    def stop(self) -> dict:
        """The final figures; the process ends."""
        try:
            return self.ask({"cmd": "stop"})
        finally:
            self.close()


if __name__ == "__main__":
    serve_beside()
    serve(sys.stdin, sys.stdout)
