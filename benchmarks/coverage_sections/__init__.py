"""Sections of ``benchmarks/coverage.py``: one module per printed interval family (issue #19).

Each module defines

    TITLE: str                       # e.g. "Wilson accuracy interval"
    ORDER: int                       # where the section prints (lower first)
    def rows(runs: int, seed: int) -> list[CoverageRow]

and may print its own detail table from ``rows`` (through ``detail`` lines). ``coverage.py``
imports every module here, prints each section, then one summary table (the README's): for every
row, the interval, the case, nominal level, observed coverage over ``runs`` simulated runs with a
known truth, and the mean width in the interval's own unit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class CoverageRow:
    interval: str          # what the product prints, e.g. "-r auto t/s CI"
    case: str              # the simulated truth, e.g. "iid CV 3%, target 1%"
    runs: int              # simulated runs behind the coverage figure
    covered: int           # runs whose printed interval held the truth
    mean_width: float      # mean full width (or half-width; say which in width_unit)
    width_unit: str        # e.g. "% of mean, half-width", "points, full width"
    nominal: float = 0.95
    goal: bool = True      # counts towards the 93-97% goal (False for a case shown as a limit, e.g. AR(1))
    detail: list[str] = field(default_factory=list)  # extra lines printed under the section

    @property
    def coverage(self) -> float:
        return self.covered / self.runs

    @property
    def in_goal(self) -> bool:
        return 0.93 <= self.coverage <= 0.97

    def standard_error(self) -> float:
        return math.sqrt(self.nominal * (1 - self.nominal) / self.runs)
