"""Energy and thermal figures for each test, from samples taken in the background.

One ``EnergySession`` per run: it chooses the source, measures the idle baseline and
hands out a ``TestTracker`` per test, which runs the energy sampler and the thermal
sampler around the test. After the test the tracker integrates the samples over the
runner's prefill/decode windows (``TestTimings.windows``); neither the runner nor the
backend knows any of this happens.

Per phase: E_domain = energy the source saw over the phase's windows; for a system-wide
source E_proc = E_domain * d(proc CPU) / d(busy CPU) (flagged ``energy_attributed``);
net = (E_domain - idle_power * t) * share. J per token uses E_proc (gross).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from profiler.platform import thermal
from profiler.platform.energy import Choice, Reading, Sampler, choose
from profiler.platform.energy import integrate as integ
from profiler.platform.energy.base import Provenance

IDLE_DEFAULT_S = 5.0
# A window is resolved when it spans at least this many of the source's sampling periods.
MIN_PERIODS_PER_WINDOW = 2
# ...or when back-to-back windows cover this much of a span that is long enough.
MIN_COVERAGE = 0.9
# /proc CPU times tick every 10 ms; below this much busy time the share is too coarse.
MIN_BUSY_S_FOR_SHARE = 0.05
MIN_PROC_S_FOR_SHARE = 0.02

Window = tuple[str, int, int]


@dataclass
class IdleBaseline:
    power_w: float | None
    duration_s: float
    reason: str | None = None  # why power_w is None
    readings: list[Reading] = field(default_factory=list)

    def to_dict(self) -> dict:
        data = {"power_w": self.power_w, "duration_s": self.duration_s, "reason": self.reason}
        data["samples"] = samples_dict(self.readings, None)
        return data


@dataclass
class PhaseEnergy:
    phase: str
    windows: int
    tokens: int
    duration_s: float
    domain_j: float  # what the source saw over this phase's windows
    domain_net_j: float | None  # minus idle power x time
    share: float | None  # this process's share of busy CPU time (system-wide sources)
    energy_j: float  # attributed: domain_j x share (or domain_j when not attributed)
    net_j: float | None
    resolved: bool  # windows long enough for the source's resolution
    covered: bool  # every window lies inside the sampled span

    @property
    def j_per_token(self) -> float | None:
        return self.energy_j / self.tokens if self.tokens else None

    def to_dict(self) -> dict:
        return {**asdict(self), "j_per_token": self.j_per_token}


def attribution_share(readings: Sequence[Reading], windows: Sequence[Window]) -> tuple[float | None, str]:
    """(share, basis): proc CPU time / busy CPU time over the timed windows, or the whole test."""
    proc = [integ.cpu_delta_s(readings, "proc_cpu_s", a, b) for _, a, b in windows]
    busy = [integ.cpu_delta_s(readings, "busy_cpu_s", a, b) for _, a, b in windows]
    basis = "timed windows"
    if None in proc or None in busy or sum(busy) < MIN_BUSY_S_FOR_SHARE:
        if len(readings) < 2:
            return None, "too few samples for CPU times"
        span = (readings[0].t_ns, readings[-1].t_ns)
        proc = [integ.cpu_delta_s(readings, "proc_cpu_s", *span)]
        busy = [integ.cpu_delta_s(readings, "busy_cpu_s", *span)]
        basis = "whole test (the timed windows are too short for /proc's 10 ms CPU-time ticks)"
    if None in proc or None in busy or sum(busy) < MIN_BUSY_S_FOR_SHARE:
        return None, (f"not attributed: under {MIN_BUSY_S_FOR_SHARE * 1e3:.0f} ms of busy CPU time in the test, "
                      "too few /proc ticks for a share")
    if sum(proc) < MIN_PROC_S_FOR_SHARE:
        # A share of (almost) zero from tick rounding would report a silent zero energy.
        return None, (f"not attributed: this process used under {MIN_PROC_S_FOR_SHARE * 1e3:.0f} ms of CPU in the "
                      "test, too few /proc ticks for a share")
    return min(max(sum(proc) / sum(busy), 0.0), 1.0), basis


def phase_energy(
    readings: Sequence[Reading], cumulative: bool, windows: Sequence[Window], tokens_per_window: int,
    idle_w: float | None, share: float | None, resolution_s: float,
) -> PhaseEnergy | None:
    if not windows or not readings:
        return None
    domain = sum(integ.window_energy_j(readings, cumulative, a, b) for _, a, b in windows)
    duration = sum(b - a for _, a, b in windows) / 1e9
    net = domain - idle_w * duration if idle_w is not None else None
    factor = share if share is not None else 1.0
    return PhaseEnergy(
        phase=windows[0][0], windows=len(windows), tokens=tokens_per_window * len(windows), duration_s=duration,
        domain_j=domain, domain_net_j=net, share=share, energy_j=domain * factor,
        net_j=net * factor if net is not None else None,
        resolved=_resolved(windows, resolution_s),
        covered=all(integ.covers(readings, a, b) for _, a, b in windows),
    )


def _resolved(windows: Sequence[Window], resolution_s: float) -> bool:
    """Windows long enough on their own, or back to back (as in sustained mode) over a long enough span.

    Interpolation error sits at window edges; edges between adjacent windows cancel, so a run
    of contiguous windows is resolved when its whole span is.
    """
    need = MIN_PERIODS_PER_WINDOW * resolution_s
    busy = sum(b - a for _, a, b in windows)
    if busy / len(windows) >= need * 1e9:
        return True
    span = max(b for _, _, b in windows) - min(a for _, a, _ in windows)
    return span >= need * 1e9 and busy >= MIN_COVERAGE * span


def samples_dict(readings: Sequence[Reading], cumulative: bool | None) -> dict:
    """Raw samples, times in seconds from the first one (compact parallel lists)."""
    t0 = readings[0].t_ns if readings else 0
    unit = {True: "J since the first sample", False: "W"}.get(cumulative, "J or W")
    return {
        "t0_ns": t0,
        "t_s": [(r.t_ns - t0) / 1e9 for r in readings],
        "value": [r.value for r in readings],
        "unit": unit,
        "proc_cpu_s": [r.proc_cpu_s for r in readings],
        "busy_cpu_s": [r.busy_cpu_s for r in readings],
    }


def unavailable_fields(reason: str) -> dict:
    return {"energy_unavailable": reason, "energy_detail": {"unavailable": reason}}


@dataclass
class EnergyInputs:
    """Everything ``energy_fields`` needs; plain data so tests can build it by hand."""

    readings: list[Reading]
    provenance: Provenance
    cumulative: bool
    windows: list[Window]
    n_prompt: int
    n_gen: int
    idle_w: float | None
    idle_reason: str | None
    interval_s: float


def _phases(inp: EnergyInputs, share: float | None) -> dict[str, PhaseEnergy]:
    prov = inp.provenance
    resolution = max(prov.resolution_s, inp.interval_s) if prov.resolution_s else 0.0
    phases = {}
    for phase, tokens in (("prefill", inp.n_prompt), ("decode", inp.n_gen)):
        windows = [w for w in inp.windows if w[0] == phase]
        found = phase_energy(inp.readings, inp.cumulative, windows, tokens, inp.idle_w, share, resolution)
        if found is not None:
            phases[phase] = found
    return phases


def energy_fields(inp: EnergyInputs, label: str) -> tuple[dict, list[str]]:
    """Row fields and warnings for one test."""
    prov = inp.provenance
    if not inp.readings:
        return unavailable_fields(f"{prov.source} gave no readings during the test"), []
    share, basis = attribution_share(inp.readings, inp.windows) if prov.system_wide else (None, "not system-wide")
    phases = _phases(inp, share)
    pre, dec = phases.get("prefill"), phases.get("decode")
    total_j = sum(p.energy_j for p in phases.values())
    total_tokens = sum(p.tokens for p in phases.values())
    total_s = sum(p.duration_s for p in phases.values())
    fields = {
        "energy_source": prov.source, "energy_method": prov.method, "energy_scope": prov.scope,
        "energy_measured": prov.measured, "energy_attributed": share is not None,
        "energy_rate_hz": 1 / inp.interval_s, "energy_unavailable": None,
        "energy_prefill_j": pre.energy_j if pre else None, "energy_decode_j": dec.energy_j if dec else None,
        "energy_prefill_net_j": pre.net_j if pre else None, "energy_decode_net_j": dec.net_j if dec else None,
        "j_per_prefill_token": pre.j_per_token if pre else None,
        "j_per_decode_token": dec.j_per_token if dec else None,
        "tokens_per_j": total_tokens / total_j if total_j > 0 else None,
        "avg_power_w": total_j / total_s if total_s > 0 else None,
        "idle_power_w": inp.idle_w,
    }
    fields["energy_detail"] = {
        "provenance": prov.to_dict(), "sample_interval_s": inp.interval_s,
        "attribution": {"share": share, "basis": basis},
        "idle": {"power_w": inp.idle_w, "reason": inp.idle_reason},
        "phases": {name: p.to_dict() for name, p in phases.items()},
        "windows_s": [[ph, (a - inp.readings[0].t_ns) / 1e9, (b - inp.readings[0].t_ns) / 1e9]
                      for ph, a, b in inp.windows],
        "samples": samples_dict(inp.readings, inp.cumulative),
    }
    return fields, _energy_warnings(phases, label, inp)


def _energy_warnings(phases: dict[str, PhaseEnergy], label: str, inp: EnergyInputs) -> list[str]:
    warnings = []
    resolution = max(inp.provenance.resolution_s, inp.interval_s)
    for p in phases.values():
        if not p.resolved:
            warnings.append(
                f"{label}: {p.phase} windows average {p.duration_s / p.windows * 1e3:.1f} ms, shorter than "
                f"{MIN_PERIODS_PER_WINDOW}x the energy source's resolution ({resolution * 1e3:.0f} ms); its J/token "
                "is interpolated, not resolved; use larger -p/-n"
            )
        if not p.covered:
            warnings.append(f"{label}: {p.phase} windows reach outside the energy samples; edge values were held")
        if p.resolved and p.net_j is not None and p.net_j < 0:
            warnings.append(f"{label}: {p.phase} net energy is negative: the idle baseline drew more than the "
                            "test did (other work during the idle window?)")
    return warnings


def thermal_fields(readings: list[thermal.ThermalReading], sensors: thermal.ThermalSensors,
                   label: str, sustained: bool = False) -> tuple[dict, list[str], thermal.ThermalSummary]:
    summary = thermal.summarize(readings, sensors.has_throttle_indicator, use_freq_drop=sustained)
    t0 = readings[0].t_ns if readings else 0
    detail = {
        "summary": summary.to_dict(),
        "samples": {
            "t0_ns": t0,
            "t_s": [(r.t_ns - t0) / 1e9 for r in readings],
            "temp_max_c": [r.temp_max_c for r in readings],
            "freq_ratio": [r.freq_ratio for r in readings],
            "freq_mhz": [r.freq_mhz for r in readings],
            "throttle_count": [r.throttle_count for r in readings],
            "pi_throttled": [r.pi_throttled for r in readings],
            "temps_c": {name: [r.temps_c.get(name) for r in readings] for name in sensors.temp_files},
        },
    }
    fields = {
        "temp_max_c": summary.temp_max_c, "temp_start_c": summary.temp_start_c,
        "freq_ratio": summary.freq_ratio, "freq_ratio_min": summary.freq_ratio_min,
        "throttled": summary.throttled, "throttle_reasons": summary.reasons, "thermal_detail": detail,
    }
    warnings = [f"{label}: throttled during the test ({', '.join(summary.reasons)}); "
                "add --delay or --cooldown-to, or improve cooling"] if summary.throttled else []
    return fields, warnings, summary


class TestTracker:
    """Runs the energy and thermal samplers around one test."""

    __test__ = False  # not a pytest class

    def __init__(self, session: EnergySession) -> None:
        self.session = session
        source = session.choice.source
        self.sampler = Sampler(source, session.clock) if source is not None else None
        self.thermal = session.sensors.poller(session.clock)
        self.energy_readings: list[Reading] = []
        self.thermal_readings: list[thermal.ThermalReading] = []

    def __enter__(self) -> TestTracker:
        self.thermal.start()
        if self.sampler is not None:
            self.sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.sampler is not None:
            self.energy_readings = self.sampler.stop()
        self.thermal_readings = self.thermal.stop()

    def annotate(self, row, windows: list[Window], label: str, sustained: bool = False) -> thermal.ThermalSummary:
        """Set the row's energy and thermal fields and add their warnings."""
        fields, warnings = self._energy(row, windows, label)
        more, thermal_warnings, summary = thermal_fields(self.thermal_readings, self.session.sensors, label, sustained)
        for name, value in {**fields, **more}.items():
            setattr(row, name, value)
        row.warnings.extend(warnings + thermal_warnings)
        return summary

    def _energy(self, row, windows: list[Window], label: str) -> tuple[dict, list[str]]:
        session = self.session
        if self.sampler is None:
            return unavailable_fields(session.choice.unavailable_reason or "no energy source"), []
        idle = session.idle
        inputs = EnergyInputs(
            readings=self.energy_readings, provenance=self.sampler.source.provenance,
            cumulative=self.sampler.source.cumulative, windows=windows, n_prompt=row.n_prompt, n_gen=row.n_gen,
            idle_w=idle.power_w if idle else None, idle_reason=idle.reason if idle else "not measured",
            interval_s=self.sampler.interval_s,
        )
        return energy_fields(inputs, label)


