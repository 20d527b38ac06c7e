"""Peak RSS sampled from outside: the fallback where the kernel will not reset ``VmHWM``.

A sampling thread inside the measured process would wake 20 times a second, take the GIL and
preempt one of llama.cpp's OpenMP workers, so each token would wait at the barrier (issue #10,
8b). This process reads the measured process's ``/proc/<pid>/status`` instead, at a lower
priority, and reports the peak when asked.

Protocol, one JSON line per answer on stdout: started as ``python -m profiler.measure.rss_watch
PID INTERVAL_S``, it takes one reading and answers ``{"ready": true}``; then ``peek`` (a line on
stdin) answers the figures so far, and ``stop`` or the end of input answers them one last time
and ends the process. Figures: ``peak_bytes``, ``samples``, ``errors`` (reads that failed).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from typing import IO

REPLY_TIMEOUT_S = 30.0


def rss_of(pid: int) -> int | None:
    """Resident set size of process ``pid`` in bytes, or None when it cannot be read."""
    from profiler.platform import sysfs

    status = sysfs.read_text(f"/proc/{pid}/status")
    if status is not None or sysfs.exists("/proc"):
        for line in (status or "").splitlines():
            key, _, rest = line.partition(":")
            if key == "VmRSS":
                with contextlib.suppress(ValueError, IndexError):
                    return int(rest.split()[0]) * 1024
        return None
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


def serve(pid: int, interval_s: float, inp: IO[str], out: IO[str]) -> None:
    def reply(data: dict) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    figures = _Figures(pid)
    figures.sample()
    reply({"ready": True})
    while True:
        readable, _, _ = select.select([inp], [], [], interval_s)
        if not readable:
            figures.sample()
            continue
        command = inp.readline().strip()
        figures.sample()
        reply(figures.as_dict())
        if command != "peek":  # "stop", or the end of input
            return


class WatchError(RuntimeError):
    """The watcher process could not start or stopped answering."""


class RssWatch:
    """The measured process's handle on its watcher process."""

    def __init__(self, pid: int, interval_s: float) -> None:
        from profiler.platform import sysfs

        env = dict(os.environ, PROFILER_SYSFS_ROOT=str(sysfs.root()))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "profiler.measure.rss_watch", str(pid), repr(interval_s)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
            )
        except OSError as exc:
            raise WatchError(f"could not start the RSS watcher process: {exc}") from exc
        self._read()  # the first reading is taken before the test starts

    def _read(self) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], REPLY_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            error = self._kill().splitlines()
            raise WatchError(f"the RSS watcher process stopped answering: {error[-1] if error else 'no answer'}")
        return json.loads(line)

    def _ask(self, command: str) -> dict:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            self._kill()
            raise WatchError(f"the RSS watcher process stopped answering: {exc}") from exc
        return self._read()

    def peek(self) -> dict:
        return self._ask("peek")

    def stop(self) -> dict:
        """The final figures; the process ends."""
        try:
            return self._ask("stop")
        finally:
            self._kill()

    def _kill(self) -> str:
        """End the process (closing its input ends it; a kill if it hangs); its stderr."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        error = ""
        with contextlib.suppress(OSError, ValueError):
            error = (self.proc.stderr.read() or "").strip()
        for stream in (self.proc.stdout, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close()
        return error


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the whole process group; the measured process decides, and this one ends
    # when its input closes (also when the measured process is killed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)  # its reads take microseconds: never preempt the measured threads for them
    serve(int(sys.argv[1]), float(sys.argv[2]), sys.stdin, sys.stdout)
