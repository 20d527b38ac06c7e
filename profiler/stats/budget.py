"""How many times a measured cost fits in a fixed budget (answers per battery charge), with its interval.

The cost is a weighted sum of independent means, each with its 95% half-width (e.g. prompt tokens x
prefill J/token + answer tokens x decode J/token): the sum's half-width is the weighted half-widths
in quadrature (independent errors, as in GUM). The count is budget / cost, a decreasing function of
the cost, so the interval of the count is the budget over the cost interval's ends, taken exactly
rather than linearised: whatever the cost interval covers, the count's interval covers as often.
A cost interval that reaches 0 leaves the count without an upper end (None).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FitsInBudget:
    value: float  # budget / cost
    low: float | None  # None: no interval (a part of the cost has none)
    high: float | None  # None with ``low`` set: no upper end (the cost's interval reaches 0)
    cost: float
    cost_half_width: float | None


def weighted_sum_half_width(parts: Sequence[tuple[float, float | None]]) -> float | None:
    """Half-width of sum(weight x mean) for independent means given as (weight, half-width); None
    when any part has no interval."""
    if any(h is None for _, h in parts):
        return None
    return math.sqrt(sum((w * h) ** 2 for w, h in parts))


def fits_in_budget(budget: float, parts: Sequence[tuple[float, float, float | None]]) -> FitsInBudget | None:
    """budget / sum(weight x mean) over ``parts`` = (weight, mean, half-width), with the interval
    from the cost's; None when the cost is not positive."""
    cost = sum(w * m for w, m, _ in parts)
    if cost <= 0:
        return None
    half = weighted_sum_half_width([(w, h) for w, _, h in parts])
    if half is None:
        return FitsInBudget(budget / cost, None, None, cost, None)
    low = budget / (cost + half)
    high = budget / (cost - half) if cost - half > 0 else None
    return FitsInBudget(budget / cost, low, high, cost, half)
