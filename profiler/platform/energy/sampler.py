"""The background energy sampler: timestamped readings of one source, plus CPU times.

Each reading carries this process's CPU time and the machine's busy CPU time, so the
energy of any window can later be attributed to the process. The sampler knows nothing
of tests or phases; ``integrate`` turns readings into joules for any window afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from profiler.platform.energy import cputime
from profiler.platform.energy.base import EnergySource
from profiler.platform.poller import Poller

CpuReader = Callable[[], "tuple[float | None, float | None]"]


def read_cpu_times() -> tuple[float | None, float | None]:
    """(this process's CPU-seconds, the machine's busy CPU-seconds)."""
    return cputime.process_cpu_s(), cputime.busy_cpu_s()


@dataclass
class Reading:
    t_ns: int  # time.perf_counter_ns clock
    value: float  # joules since the sampler started (cumulative source) or watts
    proc_cpu_s: float | None
    busy_cpu_s: float | None
    parts: dict[str, float] | None = None  # watts per group at this reading (EnergySource.last_parts)


class Sampler:
    def __init__(
        self,
        source: EnergySource,
        clock: Callable[[], int] = time.perf_counter_ns,
        interval_s: float | None = None,
        cpu_reader: CpuReader = read_cpu_times,
    ) -> None:
        self.source = source
        interval = interval_s or 1 / source.provenance.rate_hz
        if source.max_interval_s:
            interval = min(interval, source.max_interval_s)
        self.cpu_reader = cpu_reader
        self.poller: Poller[Reading] = Poller(self._read, interval, clock, name="energy-sampler")

    @property
    def interval_s(self) -> float:
        return self.poller.interval_s

    def _read(self, t_ns: int) -> Reading | None:
        value = self.source.read(t_ns)
        if value is None:
            return None
        proc, busy = self.cpu_reader()
        return Reading(t_ns, value, proc, busy, self.source.last_parts())

    def take(self) -> Reading | None:
        return self.poller.take()

    def open(self) -> Sampler:
        """Begin a series without a thread (tests drive ``take`` with a fake clock)."""
        self.source.open()
        return self

    def start(self) -> Sampler:
        self.source.open()
        self.poller.start()
        return self

    def stop(self) -> list[Reading]:
        return self.poller.stop()

    @property
    def readings(self) -> list[Reading]:
        return list(self.poller.samples)
