"""Section battery life (issue #22.2): the 95% interval of answers per charge and of hours of
generation, through the product's own path: each phase's per-repetition J/token goes through
``measure.energy.j_per_token_interval`` (the interval a row stores), the rows through
``analysis.battery_life.battery_life`` (prompt x prefill + answer x decode J/token, the phases'
intervals in quadrature, then the exact reciprocal: ``stats.fits_in_budget``).

Truth: a 50 Wh battery; prefill 20 mJ/token, decode 0.5 J/token at 10 t/s; each repetition's J/token
normal around its phase's mean at the stated CV (the meter's noise and the run-to-run spread), the
phases independent. Answers per charge = capacity / (prompt x 0.02 + answer x 0.5), hours = 50 Wh / 5 W.

Cases: the default answer (512+256, the decode term dominates), a prompt-heavy answer (2048+32, the
two terms comparable), three repetitions (Student's t on 2 degrees of freedom per phase), the hours.
The limit row (goal False): a gauge whose learned ``energy_full`` is 5% above what the battery now
holds; the interval is of the energy per answer only, so it does not cover the capacity's error.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from coverage_sections import CoverageRow
from profiler.analysis.battery_life import battery_life
from profiler.measure.energy import MeterView, j_per_token_interval
from profiler.platform.energy.capacity import BatteryCapacity, PackCapacity

TITLE = "Battery life: answers per charge and hours of generation"
ORDER = 47
CAPACITY_WH = 50.0
PREFILL_J, DECODE_J, DECODE_TPS = 0.02, 0.5, 10.0
WINDOW_TOKENS = {"prefill": 512, "decode": 128}
# (case, repetitions, CV, prompt tokens, answer tokens, reported capacity over the true one, what, goal)
CASES = [
    ("512+256, 5 reps, CV 5%", 5, 0.05, 512, 256, 1.0, "answers", True),
    ("2048+32 (terms comparable), 5 reps, CV 5%", 5, 0.05, 2048, 32, 1.0, "answers", True),
    ("512+256, 3 reps, CV 5%", 3, 0.05, 512, 256, 1.0, "answers", True),
    ("512+256, 10 reps, CV 2%", 10, 0.02, 512, 256, 1.0, "answers", True),
    ("hours, 5 reps, CV 5%", 5, 0.05, 512, 256, 1.0, "hours", True),
    ("gauge's energy_full 5% high", 5, 0.05, 512, 256, 1.05, "answers", False),
]
NOTES = ["the limit row: the interval covers the J/token's error only; a capacity the gauge learned wrong "
         "(or a battery worn since) shifts every figure, and docs/energy.md says so"]


def _phase(per_window: np.ndarray, phase: str) -> dict:
    """A row's ``energy_detail.phases`` entry as energy.py stores it, from each repetition's J/token."""
    tokens = WINDOW_TOKENS[phase]
    window_s = tokens / DECODE_TPS if phase == "decode" else 0.5
    interval = j_per_token_interval(list(per_window), window_s, 0.0, MeterView(), True, 1.0)
    n = len(per_window)
    return {"domain_j": float(per_window.sum()) * tokens, "tokens": tokens * n, "duration_s": window_s * n,
            "unavailable": None, "j_per_token_ci95_rel": interval["rel"]}


def _rows(pre: np.ndarray, dec: np.ndarray) -> list:
    common = {"energy_measured": True, "energy_source": "simulated", "energy_scope": "battery-system"}
    return [SimpleNamespace(test="pp512", n_prompt=512, n_gen=0, energy_detail={"phases": {"prefill": _phase(pre, "prefill")}},
                            **common),
            SimpleNamespace(test="tg128", n_prompt=0, n_gen=128, energy_detail={"phases": {"decode": _phase(dec, "decode")}},
                            **common)]


def simulate(reps: int, cv: float, prompt: int, answer: int, capacity_bias: float, what: str, runs: int,
             seed: int) -> tuple[int, float]:
    """(runs whose interval held the truth, mean half-width over the value in %)."""
    rng = np.random.default_rng(seed)
    capacity = BatteryCapacity([PackCapacity("BAT0", CAPACITY_WH * capacity_bias, None, "simulated", True)])
    truth = (CAPACITY_WH * 3600 / (prompt * PREFILL_J + answer * DECODE_J) if what == "answers"
             else CAPACITY_WH / (DECODE_J * DECODE_TPS))
    covered, widths = 0, []
    for _ in range(runs):
        pre = PREFILL_J * (1 + cv * rng.standard_normal(reps))
        dec = DECODE_J * (1 + cv * rng.standard_normal(reps))
        life = battery_life(_rows(pre, dec), capacity, (prompt, answer))
        value, ci = ((life.answers_per_charge, life.answers_per_charge_ci95) if what == "answers"
                     else (life.generation_hours, life.generation_hours_ci95))
        high = ci[1] if ci[1] is not None else float("inf")
        covered += ci[0] <= truth <= high
        widths.append((min(high, 2 * value) - ci[0]) / 2 / value * 100)
    return covered, float(np.mean(widths))


def rows(runs: int, seed: int) -> list[CoverageRow]:
    out = []
    for case, reps, cv, prompt, answer, bias, what, goal in CASES:
        covered, width = simulate(reps, cv, prompt, answer, bias, what, runs, seed)
        name = "answers per charge CI" if what == "answers" else "hours of generation CI"
        out.append(CoverageRow(name, case, runs, covered, width, "% of value, half-width", goal=goal))
    return out
