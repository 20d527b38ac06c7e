"""The one small interface every energy reader implements, and what a probe reports.

A source answers one question, ``read(t_ns)``: either the cumulative energy in joules
since it was opened (counters, and the utilisation models, which are counters of modelled
joules) or the instantaneous power in watts (sensors sampled and integrated later).
Nothing here knows about tests, phases or tokens; ``integrate`` and ``measure.energy`` do.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field

METHODS = ("counter", "sampled", "model", "constant")
SCOPES = ("package", "soc", "board-rails", "battery-system", "wall")


@dataclass
class Provenance:
    """Where an energy figure comes from; copied into every result that uses it."""

    source: str  # e.g. "rapl:psys", "pi5-pmic", "model:cpu-table"
    method: str  # one of METHODS
    scope: str  # one of SCOPES
    measured: bool
    rate_hz: float  # how often the background poller reads it
    system_wide: bool  # True: the figure covers every process, so it is attributed
    resolution_s: float  # shortest window the figure resolves (poll period or sensor refresh)
    notes: list[str] = field(default_factory=list)
    # how readings are fetched where a device offers two ways (the Pi: "mailbox" or "vcgencmd"); None: one way
    transport: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


class EnergySource(ABC):
    """A reader of one energy or power source."""

    provenance: Provenance
    cumulative: bool  # True: read() gives joules since open(); False: watts now
    # Longest safe gap between reads (e.g. so a RAPL counter cannot wrap twice unseen).
    max_interval_s: float | None = None
    # How long the meter averages or holds one value, when it says so (hwmon power*_average_interval);
    # the measured update period (meter.py) is held to at least this.
    declared_update_s: float | None = None

    def open(self) -> None:  # noqa: B027 - most sources keep no state between series
        """Start a new series (reset wrap offsets, model start time); called by the poller."""

    @abstractmethod
    def read(self, t_ns: int) -> float | None:
        """Joules since open() (cumulative sources) or watts (power sources); None if the read failed."""

    def last_parts(self) -> dict[str, float] | None:
        """Watts per named group of the last read (the Pi PMIC's cpu / dram / total-pmic); None: no groups."""
        return None


@dataclass
class Candidate:
    """One source a probe looked at: usable (``source`` set) or skipped with a reason."""

    name: str
    source: EnergySource | None
    reason: str  # why it is usable, or why it was skipped (with the fix where there is one)
    method: str | None = None
    scope: str | None = None
    status: str = ""  # filled by the chooser: "chosen", "not used" or "skipped"

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "status": self.status,
            "method": self.method,
            "scope": self.scope,
            "reason": self.reason,
        }


def usable(source: EnergySource, reason: str) -> Candidate:
    prov = source.provenance
    return Candidate(prov.source, source, reason, prov.method, prov.scope)


def skipped(name: str, reason: str, method: str | None = None, scope: str | None = None) -> Candidate:
    return Candidate(name, None, reason, method, scope)
