"""Simulations of ``profiler density`` on a known truth (issue #19.1 and #19.2), shared by the
fixed-seed coverage tests (tests/analysis/test_density_coverage.py) and the coverage benchmark
(benchmarks/coverage_sections/density.py). Each runs the product's own code: ``fit_family``,
``place`` and ``trend_for``.

The law: logit((A - c) / (100 - c)) = a + b ln N, with the shipped SmolLM2 HellaSwag fit's a and b,
and every model (a reference size or a new one) off the law by a normal residual of sd
``resid_sd`` on the logit scale (the SmolLM2 fit's own residual sd is 0.147). A score is then a
binomial draw over its task count: 10042 for a published full-HellaSwag number (rounded to 0.1
point, as the cards print it), a few hundred for a ``profiler eval`` measurement.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

import numpy as np

from profiler.analysis import density
from profiler.analysis.accuracy import AccuracyScore, Setting
from profiler.errors import UserError
from profiler.stats import wilson_interval

CHANCE = 25.0
LAW_A, LAW_B = -12.383, 0.6003  # the shipped smollm2-hellaswag fit
RESID_SD = 0.15
PUBLISHED_TASKS = 10042  # HellaSwag's validation set
SETTING = Setting("hellaswag", 0, "lighteval")
SMALLEST, LARGEST = 134_515_008, 1_711_376_384  # the SmolLM2 sizes' range


def family_sizes(k: int) -> list[float]:
    """k sizes spaced evenly in ln N over the SmolLM2 range; 3 are the SmolLM2 sizes themselves."""
    if k == 3:
        return [134_515_008, 361_821_120, 1_711_376_384]
    return list(np.exp(np.linspace(math.log(SMALLEST), math.log(LARGEST), k)))


def _score(rng: np.random.Generator, n_params: float, tasks: int, resid_sd: float) -> float:
    """Accuracy % of a model of n_params on the law, off it by its residual, over ``tasks`` tasks."""
    z = LAW_A + LAW_B * math.log(n_params) + rng.normal(0.0, resid_sd)
    p = (CHANCE + (100 - CHANCE) / (1 + math.exp(-z))) / 100
    return 100 * rng.binomial(tasks, p) / tasks


def noisy_family(rng: np.random.Generator, k: int, resid_sd: float = RESID_SD) -> density.ReferenceFamily:
    points = [density.ReferencePoint(f"ref{i}", int(n), round(_score(rng, n, PUBLISHED_TASKS, resid_sd), 1), "sim")
              for i, n in enumerate(family_sizes(k))]
    return density.ReferenceFamily("simulated", SETTING, points)


@dataclass
class PlacementOutcome:
    covered: int = 0
    runs: int = 0
    refused: int = 0  # families the product refused to fit (accuracy not rising with size)
    unbounded: int = 0  # intervals open on at least one side
    widths_ln: list = None  # full width of ln N̂'s interval, bounded ones

    def __post_init__(self):
        self.widths_ln = []


def new_model_score(rng: np.random.Generator, tasks: int | None, resid_sd: float) -> tuple[int, AccuracyScore]:
    """A new model drawn from the same law, of a size log-uniform over the family's range: measured
    over ``tasks`` tasks (the product makes its Wilson interval), or, for None, a published
    full-benchmark number with no interval and no task count."""
    n_true = int(math.exp(rng.uniform(math.log(SMALLEST), math.log(LARGEST))))
    value = _score(rng, n_true, tasks or PUBLISHED_TASKS, resid_sd)
    score = AccuracyScore(metric=SETTING.metric, value_pct=value if tasks else round(value, 1),
                          provenance="measured" if tasks else "published", n_shot=SETTING.n_shot, source="sim",
                          variant=SETTING.variant, n_tasks=tasks)
    return n_true, score


def simulate_placement(k: int, tasks: int | None, runs: int, seed: int, resid_sd: float = RESID_SD,
                       old_rule: bool = False) -> PlacementOutcome:
    """How often ρ's printed 95% interval holds the new model's true ρ (1: it is a model of the law,
    active parameters = its size). ``old_rule``: the interval before issue #19 (the accuracy's
    interval mapped through the fitted curve; none without an accuracy interval)."""
    rng = np.random.default_rng(seed)
    out = PlacementOutcome()
    for _ in range(runs):
        family = noisy_family(rng, k, resid_sd)
        n_true, score = new_model_score(rng, tasks, resid_sd)
        try:
            fit = density.fit_family(family)
        except UserError:
            out.refused += 1
            continue
        out.runs += 1
        ci = _old_interval(fit, score, n_true) if old_rule else _rho_interval(fit, family, n_true, score)
        if ci is None:
            continue
        lo, hi = ci
        out.covered += (lo is None or lo <= 1.0) and (hi is None or hi >= 1.0)
        if lo is None or hi is None:
            out.unbounded += 1
        else:
            out.widths_ln.append(math.log(hi / lo))
    return out


def _rho_interval(fit, family, n_true: int, score: AccuracyScore):
    row = density.ConfigDensity("new", "new", n_true, n_true, None, score, None)
    density.place(fit, family, row)
    return row.rho_ci95 if row.rho is not None else None


def _old_interval(fit, score: AccuracyScore, n_true: int):
    """Before #19: the Wilson interval's ends through the fitted curve's inverse, over the active
    count; no interval without a task count."""
    if not score.n_tasks:
        return None
    lo, hi = (100 * v for v in wilson_interval(score.value_pct / 100, score.n_tasks))
    ends = [fit.inverse(lo) if lo > CHANCE else None, fit.inverse(min(hi, 99.999))]
    return [None if e is None else e / n_true for e in ends]


# --------------------------------------------------------------------------- the trend (issue #19.2)

TRUE_DOUBLING_MONTHS = 8.0
TREND_SD = 0.3  # models scatter about the trend by this much in ln ρ
START = dt.date(2023, 1, 1)
THREADS = (1, 2, 4)
QUANTS = ("q4_0", "q8_0")  # quants of one base model: each inherits the base's accuracy
REPEATS = 2  # the same configurations in two saved runs


def duplicated_rows(rng: np.random.Generator, n_models: int, span_months: float = 24.0,
                    copies: bool = True) -> list[density.ConfigDensity]:
    """Models released over ``span_months`` on ln ρ = ln 0.5 + ln 2 · months / TRUE_DOUBLING_MONTHS,
    off it by a normal of sd TREND_SD; each, with ``copies``, as 3 thread counts x 2 quants (that
    inherit its accuracy) x 2 repeated runs = 12 configurations of the same ρ."""
    rows = []
    for m in range(n_models):
        months = span_months * m / (n_models - 1) + rng.uniform(-1.0, 1.0)
        released = (START + dt.timedelta(days=round(months * density.DAYS_PER_MONTH))).isoformat()
        rho = 0.5 * 2 ** (months / TRUE_DOUBLING_MONTHS) * math.exp(rng.normal(0.0, TREND_SD))
        base = f"model{m}"
        variants = [(q, t, r) for q in QUANTS for t in THREADS for r in range(REPEATS)] if copies else [("", 1, 0)]
        for quant, threads, run in variants:
            name = f"{base}-{quant}" if quant else base
            acc = AccuracyScore(metric=SETTING.metric, value_pct=50.0, provenance="published", n_shot=0, source="sim",
                                variant=SETTING.variant, inherited_from=base if quant else None)
            rows.append(density.ConfigDensity(f"{name} t{threads} run{run}", name, 10**8, 10**8, released, acc,
                                              SETTING.label(), rho=rho))
    return rows


@dataclass
class TrendOutcome:
    covered: int = 0
    runs: int = 0
    no_interval: int = 0  # the printed doubling time had no interval (ρ not growing in this data)
    slope_widths: list = None  # full width of the slope's 95% interval, ln ρ per month
    n_points: int = 0  # points the last fit counted

    def __post_init__(self):
        self.slope_widths = []


def simulate_trend(n_models: int, runs: int, seed: int, old_rule: bool = False) -> TrendOutcome:
    """How often the printed doubling-time interval holds the true doubling time, through
    ``trend_for`` on 12 configurations per model. ``old_rule``: before issue #19, every
    configuration its own point (``fit_trend`` over all of them)."""
    rng = np.random.default_rng(seed)
    out = TrendOutcome()
    for _ in range(runs):
        rows = duplicated_rows(rng, n_models)
        if old_rule:
            trend = density.fit_trend([(r.released, r.rho) for r in rows])
        else:
            trend, _ = density.trend_for(rows)
        out.runs += 1
        out.n_points = trend.n_points
        lo, hi = trend.slope_ci95_per_month
        out.slope_widths.append(hi - lo)
        ci = trend.doubling_ci95_months
        if ci is None:
            out.no_interval += 1
            continue
        low, high = ci
        out.covered += low <= TRUE_DOUBLING_MONTHS and (high is None or high >= TRUE_DOUBLING_MONTHS)
    return out
