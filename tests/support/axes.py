"""Checks on plot axes shared by the HTML plot tests."""

from __future__ import annotations

import math


def is_round(step: float) -> bool:
    """Whether a tick step is 1, 2 or 5 times a power of ten."""
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(math.isclose(mantissa, m) for m in (1, 2, 5))
