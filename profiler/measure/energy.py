"""Energy and thermal figures for each test, from readings taken where they cost the test least.

One ``EnergySession`` per run: it chooses the source, measures the idle baseline and
hands out a ``TestTracker`` per test. Counters are read at the runner's window edges (its
``window_edge`` hook, outside the timed windows); sensors that must be sampled, and the
thermal sensors, are read by the session's monitor process (``platform/monitor.py``). After
the test the tracker integrates the readings over the runner's prefill/decode windows
(``TestTimings.windows``); the backend knows nothing of it. No figure is ever a silent zero:
a phase without readings on both sides of its windows, or whose counter did not move, is
unavailable with the reason.

Per phase: E_domain = energy the source saw over the phase's windows; for a system-wide
source E_proc = E_domain * d(proc CPU) / d(busy CPU) (flagged ``energy_attributed``);
net = (E_domain - idle_power * t) * share. J per token uses E_proc (gross).
"""

from __future__ import annotations

import math
import os
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from profiler.measure.runner import window_edge
from profiler.platform import sysfs, thermal
from profiler.platform.energy import Choice, Reading, Sampler, choose
from profiler.platform.energy import integrate as integ
from profiler.platform.energy import meter as meter_mod
from profiler.platform.energy.base import Provenance
from profiler.platform.energy.meter import MeterUpdate
from profiler.platform.monitor import Monitor, MonitorError
from profiler.platform.poller import PollStats
from profiler.stats import combined_mean_ci_half_width, mean

IDLE_DEFAULT_S = 5.0
# A window is resolved when it spans at least this many of the source's sampling periods,
MIN_PERIODS_PER_WINDOW = 2
# ... and this many of the meter's measured update periods (meter.py): a shorter window
# integrates one or two stale values.
MIN_UPDATES_PER_WINDOW = 3
# ...or when back-to-back windows cover this much of a span that is long enough.
MIN_COVERAGE = 0.9
# /proc CPU times tick every 10 ms; below this much busy time the share is too coarse.
MIN_BUSY_S_FOR_SHARE = 0.05
MIN_PROC_S_FOR_SHARE = 0.02
# More missed samples than this in a test is worth a warning.
MAX_MISSED_FRACTION = 0.05

Window = tuple[str, int, int]


@dataclass
class IdleBaseline:
    power_w: float | None
    duration_s: float
    reason: str | None = None  # why power_w is None
    readings: list[Reading] = field(default_factory=list)
    meter: MeterUpdate = meter_mod.UNKNOWN  # the meter's update period, seen while idle

    def to_dict(self) -> dict:
        data = {"power_w": self.power_w, "duration_s": self.duration_s, "reason": self.reason,
                "meter": self.meter.to_dict()}
        data["samples"] = samples_dict(self.readings, None)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> IdleBaseline:
        """The baseline a child process gets from its parent (``to_dict``; the samples stay behind)."""
        return cls(data.get("power_w"), data.get("duration_s", 0.0), data.get("reason"),
                   meter=MeterUpdate.from_dict(data["meter"]) if data.get("meter") else meter_mod.UNKNOWN)


@dataclass
class PhaseEnergy:
    phase: str
    windows: int
    tokens: int
    duration_s: float
    domain_j: float | None  # what the source saw over this phase's windows
    domain_net_j: float | None  # minus idle power x time
    share: float | None  # this process's share of busy CPU time (system-wide sources)
    energy_j: float | None  # attributed: domain_j x share (or domain_j when not attributed)
    net_j: float | None
    resolved: bool  # windows long enough for the source's resolution and the meter's update period
    covered: bool  # every window lies between two readings
    unavailable: str | None = None  # why there is no figure (then every J above is None)
    # 95% interval of the mean J/token over the repetitions (half-width, J; and over the mean);
    # None with ``interval["unavailable"]`` saying why (estimates, unresolved windows, one window)
    j_per_token_ci95_j: float | None = None
    j_per_token_ci95_rel: float | None = None
    interval: dict = field(default_factory=dict)

    @property
    def j_per_token(self) -> float | None:
        return self.energy_j / self.tokens if self.tokens and self.energy_j is not None else None

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
    if None in proc or None in busy:
        return None, "not attributed: this process's or the machine's CPU time could not be read from /proc"
    if sum(busy) < MIN_BUSY_S_FOR_SHARE:
        return None, (f"not attributed: under {MIN_BUSY_S_FOR_SHARE * 1e3:.0f} ms of busy CPU time in the test, "
                      "too few /proc ticks for a share")
    if sum(proc) < MIN_PROC_S_FOR_SHARE:
        # A share of (almost) zero from tick rounding would report a silent zero energy.
        return None, (f"not attributed: this process used under {MIN_PROC_S_FOR_SHARE * 1e3:.0f} ms of CPU in the "
                      "test, too few /proc ticks for a share")
    return min(max(sum(proc) / sum(busy), 0.0), 1.0), basis


