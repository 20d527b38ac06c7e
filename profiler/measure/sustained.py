"""Sustained mode: decode without pause for a set time, and see what heat does to speed.

It reuses the runner: the loop repeats ``run_repetition`` of one decode-only test (each
repetition a "chunk" of n_gen tokens on an emptied KV cache, so the depth stays bounded)
until the time is up. Burst rate is the decode rate over the first seconds, steady rate
over the last 30%, and the thermal sampler's curve gives the throttle onset.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from profiler.backends.base import Backend
from profiler.measure import runner
from profiler.measure.plan import TestConfig
from profiler.measure.runner import TestTimings, TokenSource
from profiler.platform.thermal import ThermalReading, ThermalSummary

BURST_S = 10.0  # burst window: the first 10 s, or the first 10% of a shorter run
BURST_FRACTION = 0.1
STEADY_FRACTION = 0.3  # steady state: the last 30% of the run


def run_sustained(
    backend: Backend, test: TestConfig, tokens: TokenSource, duration_s: float, warmup: bool = True,
) -> TestTimings:
    """Decode chunks of ``test.n_gen`` tokens back to back for ``duration_s`` seconds."""
    backend.set_threads(test.n_threads)
    if warmup:
        runner.warm_up(backend, test, tokens)
    timings = TestTimings()
    start = runner.now_ns()
    while runner.now_ns() - start < duration_s * 1e9:
        runner.run_repetition(backend, test, tokens, timings)
    return timings


@dataclass
class SustainedSummary:
    duration_s: float
    chunks: int
    burst_ts: float
    steady_ts: float
    steady_over_burst: float
    throttle_onset_s: float | None
    onset_basis: str | None
    onset_note: str
    chunk_t_s: list[float]  # chunk start, seconds from the first chunk
    chunk_ts: list[float]  # decode tokens/s of each chunk

    def to_dict(self) -> dict:
        return asdict(self)


def _rate(chunks: list[tuple[float, int, int]]) -> float:
    tokens = sum(n for _, n, _ in chunks)
    return tokens * 1e9 / sum(ns for _, _, ns in chunks)


def summarize(timings: TestTimings, n_gen: int, duration_s: float, thermal_summary: ThermalSummary,
              has_indicator: bool) -> SustainedSummary:
    starts = [a for phase, a, _ in timings.windows if phase == "decode"]
    t0 = starts[0]
    chunks = [((a - t0) / 1e9, n_gen, sum(ns)) for a, ns in zip(starts, timings.token_ns, strict=True)]
    span = max(t for t, _, _ in chunks) if chunks else 0.0
    burst_end = min(BURST_S, BURST_FRACTION * duration_s)
    burst = [c for c in chunks if c[0] < burst_end] or chunks[:1]
    steady = [c for c in chunks if c[0] >= (1 - STEADY_FRACTION) * span] or chunks[-1:]
    onset = thermal_summary.onset_ns
    if onset is not None:
        note = f"throttling began {max((onset - t0) / 1e9, 0.0):.1f} s in ({thermal_summary.onset_basis})"
    elif has_indicator:
        note = f"no throttling in {duration_s:g} s"
    else:
        note = "unknown: this device has no throttle indicator and its clock did not visibly drop"
    burst_ts, steady_ts = _rate(burst), _rate(steady)
    return SustainedSummary(
        duration_s=duration_s, chunks=len(chunks), burst_ts=burst_ts, steady_ts=steady_ts,
        steady_over_burst=steady_ts / burst_ts,
        throttle_onset_s=max((onset - t0) / 1e9, 0.0) if onset is not None else None,
        onset_basis=thermal_summary.onset_basis, onset_note=note,
        chunk_t_s=[c[0] for c in chunks], chunk_ts=[n * 1e9 / ns for _, n, ns in chunks],
    )


def sustained_fields(summary: SustainedSummary, readings: list[ThermalReading], t0_ns: int) -> dict:
    """Row fields, with the temperature/frequency curve on the same time axis as the chunks."""
    curve = {
        "t_s": [(r.t_ns - t0_ns) / 1e9 for r in readings],
        "temp_max_c": [r.temp_max_c for r in readings],
        "freq_ratio": [r.freq_ratio for r in readings],
    }
    return {
        "sustained_s": summary.duration_s,
        "burst_ts": summary.burst_ts,
        "steady_ts": summary.steady_ts,
        "throttle_onset_s": summary.throttle_onset_s,
        "sustained_detail": {**summary.to_dict(), "thermal_curve": curve},
    }
