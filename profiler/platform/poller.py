"""A background thread that calls a reader at a fixed rate and keeps every timestamped result.

Timestamps are on the ``time.perf_counter_ns`` clock (CLOCK_MONOTONIC on Linux, the same in
every process), the clock the runner records its prefill/decode windows on, so samples can
be integrated over those windows after the test. ``take()`` is public so tests can drive a
poller by hand with a fake clock instead of a thread.

Nothing is hidden: every read that failed (raised or returned None) is counted with its
first messages, and every slot of the schedule that went by without a read (the thread was
not scheduled in time, as on a busy machine) is counted as missed. ``stats()`` reports both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_MESSAGES = 5


@dataclass
class PollStats:
    """What happened to one series of reads."""

    taken: int = 0  # reads that gave a sample
    read_errors: int = 0  # reads that raised or returned None
    late_slots: int = 0  # scheduled reads skipped because the thread woke too late
    errors: list[str] = field(default_factory=list)  # the first distinct error messages

    @property
    def missed(self) -> int:
        """Samples the schedule asked for and the series does not have."""
        return self.read_errors + self.late_slots

    @property
    def expected(self) -> int:
        return self.taken + self.missed

    @property
    def missed_fraction(self) -> float:
        return self.missed / self.expected if self.expected else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "missed": self.missed, "expected": self.expected}


class Poller(Generic[T]):
    def __init__(
        self,
        read: Callable[[int], T | None],
        interval_s: float,
        clock: Callable[[], int] = time.perf_counter_ns,
        name: str = "poller",
    ) -> None:
        self.read = read
        self.interval_s = interval_s
        self.clock = clock
        self.name = name
        self.samples: list[T] = []
        self.stats = PollStats()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def missed(self) -> int:
        return self.stats.missed

    @property
    def errors(self) -> list[str]:
        return self.stats.errors

    def take(self) -> T | None:
        """One read now; a failed read is counted (with its message), never stored, never fatal."""
        message = None
        try:
            sample = self.read(self.clock())
        except Exception as exc:  # a flaky sensor must not kill a long benchmark, but it is recorded
            message, sample = f"{type(exc).__name__}: {exc}", None
        with self._lock:
            if sample is None:
                self.stats.read_errors += 1
                message = message or "the reader returned no value"
                if message not in self.stats.errors and len(self.stats.errors) < MAX_MESSAGES:
                    self.stats.errors.append(message)
            else:
                self.stats.taken += 1
                self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        """Read on a fixed schedule (no drift from the reads' own time); count slots that went by."""
        period = self.interval_s
        due = time.monotonic() + period
        while not self._stop.wait(max(due - time.monotonic(), 0.0)):
            self.take()
            due += period
            behind = int((time.monotonic() - due) // period) + 1 if time.monotonic() >= due else 0
            if behind:
                with self._lock:
                    self.stats.late_slots += behind
                due += behind * period

    def start(self) -> Poller[T]:
        self.take()  # a reading at the very start brackets the first window
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[T]:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.take()  # and one at the very end brackets the last
        with self._lock:
            return list(self.samples)

    def __enter__(self) -> Poller[T]:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