def _brackets(readings: Sequence[Reading], t0: int, t1: int) -> bool:
    """A reading at or before the window's start and another at or after its end."""
    return len(readings) >= 2 and integ.covers(readings, t0, t1)


def _why_no_energy(n_readings: int, covered: bool, cumulative: bool, domain: float) -> str | None:
    """The reason a phase has no figure, or None: never a 0 J from a source that saw nothing."""
    if not covered:
        return (f"{n_readings} reading(s) do not bracket every window (a reading before it and one after it "
                "are needed); the sensor failed or stopped during the test")
    if domain <= 0:
        return ("the energy counter did not advance over the windows (a stuck or too coarse counter)" if cumulative
                else "the sensor read 0 W over the windows (it reports no power)")
    return None


@dataclass(frozen=True)
class MeterView:
    """What the resolution check and the J/token interval need to know of the meter."""

    measured: bool = True  # False for models and constants: their error is not a meter's
    update_s: float = 0.0  # the meter's stale period (meter.MeterUpdate.stale_s); 0 when it is fresh
    read_interval_s: float = 0.0  # how often a sampled source is read (0: counters read at window edges)
    quantum_w: float | None = None  # the smallest step between its power values

    @property
    def smear_s(self) -> float:
        """How far a window edge is blurred: by a stale value, or by interpolating between reads."""
        return max(self.update_s, self.read_interval_s)


def phase_energy(
    readings: Sequence[Reading], cumulative: bool, windows: Sequence[Window], tokens_per_window: int,
    idle_w: float | None, share: float | None, resolution_s: float, meter: MeterView | None = None,
    gap_s: float = 0.0,
) -> PhaseEnergy | None:
    """One phase's energy over its windows; ``gap_s`` is the mean time between a window and the one before it."""
    if not windows:
        return None
    meter = meter or MeterView()
    duration = sum(b - a for _, a, b in windows) / 1e9
    per_window = [integ.window_energy_j(readings, cumulative, a, b) or 0.0 for _, a, b in windows] if readings else []
    domain = sum(per_window)
    covered = all(_brackets(readings, a, b) for _, a, b in windows)
    unavailable = _why_no_energy(len(readings), covered, cumulative, domain)
    resolved = _resolved(windows, resolution_s, meter.update_s)
    phase = PhaseEnergy(
        phase=windows[0][0], windows=len(windows), tokens=tokens_per_window * len(windows), duration_s=duration,
        domain_j=None, domain_net_j=None, share=share, energy_j=None, net_j=None,
        resolved=resolved, covered=covered, unavailable=unavailable,
    )
    if unavailable is None:
        factor = share if share is not None else 1.0
        net = domain - idle_w * duration if idle_w is not None else None
        phase.domain_j, phase.domain_net_j = domain, net
        phase.energy_j, phase.net_j = domain * factor, net * factor if net is not None else None
        per_token = factor / tokens_per_window if tokens_per_window else 0.0
        phase.interval = j_per_token_interval([e * per_token for e in per_window], duration / len(windows),
                                              gap_s, meter, resolved, per_token)
        phase.j_per_token_ci95_j = phase.interval.get("half_width_j")
        phase.j_per_token_ci95_rel = phase.interval.get("rel")
    return phase


