"""Section "suite scores": the 95% intervals ``profiler run --suite`` prints for the LocalScore
(10 x the cube root of prompt t/s x generation t/s x 1000 / TTFT, each the mean over the nine
tests) and for MLPerf Client's geometric means of TTFT and TPS over its categories
(``profiler/measure/suites``: the delta method on the log, ``stats.log_delta_interval``).

Each simulated run builds every shape's repetitions as the runner records them (TTFT per
repetition, inter-token latencies per decode) and hands them to the suite's own ``score``. A
repetition r of a test is slowed by a factor a_r shared by its prompt and its decodes (the
machine's load, so the three LocalScore parts are correlated within a repetition) and by its
own factors b_r (prompt) and c_r (decodes), all lognormal:

    prompt ms = P0 a b,   every inter-token latency = I0 a c.

The truth is the score of the expected per-repetition figures, which these lognormals give
exactly: E[prompt t/s] = n_prompt / P0 x exp((sa^2 + sb^2)/2), E[TTFT] = P0 E[ab] + I0 E[ac], and so
on; base speeds follow a small model on this machine (prompt ~2000 t/s at 1k tokens, slower with
length; generation ~100 t/s, slower with depth). A run is covered when the printed interval holds
the truth.

Rows: spread (sa, sb, sc) of (2%, 1%, 1%), (5%, 2%, 2%) and (10%, 3%, 3%) at 5 repetitions (the
default -r), and 5% at 3 and at 10 repetitions. The delta method is first-order: at 2 repetitions
per test its Welch-Satterthwaite degrees of freedom come from 1 per test, which the last row shows.
"""

from __future__ import annotations

import math

import numpy as np

from coverage_sections import CoverageRow
from profiler.measure.suites import ShapeSamples, localscore, mlperf_client

TITLE = "suite scores: LocalScore and MLPerf-Client-shaped geometric means, 95% CI from the repetitions"
ORDER = 60
CASES = [  # (sa, sb, sc, repetitions, in the goal)
    (0.02, 0.01, 0.01, 5, True),
    (0.05, 0.02, 0.02, 5, True),
    (0.10, 0.03, 0.03, 5, True),
    (0.05, 0.02, 0.02, 3, True),
    (0.05, 0.02, 0.02, 10, True),
    (0.05, 0.02, 0.02, 2, False),
]


def base_ms(n_prompt: int, n_gen: int) -> tuple[float, float]:
    """A plausible prompt time and inter-token latency (ms) for a small model on 2 cores."""
    prompt_tps = 2000 / (1 + n_prompt / 4096)
    itl_ms = 10 * (1 + (n_prompt + n_gen / 2) / 8192)
    return n_prompt / prompt_tps * 1000, itl_ms


def draw(rng: np.random.Generator, shapes, spread: tuple[float, float, float], reps: int) -> list[ShapeSamples]:
    sa, sb, sc = spread
    out = []
    for shape in shapes:
        p0, i0 = base_ms(shape.n_prompt, shape.n_gen)
        a, b, c = (np.exp(s * rng.standard_normal(reps)) for s in (sa, sb, sc))
        out.append(ShapeSamples(shape.n_prompt, shape.n_gen, list(p0 * a * b),
                                [[float(i0 * ar * cr)] * shape.n_gen for ar, cr in zip(a, c, strict=True)]))
    return out


def _lognormal_mean(*sigmas: float) -> float:
    return math.exp(sum(s * s for s in sigmas) / 2)


def true_localscore(spread: tuple[float, float, float]) -> float:
    sa, sb, sc = spread
    figures = []
    for shape in localscore.SHAPES:
        p0, i0 = base_ms(shape.n_prompt, shape.n_gen)
        prompt = shape.n_prompt * 1000 / p0 * _lognormal_mean(sa, sb)
        gen = 1000 / i0 * _lognormal_mean(sa, sc)
        ttft = p0 * _lognormal_mean(sa, sb) + i0 * _lognormal_mean(sa, sc)
        figures.append((prompt, gen, ttft))
    return localscore.localscore(*(float(np.mean([f[i] for f in figures])) for i in range(3)))


def true_mlperf(spread: tuple[float, float, float]) -> tuple[float, float]:
    sa, sb, sc = spread
    ttft, tps = [], []
    for shape in mlperf_client.SHAPES:
        p0, i0 = base_ms(shape.n_prompt, shape.n_gen)
        ttft.append(p0 * _lognormal_mean(sa, sb) / 1000)
        tps.append(1000 / (i0 * _lognormal_mean(sa, sc)))
    return math.exp(np.mean(np.log(ttft))), math.exp(np.mean(np.log(tps)))


def simulate(spread: tuple[float, float, float], reps: int, runs: int, seed: int) -> dict[str, tuple[int, float]]:
    """Covered runs and mean relative half-width for the LocalScore and the two MLPerf geometric means."""
    rng = np.random.default_rng(seed)
    truths = {"LocalScore": true_localscore(spread)}
    truths["MLPerf TTFT geomean"], truths["MLPerf TPS geomean"] = true_mlperf(spread)
    hits = dict.fromkeys(truths, 0)
    widths = dict.fromkeys(truths, 0.0)
    for _ in range(runs):
        figures = {"LocalScore": localscore.score(draw(rng, localscore.SHAPES, spread, reps)).headline[0]}
        ttft, tps = mlperf_client.score(draw(rng, mlperf_client.SHAPES, spread, reps)).headline
        figures["MLPerf TTFT geomean"], figures["MLPerf TPS geomean"] = ttft, tps
        for name, f in figures.items():
            hits[name] += f.low <= truths[name] <= f.high
            widths[name] += (f.high - f.low) / 2 / f.value
    return {name: (hits[name], widths[name] / runs) for name in truths}


def rows(runs: int, seed: int) -> list[CoverageRow]:
    out = []
    for i, (sa, sb, sc, reps, goal) in enumerate(CASES):
        result = simulate((sa, sb, sc), reps, runs, seed + 101 * i)
        for name, (covered, width) in result.items():
            out.append(CoverageRow(
                interval=f"--suite {name} CI", case=f"load {sa:.0%}, prompt {sb:.0%}, decode {sc:.0%}, -r {reps}",
                runs=runs, covered=covered, mean_width=100 * width, width_unit="% of value, half-width", goal=goal))
    return out


NOTES = [
    "-r 2 is a limit, outside the goal: each test gives its variance 1 degree of freedom, and the "
    "Welch-Satterthwaite count over 5-9 tests is a rough stand-in for the sum's true distribution.",
    "Not covered by any interval here: drift between repetitions (they are taken as independent), "
    "and the difference between our timings and LocalScore's or MLPerf Client's own programs.",
]
