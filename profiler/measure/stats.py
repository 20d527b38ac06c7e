"""Summary statistics and the stability warnings that come with them (pyperf's habits)."""

from __future__ import annotations

import math
from collections.abc import Sequence

CV_WARN = 0.05
SHORT_SAMPLE_S = 0.100
BUSY_LOAD_FRACTION = 0.5


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (n-1), 0 for a single sample, as llama-bench reports it."""
    n = len(values)
    if n < 2:
        return 0.0
    m = mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1))


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method), q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def cv(values: Sequence[float]) -> float:
    m = mean(values)
    return stdev(values) / m if m else math.nan


def stability_warnings(samples_s: Sequence[float], test_name: str) -> list[str]:
    """Warnings about one test's samples, each naming the fix."""
    warnings = []
    c = cv(samples_s)
    if len(samples_s) >= 2 and c > CV_WARN:
        warnings.append(
            f"{test_name}: unstable, CV {c:.1%} > {CV_WARN:.0%}; close other programs, add -r repetitions or --delay"
        )
    m = mean(samples_s)
    if m < SHORT_SAMPLE_S:
        warnings.append(
            f"{test_name}: samples are short ({m * 1e3:.1f} ms < {SHORT_SAMPLE_S * 1e3:.0f} ms); "
            "timer and scheduler noise weigh more, use larger -p/-n"
        )
    return warnings


def busy_warning(load1: float | None, n_cpus: int) -> str | None:
    """A warning when the 1-minute load average shows other work on the machine."""
    if load1 is None or n_cpus <= 0:
        return None
    if load1 >= BUSY_LOAD_FRACTION * n_cpus:
        return (
            f"machine was busy before the start (load average {load1:.2f} on {n_cpus} CPUs); "
            "results may be slow and noisy, stop other work or wait for the load to fall"
        )
    return None
