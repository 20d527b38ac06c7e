"""The coordinator's hub: one Ray actor, pinned to the coordinator's node.

Devices push events into it (a test started, a row finished, a message) and pull model chunks
from it; the coordinator's loop drains the events and commits each row to its SQLite store. Rows
thus reach the store while the run goes on, and the store is written by one process only.
"""

from __future__ import annotations

import threading
from pathlib import Path

MAX_CHUNK_BYTES = 16 << 20


class FleetHub:
    """Threaded actor (several devices call it at once): a locked event list and a file server."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._events: list[dict] = []
        self._files: dict[str, str] = {}

    def put(self, event: dict) -> bool:
        with self._arrived:
            self._events.append(event)
            self._arrived.notify_all()
        return True  # the device waits for this, so a row is known to have arrived

    def drain(self) -> list[dict]:
        with self._lock:
            events, self._events = self._events, []
        return events

    def next_events(self) -> list[dict]:
        """Wait until an event has arrived, then take every waiting one. The coordinator waits on
        this call instead of polling: it sleeps until a device reports something (with
        ``fleet up --device`` it shares the CPU with the measurement, so it must not wake on a timer)."""
        with self._arrived:
            self._arrived.wait_for(lambda: self._events)
            events, self._events = self._events, []
        return events

    def offer(self, sha256: str, path: str) -> None:
        """Make a coordinator file available to devices, by its sha256."""
        with self._lock:
            self._files[sha256] = path

    def chunk(self, sha256: str, offset: int, size: int) -> bytes:
        path = self._files.get(sha256)
        if path is None:
            raise KeyError(f"the coordinator offers no file with sha256 {sha256[:12]}...")
        with Path(path).open("rb") as fh:
            fh.seek(offset)
            return fh.read(min(size, MAX_CHUNK_BYTES))


def start_hub(ray):
    """The hub on this (the coordinator's) node, claiming no CPU so it never delays a measurement."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(num_cpus=0, max_concurrency=8, max_restarts=0)(FleetHub)
    return actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote()
