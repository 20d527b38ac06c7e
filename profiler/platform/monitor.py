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
(answered with every reading and the poll statistics); ``{"cmd": "peek"}`` answers with the energy
readings so far without stopping (``--energy-target`` looks at them between repetitions).
End of input ends the monitor.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import IO

from profiler.platform.sideproc import SideProcess, SideProcessError, serve_beside

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
        elif command == "peek":
            readings = sampler.readings if sampler is not None else []
            reply({"ok": True, "readings": [[r.t_ns, r.value, r.proc_cpu_s, r.busy_cpu_s, r.parts] for r in readings]})
        elif command == "stop":
            data: dict = {"ok": True}
            if sampler is not None:
                readings = sampler.stop()
                data["energy"] = {"readings": [[r.t_ns, r.value, r.proc_cpu_s, r.busy_cpu_s, r.parts] for r in readings],
                                  **_series(sampler.poller)}
            if thermal_poller is not None:
                data["thermal"] = {"readings": [asdict(r) for r in thermal_poller.stop()], **_series(thermal_poller)}
            reply(data)


# ----------------------------------------------------------------------------- the client


class MonitorError(SideProcessError):
    """The monitor process could not start or stopped answering."""


class Monitor(SideProcess):
    """The measured process's handle on its monitor process."""

    error = MonitorError

    def __init__(self, pid: int, energy: dict | None, thermal: bool) -> None:
        super().__init__("profiler.platform.monitor", "monitor process")
        answer = self.ask({"pid": pid, "energy": energy, "thermal": thermal})
        if not answer.get("ok"):
            self.close()
            raise MonitorError(f"the monitor process failed: {answer.get('error')}")
        self.interval_s: float | None = answer.get("interval_s")

    def start(self) -> None:
        self.ask({"cmd": "start"})

    def stop(self) -> dict:
        return self.ask({"cmd": "stop"})

    def peek(self) -> list[list]:
        """The energy readings taken so far, as [t_ns, value, proc_cpu_s, busy_cpu_s, parts] lists."""
        return self.ask({"cmd": "peek"}).get("readings", [])


if __name__ == "__main__":
    serve_beside()
    serve(sys.stdin, sys.stdout)