def j_per_token_interval(per_window: Sequence[float], window_s: float, gap_s: float, meter: MeterView,
                         resolved: bool, per_token: float) -> dict:
    """The 95% interval of the mean J/token over the windows (one per repetition), or why there is none.

    From the repetitions' spread (Student's t), widened for what the meter adds (GUM, in quadrature).
    The spread already holds the meter's noise and the random phase of its refreshes against each
    window. What it understates or cannot show:

    * a stale meter (update period U) shows the window before for the first 0..U s of each window,
      so each figure mixes in about f = U / 2T of its neighbour: the spread between windows shrinks
      by sqrt((1-f)^2 + f^2) while the mean's error does not; the spread is scaled back up by that;
    * a window edge is blurred over ``smear`` = the meter's stale period (or the read interval),
      so the time between windows (``gap_s``: KV reset, choosing a token) cannot be told apart from
      the window after it when it is shorter than the smear: up to min(smear, gap) x the mean
      power leaks in or out, a rectangular error of that half-width;
    * the meter's value step: up to half a step x the window, rectangular.

    ``per_window`` holds each window's J/token, ``per_token`` the factor from a window's joules to
    its J/token (the attribution share over the tokens of one window).

    Estimates get none: their error is the model's, which no spread of repetitions shows."""
    n = len(per_window)
    if not meter.measured:
        return {"unavailable": "estimated, not measured: the model's own error is unknown, and a spread of "
                               "repetitions would pretend to measure it"}
    kept = {"per_window_j_per_token": list(per_window)}
    if not resolved:
        return {**kept, "unavailable": "windows shorter than the meter resolves (see resolved); use larger -n/-p"}
    if n < 2:
        return {**kept, "unavailable": "one repetition: no spread to estimate an interval from"}
    centre = mean(per_window)
    f = min(meter.update_s / (2 * window_s), 0.5) if window_s > 0 else 0.0
    scale = 1 / math.sqrt((1 - f) ** 2 + f**2)
    per_second = centre / window_s if window_s > 0 else 0.0  # the mean power, in J/token per second
    u_gap = min(meter.smear_s, gap_s) * per_second / math.sqrt(3)
    u_step = (meter.quantum_w or 0.0) / 2 * window_s * per_token / math.sqrt(3)
    half = combined_mean_ci_half_width(per_window, (u_gap, u_step), spread_scale=scale)
    return {"half_width_j": half, "rel": half / centre if half is not None and centre > 0 else None, "n": n,
            "spread_scale": scale, "u_gap_j": u_gap, "u_step_j": u_step, "smear_s": meter.smear_s, "gap_s": gap_s, "unavailable": None,
            **kept}


def _resolved(windows: Sequence[Window], resolution_s: float, update_s: float = 0.0) -> bool:
    """Windows long enough for the meter's update period, and for the source's resolution on their
    own or back to back (as in sustained mode) over a long enough span.

    Each window must hold MIN_UPDATES_PER_WINDOW of the meter's measured update periods: a
    shorter one integrates one or two stale values, whatever its neighbours. Against the source's
    resolution (its read interval), MIN_PERIODS_PER_WINDOW periods; that interpolation error sits
    at window edges, and edges between adjacent windows cancel, so a run of contiguous windows
    is resolved when its whole span is.
    """
    busy = sum(b - a for _, a, b in windows)
    if busy / len(windows) < MIN_UPDATES_PER_WINDOW * update_s * 1e9:
        return False
    need = MIN_PERIODS_PER_WINDOW * resolution_s
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
        **({"parts": [r.parts for r in readings]} if any(r.parts for r in readings) else {}),
    }


def unavailable_fields(reason: str, sampling: dict | None = None) -> dict:
    detail = {"unavailable": reason, **({"sampling": sampling} if sampling else {})}
    return {"energy_unavailable": reason, "energy_detail": detail}


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
    interval_s: float | None  # None: read at the window edges, not on a schedule
    stats: PollStats | None = None  # read errors and missed samples of this test
    sampling: str = ""  # how the readings were taken (window edges, monitor process, thread)
    max_gap_s: float | None = None  # a counter read further apart than this may have wrapped unseen
    # the meter's update period, seen while idle (meter.py); unknown: measured on the test's own readings
    meter: MeterUpdate = meter_mod.UNKNOWN
    declared_update_s: float | None = None  # the source's own averaging interval, if it states one


def test_meter(inp: EnergyInputs) -> MeterUpdate:
    """The meter's update period: from the idle baseline, or, without one, from a sampled source's
    readings during the test (counters read at window edges are too irregular for that)."""
    if inp.meter.bound != "unknown":
        return inp.meter
    if inp.interval_s is None:
        declared = inp.declared_update_s
        return MeterUpdate(declared, "declared", "declared by the source") if declared else inp.meter
    found = meter_mod.observe([r.t_ns for r in inp.readings], [r.value for r in inp.readings], inp.interval_s,
                              inp.cumulative, inp.declared_update_s)
    return MeterUpdate(found.update_s, found.bound, f"during the test: {found.basis}", found.quantum_w)


