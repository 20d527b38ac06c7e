"""The monitor: a separate process that samples power sensors and thermal state during a test.

Sampling inside the measured process costs speed: a Python thread that wakes at 10 Hz must
take the GIL, and on a busy 2-core machine the main thread then waits for it between
llama.cpp calls while OpenMP workers wait at their barrier. So sources that must be sampled
(power sensors, the Pi PMIC through ``vcgencmd``, temperatures) are read here instead, in a
process of its own (``vcgencmd`` runs as *its* child, not the measured process's), and the
measured process's CPU time is read from ``/proc/<pid>/stat``. Timestamps are on
``time.perf_counter_ns`` (CLOCK_MONOTONIC), which every process shares, so the samples line
up with the runner's windows.

Protocol, one JSON object per line on stdin/stdout: first ``{"pid", "energy", "thermal"}``
(``energy`` names the chosen source and how it was chosen, so the monitor probes the same
one), answered with ``{"ok": true, "interval_s": ...}`` or ``{"ok": false, "error": ...}``;
then ``{"cmd": "start"}`` (answered once the first readings are taken) and ``{"cmd": "stop"}``
(answered with every reading and the poll statistics). End of input ends the monitor.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import sys
from dataclasses import asdict
from typing import IO

REPLY_TIMEOUT_S = 30.0


# ----------------------------------------------------------------------------- the process


def _energy_sampler(spec: dict | None, pid: int):
    """The same source the measured process chose, sampled with that process's CPU time."""
    if spec is None:
        return None
    from profiler.platform.energy import Sampler, choose, cputime

    choice = choose(spec.get("watts"), spec.get("cpu_model"), spec.get("board"))
    found = next((c.source for c in choice.candidates if c.source is not None and c.name == spec["source"]), None)
    if found is None:
        raise RuntimeError(f"the monitor process does not see {spec['source']}")
    return Sampler(found, cpu_reader=lambda: (cputime.process_cpu_s(pid), cputime.busy_cpu_s()))


def _series(poller) -> dict:
    return {"stats": poller.stats.to_dict(), "interval_s": poller.interval_s}


def serve(inp: IO[str], out: IO[str]) -> None:
    from profiler.platform import thermal

    def reply(data: dict) -> None:
        out.write(json.dumps(data) + "\n")
        out.flush()

    config = json.loads(inp.readline() or "{}")
    try:
        sampler = _energy_sampler(config.get("energy"), int(config["pid"]))
        sensors = thermal.ThermalSensors.discover() if config.get("thermal") else None
    except Exception as exc:  # reported to the measured process, which falls back to a thread
        reply({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
        return
    reply({"ok": True, "interval_s": sampler.interval_s if sampler else None})
    thermal_poller = None
    for line in inp:
        command = json.loads(line).get("cmd")
        if command == "start":
            if sampler is not None:
                sampler = type(sampler)(sampler.source, cpu_reader=sampler.cpu_reader).start()
            thermal_poller = sensors.poller().start() if sensors is not None else None
            reply({"ok": True})
        elif command == "stop":
            data: dict = {"ok": True}
            if sampler is not None:
                readings = sampler.stop()
                data["energy"] = {"readings": [[r.t_ns, r.value, r.proc_cpu_s, r.busy_cpu_s] for r in readings],
                                  **_series(sampler.poller)}
            if thermal_poller is not None:
                data["thermal"] = {"readings": [asdict(r) for r in thermal_poller.stop()], **_series(thermal_poller)}
            reply(data)


# ----------------------------------------------------------------------------- the client


class MonitorError(RuntimeError):
    """The monitor process could not start or stopped answering."""


class Monitor:
    """The measured process's handle on its monitor process."""

    def __init__(self, pid: int, energy: dict | None, thermal: bool) -> None:
        from profiler.platform import sysfs

        env = dict(os.environ, PROFILER_SYSFS_ROOT=str(sysfs.root()))
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "profiler.platform.monitor"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True, env=env,
            )
        except OSError as exc:
            raise MonitorError(f"could not start the monitor process: {exc}") from exc
        answer = self._ask({"pid": pid, "energy": energy, "thermal": thermal})
        if not answer.get("ok"):
            self.close()
            raise MonitorError(f"the monitor process failed: {answer.get('error')}")
        self.interval_s: float | None = answer.get("interval_s")

    def _ask(self, message: dict) -> dict:
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
            ready, _, _ = select.select([self.proc.stdout], [], [], REPLY_TIMEOUT_S)
            line = self.proc.stdout.readline() if ready else ""
        except OSError as exc:
            line, error = "", str(exc)
        else:
            error = "no answer" if not ready else "it exited"
        if not line:
            raise MonitorError(f"the monitor process stopped answering ({error}): {self._end()}")
        return json.loads(line)

    def _end(self) -> str:
        """Stop a monitor that failed; its last line on stderr (or its exit status) says why."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        text = (self.proc.stderr.read() or "").strip() if self.proc.stderr else ""
        self.close()
        return text.splitlines()[-1] if text else f"exit status {self.proc.returncode}"

    def start(self) -> None:
        self._ask({"cmd": "start"})

    def stop(self) -> dict:
        return self._ask({"cmd": "stop"})

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()


if __name__ == "__main__":
    import signal

    # Ctrl-C goes to the whole process group: the measured process decides what happens, and
    # the monitor ends when its input closes (also when the measured process is killed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A lower priority: its reads take microseconds, and it should not preempt the measured
    # process's threads to take them (a read that comes late is counted as missed, not hidden).
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    serve(sys.stdin, sys.stdout)
