"""The 95% interval of a positive score built from several independent means by products,
quotients, powers and geometric means (a cube root of a product, a geometric mean over
categories): the delta method on the log scale.

The score's log is a smooth function of the group means (one group per test shape). Its
first-order change from each repetition is that repetition's *influence*: the gradient of
log(score) with respect to the group's per-repetition measurements, dotted with them. The
caller computes the influences (it knows the formula); here they are turned into a variance
and an interval:

    Var(log score) ~ sum over groups g of  s_g^2 / n_g      (s_g: sample sd of g's influences)

with Student's t at the Welch-Satterthwaite degrees of freedom (sum v_g)^2 / sum v_g^2/(n_g - 1),
rounded down (a slightly wider interval, and a t that t_critical caches), and the interval exp(log score +- t se): multiplicative, so it stays positive and is wider above
than below, as a ratio's sampling distribution is. Measurements of one repetition (its prompt
rate, its generation rate, its TTFT) are combined inside the influence, so their correlation is
accounted for. Repetitions are taken as independent: a drift between them is not covered.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from profiler.stats.constants import ALPHA
from profiler.stats.student import t_critical
from profiler.stats.summary import stdev

METHOD = "delta method on log, Welch-Satterthwaite t"


@dataclass(frozen=True)
class RatioInterval:
    """A positive estimate and its multiplicative 95% interval (low <= estimate <= high)."""

    estimate: float
    low: float
    high: float
    df: float  # the t's degrees of freedom (inf when no group varies)
    se_log: float  # standard error of log(estimate)
    method: str = METHOD


def log_delta_interval(estimate: float, influences: Sequence[Sequence[float]],
                       alpha: float = ALPHA) -> RatioInterval | None:
    """Interval of ``estimate`` from ``influences[g]``, group g's per-repetition influences on
    log(estimate); None when a group has fewer than 2 repetitions (no spread to estimate) or the
    estimate is not a positive finite number."""
    if not influences or not (estimate > 0 and math.isfinite(estimate)):
        return None
    if any(len(group) < 2 for group in influences):
        return None
    parts = [(stdev(group) ** 2 / len(group), len(group) - 1) for group in influences]
    variance = math.fsum(v for v, _ in parts)
    if variance == 0:
        return RatioInterval(estimate, estimate, estimate, math.inf, 0.0)
    df = float(min(10_000, math.floor(variance**2 / math.fsum(v * v / dof for v, dof in parts if v > 0))))
    se = math.sqrt(variance)
    half = t_critical(df, alpha) * se
    return RatioInterval(estimate, estimate * math.exp(-half), estimate * math.exp(half), df, se)