class EnergySession:
    def __init__(self, choice: Choice, sensors: thermal.ThermalSensors,
                 clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.choice = choice
        self.sensors = sensors
        self.clock = clock
        self.idle: IdleBaseline | None = None

    @classmethod
    def open(cls, watts: float | None = None, cpu_model: str | None = None, board: str | None = None) -> EnergySession:
        return cls(choose(watts, cpu_model, board), thermal.ThermalSensors.discover())

    def measure_idle(self, seconds: float, sleep: Callable[[float], None] = time.sleep) -> IdleBaseline:
        self.idle = self._idle(seconds, sleep)
        return self.idle

    def _idle(self, seconds: float, sleep: Callable[[float], None]) -> IdleBaseline:
        source = self.choice.source
        if seconds <= 0:
            return IdleBaseline(None, 0.0, "skipped (--idle 0); net energy is unavailable")
        if source is None:
            return IdleBaseline(None, 0.0, self.choice.unavailable_reason)
        if source.provenance.method == "constant":
            return IdleBaseline(None, 0.0, "a constant --watts has no idle level; net energy is unavailable")
        sampler = Sampler(source, self.clock).start()
        sleep(seconds)
        readings = sampler.stop()
        power = integ.mean_power_w(readings, source.cumulative)
        duration = (readings[-1].t_ns - readings[0].t_ns) / 1e9 if readings else 0.0
        reason = None if power is not None else f"{source.provenance.source} gave too few readings while idle"
        return IdleBaseline(power, duration, reason, readings)

    def track(self) -> TestTracker:
        return TestTracker(self)

    def describe(self) -> dict:
        return {
            "sources": self.choice.to_dict(),
            "thermal_sensors": self.sensors.describe(),
            "idle": self.idle.to_dict() if self.idle else None,
        }

    def run_warnings(self) -> list[str]:
        source = self.choice.source
        if source is None:
            return [f"energy unavailable: {self.choice.unavailable_reason}"]
        prov = source.provenance
        if prov.measured:
            return []
        return [f"energy is estimated ({prov.source}, method {prov.method}, {prov.scope} scope), not measured: "
                "no meter was found on this device; 'profiler device' lists why, docs/energy.md says how to get one"]