def mean_gap_s(windows: Sequence[Window]) -> float:
    """Mean time between the end of one window and the start of the next (any phase)."""
    ordered = sorted(windows, key=lambda w: w[1])
    gaps = [max(b[1] - a[2], 0) for a, b in zip(ordered, ordered[1:], strict=False)]
    return sum(gaps) / len(gaps) / 1e9 if gaps else 0.0


def _phases(inp: EnergyInputs, share: float | None, found: MeterUpdate) -> dict[str, PhaseEnergy]:
    prov = inp.provenance
    resolution = max(prov.resolution_s, inp.interval_s or 0.0) if prov.resolution_s else 0.0
    view = MeterView(measured=prov.measured, update_s=found.stale_s, read_interval_s=inp.interval_s or 0.0,
                     quantum_w=found.quantum_w)
    gap = mean_gap_s(inp.windows)
    phases = {}
    for phase, tokens in (("prefill", inp.n_prompt), ("decode", inp.n_gen)):
        windows = [w for w in inp.windows if w[0] == phase]
        result = phase_energy(inp.readings, inp.cumulative, windows, tokens, inp.idle_w, share, resolution, view, gap)
        if result is not None:
            phases[phase] = result
    return phases


def _sampling_dict(inp: EnergyInputs, found: MeterUpdate | None = None) -> dict:
    stats = inp.stats or PollStats(taken=len(inp.readings))
    found = found or inp.meter
    return {"mode": inp.sampling, "interval_s": inp.interval_s, **stats.to_dict(),
            "meter_update_s": found.update_s, "meter_update": found.to_dict()}


def _series_problem(inp: EnergyInputs) -> str | None:
    """Why the whole test has no energy figure, or None."""
    prov = inp.provenance
    if len(inp.readings) < 2:
        errors = f" ({'; '.join(inp.stats.errors)})" if inp.stats and inp.stats.errors else ""
        return f"{prov.source} gave {len(inp.readings)} reading(s) during the test, at least two are needed{errors}"
    if inp.max_gap_s:
        gap = max(b.t_ns - a.t_ns for a, b in zip(inp.readings, inp.readings[1:], strict=False)) / 1e9
        if gap > inp.max_gap_s:
            return (f"{prov.source} was read {gap:.0f} s apart, longer than half its shortest wrap period "
                    f"({inp.max_gap_s * 2:.0f} s); a wrap may have been missed")
    return None


def attribution_label(system_wide: bool, share: float | None) -> str:
    """``energy_attribution``: "process-share", "system-wide" (the share could not be computed, so
    the figure is the whole machine's) or "as-given" (a --watts constant is never split)."""
    if not system_wide:
        return "as-given"
    return "process-share" if share is not None else "system-wide"


