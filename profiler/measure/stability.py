"""Warnings that a measurement may be unreliable, each naming its fix (pyperf's habits).

The statistics they read live in ``profiler.stats``; the wording here speaks of this tool's
flags (-r, --delay, -p/-n) and of the machine, so it belongs with measurement."""

from __future__ import annotations

from collections.abc import Sequence

from profiler.stats import cv, mean

CV_WARN = 0.05
SHORT_SAMPLE_S = 0.100
BUSY_LOAD_FRACTION = 0.5


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
