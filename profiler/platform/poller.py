"""A background thread that calls a reader at a fixed rate and keeps every timestamped result.

Energy and thermal trackers both use it. Timestamps are on the ``time.perf_counter_ns``
clock, the clock the runner records its prefill/decode windows on, so samples can be
integrated over those windows after the test. ``take()`` is public so tests can drive a
poller by hand with a fake clock instead of a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


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
        self.missed = 0  # reads that returned None
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def take(self) -> T | None:
        """One read now; failed reads are counted, not stored, and never stop the poller."""
        try:
            sample = self.read(self.clock())
        except Exception as exc:  # a flaky sensor must not kill a long benchmark
            if len(self.errors) < 5:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            sample = None
        with self._lock:
            if sample is None:
                self.missed += 1
            else:
                self.samples.append(sample)
        return sample

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.take()

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