def energy_fields(inp: EnergyInputs, label: str) -> tuple[dict, list[str]]:
    """Row fields and warnings for one test."""
    prov = inp.provenance
    found = test_meter(inp) if len(inp.readings) >= 2 else inp.meter
    sampling = _sampling_dict(inp, found)
    counts = {"energy_samples": sampling["taken"], "energy_samples_missed": sampling["missed"],
              "energy_read_errors": sampling["read_errors"], "energy_sampling": inp.sampling or None}
    warnings = _sampling_warnings("energy", sampling, label)
    problem = _series_problem(inp)
    if problem:
        return {**unavailable_fields(problem, sampling), **counts}, warnings + [f"{label}: energy unavailable: {problem}"]
    share, basis = attribution_share(inp.readings, inp.windows) if prov.system_wide else (None, "not system-wide")
    phases = _phases(inp, share, found)
    ok = {name: p for name, p in phases.items() if p.unavailable is None}
    if not ok:
        reason = "; ".join(f"{p.phase}: {p.unavailable}" for p in phases.values()) or "no timed window"
        return ({**unavailable_fields(reason, sampling), **counts},
                warnings + [f"{label}: energy unavailable: {reason}"])
    pre, dec = ok.get("prefill"), ok.get("decode")
    total_j = sum(p.energy_j for p in ok.values())
    total_tokens = sum(p.tokens for p in ok.values())
    total_s = sum(p.duration_s for p in ok.values())
    fields = {
        "energy_source": prov.source, "energy_method": prov.method, "energy_scope": prov.scope,
        "energy_measured": prov.measured, "energy_attributed": share is not None,
        "energy_attribution": attribution_label(prov.system_wide, share),
        "energy_rate_hz": 1 / inp.interval_s if inp.interval_s else None, "energy_unavailable": None,
        "energy_prefill_j": pre.energy_j if pre else None, "energy_decode_j": dec.energy_j if dec else None,
        "energy_prefill_net_j": pre.net_j if pre else None, "energy_decode_net_j": dec.net_j if dec else None,
        "j_per_prefill_token": pre.j_per_token if pre else None,
        "j_per_decode_token": dec.j_per_token if dec else None,
        "tokens_per_j": total_tokens / total_j if total_j > 0 else None,
        "process_power_w": total_j / total_s if total_s > 0 else None,
        "device_power_w": sum(p.domain_j for p in ok.values()) / total_s if total_s > 0 else None,
        "idle_power_w": inp.idle_w, **counts,
    }
    fields["energy_detail"] = {
        "provenance": prov.to_dict(), "sample_interval_s": inp.interval_s, "sampling": sampling,
        "attribution": {"share": share, "basis": basis, "label": fields["energy_attribution"]},
        "idle": {"power_w": inp.idle_w, "reason": inp.idle_reason},
        "phases": {name: p.to_dict() for name, p in phases.items()},
        "windows_s": [[ph, (a - inp.readings[0].t_ns) / 1e9, (b - inp.readings[0].t_ns) / 1e9]
                      for ph, a, b in inp.windows],
        "samples": samples_dict(inp.readings, inp.cumulative),
    }
    groups = integ.parts_mean_w(inp.readings, [(a, b) for _, a, b in inp.windows])
    if groups:
        # per-group device power over the timed windows (not attributed: the groups are the machine's)
        fields["energy_detail"]["groups"] = {"power_w": groups, "basis": "mean over the test's timed windows, "
                                             "whole device (not split by CPU-time share)"}
    return fields, warnings + _energy_warnings(phases, label, inp, share, basis, found)


def interval_check(inp: EnergyInputs) -> tuple[float | None, str | None]:
    """The widest J/token 95% interval (over its mean) of the phases, or (None, why) when one can
    never have one (estimated, or windows the meter does not resolve); (None, None): not yet."""
    if not inp.provenance.measured:
        return None, "the energy is estimated: no interval"
    if _series_problem(inp):
        return None, None
    share = attribution_share(inp.readings, inp.windows)[0] if inp.provenance.system_wide else None
    phases = _phases(inp, share, test_meter(inp)).values()
    unresolved = [p.phase for p in phases if not p.resolved]
    if unresolved:
        return None, f"{', '.join(unresolved)} windows shorter than the meter resolves"
    rels = [p.j_per_token_ci95_rel for p in phases]
    if not rels or None in rels:
        return None, None
    return max(rels), None


def _sampling_warnings(kind: str, sampling: dict, label: str) -> list[str]:
    if not sampling["expected"] or sampling["missed"] / sampling["expected"] <= MAX_MISSED_FRACTION:
        return []
    errors = f"; errors: {'; '.join(sampling['errors'])}" if sampling["errors"] else ""
    return [f"{label}: {sampling['missed']} of {sampling['expected']} {kind} samples missed "
            f"({sampling['read_errors']} failed reads, {sampling['late_slots']} late wake-ups){errors}"]


def _energy_warnings(phases: dict[str, PhaseEnergy], label: str, inp: EnergyInputs,
                     share: float | None, basis: str, found: MeterUpdate) -> list[str]:
    warnings = []
    if inp.provenance.system_wide and share is None:
        warnings.append(f"{label}: energy is the whole machine's (system-wide), not this process's: {basis}")
    resolution = max(inp.provenance.resolution_s, inp.interval_s or 0.0)
    for p in phases.values():
        if p.unavailable is not None:
            warnings.append(f"{label}: {p.phase} energy unavailable: {p.unavailable}")
            continue
        if not p.resolved:
            warnings.append(
                f"{label}: {p.phase} windows average {p.duration_s / p.windows * 1e3:.1f} ms, shorter than "
                f"{MIN_PERIODS_PER_WINDOW}x the energy source's resolution ({resolution * 1e3:.0f} ms)"
                + (f" or {MIN_UPDATES_PER_WINDOW}x the meter's update period ({found.stale_s:.2g} s, {found.bound})"
                   if found.stale_s else "")
                + "; its J/token is interpolated, not resolved; use larger -p/-n"
            )
        if p.resolved and p.net_j is not None and p.net_j < 0:
            warnings.append(f"{label}: {p.phase} net energy is negative: the idle baseline drew more than the "
                            "test did (other work during the idle window?)")
    return warnings


