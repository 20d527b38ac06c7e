"""The explicit fallback chain: which energy source a run uses, and why not the others.

Measured sources come first, in the order of how directly they see the CPU's energy:
RAPL counters, hwmon meters, the Pi 5 PMIC, Jetson INA3221 rails, a discharging battery, and
on an Android phone the same battery through termux-battery-status (an estimate without voltage).
Then estimates: a ``--watts`` the user gave (it overrides the built-in models, which
would otherwise always apply), a published board regression, the CPU power table.
Every source is probed, even after one is chosen, so ``profiler device`` can list them all.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from profiler.platform.energy import battery, estimate, hwmon, jetson, pi_pmic, rapl, termux
from profiler.platform.energy.base import Candidate, EnergySource, skipped, usable

MEASURED_PROBES: list[tuple[str, Callable[[], list[Candidate]]]] = [
    ("rapl", rapl.probe),
    ("hwmon", hwmon.probe),
    ("pi5-pmic", pi_pmic.probe),
    ("jetson-ina3221", jetson.probe),
    ("battery", battery.probe),
    # an Android phone whose sysfs battery files are closed to apps (termux.py)
    (termux.NAME, termux.probe),
]


@dataclass
class Choice:
    source: EnergySource | None
    candidates: list[Candidate] = field(default_factory=list)
    unavailable_reason: str | None = None  # set when source is None

    def to_dict(self) -> dict:
        return {
            "chosen": self.source.provenance.to_dict() if self.source else None,
            "unavailable_reason": self.unavailable_reason,
            "candidates": [c.to_dict() for c in self.candidates],
        }


def _safe_probe(name: str, probe: Callable[[], list[Candidate]]) -> list[Candidate]:
    try:
        return probe()
    except Exception as exc:  # one odd sysfs tree must not stop the run
        return [skipped(name, f"probe failed: {type(exc).__name__}: {exc}")]


def _estimates(watts: float | None, cpu_model: str, board: str | None) -> list[Candidate]:
    found = []
    if watts is None:
        found.append(skipped("constant:--watts", "not given (--watts W sets a constant device power)",
                             "constant", "wall"))
    else:
        found.append(usable(estimate.ConstantPower(watts), "--watts given; it overrides the built-in models"))
    return found + _safe_probe("model", lambda: estimate.probe_models(cpu_model, board))


def choose(watts: float | None = None, cpu_model: str | None = None, board: str | None = None) -> Choice:
    """Probe every source, mark the first usable one chosen and say why each other was not."""
    if cpu_model is None or board is None:
        from profiler.platform import device

        fp = device.fingerprint()
        cpu_model = cpu_model if cpu_model is not None else fp.cpu_model
        board = board if board is not None else fp.board
    candidates = [c for name, probe in MEASURED_PROBES for c in _safe_probe(name, probe)]
    candidates += _estimates(watts, cpu_model, board)
    chosen = next((c for c in candidates if c.source is not None), None)
    for c in candidates:
        if c is chosen:
            c.status = "chosen"
        elif c.source is not None:
            c.status = "not used"
            c.reason = f"{chosen.name} ranks higher; {c.reason}"
        else:
            c.status = "skipped"
    if chosen is None:
        reasons = "; ".join(f"{c.name}: {c.reason}" for c in candidates)
        return Choice(None, candidates, f"no energy source: {reasons}")
    return Choice(chosen.source, candidates)
