"""How often a meter's value really changes, and the smallest step it shows (issue #19.9).

A source's ``resolution_s`` is what its poller can see; the meter behind it may refresh far
less often. Fuel gauges refresh every 1-60 s, ``power1_average`` is an average over
``power1_average_interval`` (often 1 s or more). Polling such a meter at 10 Hz gives ten copies
of one stale value, and a 2 s window integrates one or two real readings.

So the update period is measured: while the machine idles, the value is read on a schedule and
the times at which it *changes* are noted; the median spacing of those changes is the update
period. A value that changes at every read only says the period is at most the read interval
(``bound`` "at most"); one that never changes in the idle window says it is at least that long
("at least"). A meter that declares an averaging interval (hwmon's ``power*_average_interval``)
is held to it too: it smears every window edge over that long even when it refreshes faster.
Equal readings across a refresh (a steady power on a coarse meter) make the period look longer,
never shorter: the measured figure errs towards calling a window unresolved.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from profiler.stats import percentile

# Changes spaced less than this many read intervals apart are "every read".
EVERY_READ_FACTOR = 1.5


@dataclass(frozen=True)
class MeterUpdate:
    """A meter's update period and value step, and how they were found."""

    update_s: float | None  # the period (the bound itself for "at most" / "at least"); None: not known
    bound: str  # "measured", "at most", "at least", "declared" or "unknown"
    basis: str  # how it was found, in words
    quantum_w: float | None = None  # the smallest step between the values seen (W); None for counters

    @property
    def stale_s(self) -> float:
        """The period to hold windows to: 0 when the meter changed at every read (the read
        interval is then the limit, and the source's own resolution already says so)."""
        return (self.update_s or 0.0) if self.bound in ("measured", "at least", "declared") else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "stale_s": self.stale_s}

    @classmethod
    def from_dict(cls, data: dict) -> MeterUpdate:
        return cls(data.get("update_s"), data.get("bound", "unknown"), data.get("basis", ""), data.get("quantum_w"))


UNKNOWN = MeterUpdate(None, "unknown", "not measured (no idle baseline)")


def change_times(t_ns: Sequence[int], values: Sequence[float]) -> list[int]:
    """Times of the readings whose value differs from the reading before."""
    return [t for t, prev, cur in zip(t_ns[1:], values, values[1:], strict=False) if cur != prev]


def quantum(values: Sequence[float], cumulative: bool) -> float | None:
    """The smallest positive step between distinct power values (a counter's steps are energy, not power)."""
    if cumulative:
        return None
    distinct = sorted(set(values))
    steps = [b - a for a, b in zip(distinct, distinct[1:], strict=False) if b > a]
    return min(steps) if steps else None


def observe(t_ns: Sequence[int], values: Sequence[float], read_interval_s: float, cumulative: bool = False,
            declared_s: float | None = None) -> MeterUpdate:
    """The update period from readings taken every ``read_interval_s`` while the machine idles."""
    found = _observed(t_ns, values, read_interval_s)
    step = quantum(values, cumulative)
    if declared_s and (found.update_s is None or found.bound == "at most" or declared_s > found.update_s):
        basis = f"declared averaging interval {declared_s:g} s; {found.basis}"
        return MeterUpdate(declared_s, "declared", basis, step)
    return MeterUpdate(found.update_s, found.bound, found.basis, step)


def _observed(t_ns: Sequence[int], values: Sequence[float], read_interval_s: float) -> MeterUpdate:
    if len(t_ns) < 3:
        return MeterUpdate(None, "unknown", f"{len(t_ns)} reading(s) while idle, too few to see updates")
    span_s = (t_ns[-1] - t_ns[0]) / 1e9
    changes = change_times(t_ns, values)
    if len(changes) < 2:
        return MeterUpdate(span_s, "at least", f"the value changed {len(changes)} time(s) in {span_s:.1f} s idle")
    spacing_s = percentile([(b - a) / 1e9 for a, b in zip(changes, changes[1:], strict=False)], 50)
    if spacing_s <= EVERY_READ_FACTOR * read_interval_s:
        return MeterUpdate(read_interval_s, "at most", f"the value changed at nearly every read "
                                                       f"({len(changes)} changes in {span_s:.1f} s idle)")
    return MeterUpdate(spacing_s, "measured", f"median {spacing_s:.2f} s between {len(changes)} value changes "
                                              f"in {span_s:.1f} s idle (read every {read_interval_s:g} s)")