def thermal_fields(readings: list[thermal.ThermalReading], sensors: thermal.ThermalSensors,
                   label: str, sustained: bool = False, sampling: dict | None = None,
                   ) -> tuple[dict, list[str], thermal.ThermalSummary]:
    summary = thermal.summarize(readings, sensors.has_throttle_indicator, use_freq_drop=sustained)
    t0 = readings[0].t_ns if readings else 0
    sampling = sampling or {"mode": None, "taken": 0, "read_errors": 0, "late_slots": 0, "missed": 0,
                            "expected": 0, "errors": []}
    # A reading may succeed while some of its sensors fail: those count as read errors too.
    sensor_errors = sum(r.read_errors for r in readings)
    detail = {
        "summary": summary.to_dict(),
        "sampling": {**sampling, "sensor_read_errors": sensor_errors},
        "samples": {
            "t0_ns": t0,
            "t_s": [(r.t_ns - t0) / 1e9 for r in readings],
            "temp_max_c": [r.temp_max_c for r in readings],
            "skin_temp_c": [r.skin_temp_c for r in readings],
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
        "thermal_samples_missed": sampling["missed"], "thermal_read_errors": sampling["read_errors"] + sensor_errors,
    }
    warnings = [f"{label}: throttled during the test ({', '.join(summary.reasons)}); "
                f"{thermal.throttle_advice(summary.reasons)}"] if summary.throttled else []
    warnings += _sampling_warnings("thermal", sampling, label)
    if sensor_errors:
        warnings.append(f"{label}: {sensor_errors} thermal sensor read(s) failed during the test")
    return fields, warnings, summary


def _stats_from(data: dict) -> PollStats:
    return PollStats(**{k: data[k] for k in ("taken", "read_errors", "late_slots", "errors")})


class TestTracker:
    """Energy and thermal readings around one test, taken where they cost the test least.

    Counters (RAPL, hwmon energy, the CPU-time models) are read only at the runner's window
    edges, in this process but outside the timed windows: no thread at all. Sources that must
    be sampled (power sensors, the Pi PMIC) and the thermal sensors are read by the session's
    monitor process; only when that cannot run (tests with a fake clock or recorded device
    commands, or the monitor failed) do they fall back to threads here, and the row says so.
    """

    __test__ = False  # not a pytest class

    def __init__(self, session: EnergySession) -> None:
        self.session = session
        source = session.choice.source
        self.sampler = Sampler(source, session.clock) if source is not None else None
        self.edges = source is not None and source.cumulative
        self.monitor = session.monitor() if (self.sampler and not self.edges) or not session.sensors.empty else None
        self.energy_in_monitor = self.monitor is not None and self.sampler is not None and not self.edges
        self.thermal_in_monitor = self.monitor is not None and not session.sensors.empty
        self.thermal = None if session.sensors.empty or self.thermal_in_monitor else session.sensors.poller(session.clock)
        self.energy_readings: list[Reading] = []
        self.energy_stats: PollStats | None = None
        self.thermal_readings: list[thermal.ThermalReading] = []
        self.thermal_sampling: dict | None = None
        self._edge_token = None

    @property
    def energy_sampling(self) -> str:
        if self.sampler is None:
            return ""
        if self.edges:
            return "window edges (read in the measured process, outside the timed windows)"
        rate = f"{1 / self.sampler.interval_s:g} Hz"
        if self.energy_in_monitor:
            return f"{rate} in the monitor process"
        return f"{rate} in a thread of the measured process ({self.session.monitor_unavailable or 'no monitor'})"

    def __enter__(self) -> TestTracker:
        if self.monitor is not None:
            try:
                self.monitor.start()
            except MonitorError as exc:
                self._monitor_failed(exc)
        if self.thermal is not None:
            self.thermal.start()
        if self.sampler is not None and self.edges:
            self.sampler.open().take()  # brackets the first window; then every window edge
            self._edge_token = window_edge.set(self.sampler.take)
        elif self.sampler is not None and not self.energy_in_monitor:
            self.sampler.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._edge_token is not None:
            window_edge.reset(self._edge_token)
            self.sampler.take()  # brackets the last window
        if self.sampler is not None and not self.energy_in_monitor:
            self.energy_readings = self.sampler.stop() if not self.edges else self.sampler.readings
            self.energy_stats = self.sampler.poller.stats
        if self.thermal is not None:
            self.thermal_readings = self.thermal.stop()
            self.thermal_sampling = {"mode": f"{thermal.RATE_HZ:g} Hz in a thread of the measured process",
                                     **self.thermal.stats.to_dict()}
        if self.monitor is not None:
            try:
                self._collect(self.monitor.stop())
            except MonitorError as exc:
                self._monitor_failed(exc)
        # the clock of the CPUs this process ran on, not a mean with idle ones (issue #19.11)
        self.thermal_readings = thermal.on_busy_cpus(self.thermal_readings, thermal.affinity())

    def _monitor_failed(self, exc: MonitorError) -> None:
        """The monitor died mid-run: this test's sampled figures are unavailable (with the reason,
        never zeros) and the next tests fall back to threads."""
        self.monitor = None
        self.session.monitor_failed(str(exc))
        failed = PollStats(errors=[str(exc)])
        if self.energy_in_monitor:
            self.energy_readings, self.energy_stats = [], failed
        if self.thermal_in_monitor:
            self.thermal_readings = []
            self.thermal_sampling = {"mode": "monitor process (failed)", **failed.to_dict()}

    def _collect(self, data: dict) -> None:
        """Readings from the monitor process."""
        if "energy" in data:
            energy = data["energy"]
            self.energy_readings = [Reading(*r) for r in energy["readings"]]
            self.energy_stats = _stats_from(energy["stats"])
        if "thermal" in data:
            therm = data["thermal"]
            self.thermal_readings = [thermal.ThermalReading(**r) for r in therm["readings"]]
            self.thermal_sampling = {"mode": f"{1 / therm['interval_s']:g} Hz in the monitor process",
                                     **therm["stats"]}

    def row_fields(self, windows: list[Window], n_prompt: int, n_gen: int, label: str,
                   sustained: bool = False) -> tuple[dict, list[str], thermal.ThermalSummary]:
        """The test row's energy and thermal fields, their warnings, and the thermal summary."""
        fields, warnings = self._energy(windows, n_prompt, n_gen, label)
        more, thermal_warnings, summary = thermal_fields(self.thermal_readings, self.session.sensors, label, sustained,
                                                         self.thermal_sampling)
        return {**fields, **more}, warnings + thermal_warnings, summary

    def _inputs(self, readings: list[Reading], windows: list[Window], n_prompt: int, n_gen: int) -> EnergyInputs:
        idle = self.session.idle
        source = self.sampler.source
        return EnergyInputs(
            readings=readings, provenance=source.provenance, cumulative=source.cumulative,
            windows=windows, n_prompt=n_prompt, n_gen=n_gen,
            idle_w=idle.power_w if idle else None, idle_reason=idle.reason if idle else "not measured",
            interval_s=None if self.edges else self.sampler.interval_s, stats=self.energy_stats,
            sampling=self.energy_sampling, max_gap_s=2 * source.max_interval_s if source.max_interval_s else None,
            meter=idle.meter if idle else meter_mod.UNKNOWN, declared_update_s=source.declared_update_s,
        )

    def _energy(self, windows: list[Window], n_prompt: int, n_gen: int, label: str) -> tuple[dict, list[str]]:
        if self.sampler is None:
            return unavailable_fields(self.session.choice.unavailable_reason or "no energy source"), []
        return energy_fields(self._inputs(self.energy_readings, windows, n_prompt, n_gen), label)

    def readings_so_far(self) -> list[Reading]:
        """The energy readings of this test up to now (the monitor's too), mid-test."""
        if self.energy_in_monitor and self.monitor is not None:
            try:
                return [Reading(*r) for r in self.monitor.peek()]
            except MonitorError:
                return []  # __exit__ finds the monitor dead too, and says so in the row
        return self.sampler.readings if self.sampler is not None else []

    def interval_now(self, windows: list[Window], n_prompt: int, n_gen: int) -> tuple[float | None, str | None]:
        """For --energy-target: the widest J/token interval over the phases (half-width over the mean),
        from the windows the readings already bracket; or None and, when it can never come, why."""
        if self.sampler is None:
            return None, "no energy source"
        readings = self.readings_so_far()
        if len(readings) < 2:
            return None, None
        done = [w for w in windows if w[2] <= readings[-1].t_ns]
        return interval_check(self._inputs(readings, done, n_prompt, n_gen))


def idle_readings(sampler: Sampler, seconds: float, clock: Callable[[], int],
                  sleep: Callable[[float], None]) -> list[Reading]:
    """Read every ``sampler.interval_s`` for ``seconds``, and once more at the end."""
    end = clock() + seconds * 1e9
    sampler.take()
    for _ in range(math.ceil(seconds / sampler.interval_s) + 1):  # bounded, whatever the clock does
        now = clock()
        if now >= end:
            break
        sleep(min(sampler.interval_s, (end - now) / 1e9))
        sampler.take()
    return sampler.readings


class EnergySession:
    def __init__(self, choice: Choice, sensors: thermal.ThermalSensors,
                 clock: Callable[[], int] = time.perf_counter_ns, out_of_process: bool = True,
                 spec: dict | None = None) -> None:
        self.choice = choice
        self.sensors = sensors
        self.clock = clock
        self.idle: IdleBaseline | None = None
        # how the chosen source was chosen, so the monitor process can probe the same one
        self.spec = spec or {}
        self.out_of_process = out_of_process
        self.monitor_unavailable: str | None = None  # why sampling falls back to threads
        self._monitor: Monitor | None = None

    @classmethod
    def open(cls, watts: float | None = None, cpu_model: str | None = None, board: str | None = None,
             track: bool = True) -> EnergySession:
        if not track:
            return cls(Choice(None, [], "not tracked (--no-energy)"), thermal.ThermalSensors())
        return cls(choose(watts, cpu_model, board), thermal.ThermalSensors.discover(),
                   spec={"watts": watts, "cpu_model": cpu_model, "board": board})

    def monitor(self) -> Monitor | None:
        """The monitor process (started on first use), or None with ``monitor_unavailable`` set."""
        if self._monitor is None and self.monitor_unavailable is None:
            self.monitor_unavailable = self._why_no_monitor()
            if self.monitor_unavailable is None:
                self._start_monitor()
        return self._monitor

    def _why_no_monitor(self) -> str | None:
        if not self.out_of_process:
            return "out-of-process sampling is off"
        if self.clock is not time.perf_counter_ns:
            return "a test clock"
        if sysfs.command_runner_replaced():
            return "device commands are replaced in this process"
        return None

    def _start_monitor(self) -> None:
        source = self.choice.source
        energy = None
        if source is not None and not source.cumulative:
            energy = {**self.spec, "source": source.provenance.source}
        try:
            self._monitor = Monitor(os.getpid(), energy, not self.sensors.empty)
        except MonitorError as exc:
            self.monitor_unavailable = str(exc)
            return
        weakref.finalize(self, self._monitor.close)

    def monitor_failed(self, reason: str) -> None:
        if self._monitor is not None:
            self._monitor.close()
        self._monitor, self.monitor_unavailable = None, reason

    def close(self) -> None:
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None

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
        # Nothing is measured during the idle window, so it is read right here, on the sampler's
        # schedule: every read is also a chance to see the meter's value change (meter.py).
        sampler = Sampler(source, self.clock).open()
        readings = idle_readings(sampler, seconds, self.clock, sleep)
        power = integ.mean_power_w(readings, source.cumulative) if len(readings) >= 2 else None
        duration = (readings[-1].t_ns - readings[0].t_ns) / 1e9 if readings else 0.0
        if power is not None and power <= 0:
            power = None  # a counter that did not move while idle: unavailable, not a 0 W baseline
        reason = None if power is not None else (f"{source.provenance.source} gave {len(readings)} reading(s) "
                                                 "or no energy while idle")
        found = meter_mod.observe([r.t_ns for r in readings], [r.value for r in readings], sampler.interval_s,
                                  source.cumulative, source.declared_update_s)
        return IdleBaseline(power, duration, reason, readings, found)

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
