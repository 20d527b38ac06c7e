"""Test suites people already know (``profiler run --suite NAME``): their test shapes, and their
scores computed the way their own tools compute them, from our repetitions (docs/suites.md).

A suite is a fixed list of prompt + generation shapes run with random token ids (as both
originals do, or in MLPerf Client's case, as a stand-in for its prompts); everything else of the
sweep (threads, batch sizes, repetitions, -r auto, the fleet) composes as usual. Each suite module
gives ``SUITE`` (its shapes) and ``score(samples)`` (its figures with 95% intervals from the
repetitions, profiler.stats.delta).
"""

from __future__ import annotations

import dataclasses

from profiler.errors import UserError
from profiler.measure.plan import Sweep
from profiler.measure.suites import localscore, mlperf_client
from profiler.measure.suites.base import Figure, ShapeSamples, Suite, SuiteScore

__all__ = ["SUITES", "Figure", "ShapeSamples", "Suite", "SuiteScore", "apply", "get"]

SUITES: dict[str, Suite] = {s.name: s for s in (localscore.SUITE, mlperf_client.SUITE)}


def get(name: str) -> Suite:
    try:
        return SUITES[name]
    except KeyError:
        raise UserError(f"--suite '{name}' is unknown (use one of {', '.join(SUITES)})") from None


def apply(sweep: Sweep, name: str) -> Sweep:
    """``sweep`` with the suite's shapes as its only tests and random token ids; threads, batch
    sizes, cache types, depth and repetitions stay as given."""
    suite = get(name)
    return dataclasses.replace(sweep, n_prompt=[], n_gen=[], prompt_gen=[(s.n_prompt, s.n_gen) for s in suite.shapes],
                               random_tokens=True)
