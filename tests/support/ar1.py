"""Synthetic t/s streams with a known mean: i.i.d. normal, or AR(1) (neighbouring repetitions
correlated, as a machine whose speed wanders between plateaus). Shared by the stats and -r auto
coverage tests (issue #19)."""

from __future__ import annotations

import math

import numpy as np

TRUE_MEAN = 100.0


def streams(seed: int, runs: int, length: int, cv: float, phi: float = 0.0) -> np.ndarray:
    """runs x length samples of mean TRUE_MEAN and marginal CV cv, AR(1) with coefficient phi."""
    e = np.random.default_rng(seed).normal(size=(runs, length))
    for i in range(1, length):
        e[:, i] = phi * e[:, i - 1] + math.sqrt(1 - phi * phi) * e[:, i]
    return TRUE_MEAN * (1 + cv * e)
