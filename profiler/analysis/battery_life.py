"""Battery life from measured energy (issue #22.2): answers per full charge and hours of generation.

For a stated answer shape (``DEFAULT_ANSWER``: a 512-token prompt, a 256-token answer):

* energy per answer  = prompt tokens x prefill J/token + answer tokens x decode J/token
* answers per charge = capacity / energy per answer
* generation hours   = capacity / decode power (decode J/token x decode t/s: the energy of the
                       decode windows over their duration)

The J/token here is the *whole device's* over the timed windows (the energy source's own figure
before any CPU-time share): the battery pays for everything the device draws, not only for this
process's share. Its 95% interval is each phase's interval over the repetitions (energy.py,
``j_per_token_interval``), the same relative width applied to the device figure; the two phases'
errors are independent, and ``profiler.stats.fits_in_budget`` turns the answer energy's interval
into the count's. The hours' interval is the decode J/token interval's (the windows' duration is
timed to the nanosecond). An estimated J/token gives an estimated battery life, marked so and
without an interval. What none of this covers: docs/energy.md, "Battery life".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

from profiler.errors import UserError
from profiler.platform.energy.capacity import J_PER_WH, BatteryCapacity
from profiler.stats import fits_in_budget

DEFAULT_ANSWER = (512, 256)  # prompt tokens, answer tokens
NO_BATTERY = "unavailable, because no battery"


def parse_answer(text: str | None) -> tuple[int, int]:
    """``--answer 512,256`` -> (512, 256): prompt tokens, answer tokens."""
    if not text:
        return DEFAULT_ANSWER
    parts = text.split(",")
    try:
        prompt, answer = (int(p) for p in parts)
    except ValueError:
        raise UserError(f"--answer '{text}' must be PROMPT,ANSWER token counts, e.g. 512,256") from None
    if prompt < 0 or answer <= 0:
        raise UserError(f"--answer '{text}': the prompt must be >= 0 tokens and the answer > 0")
    return prompt, answer


@dataclass
class PhaseCost:
    """One phase's whole-device J/token with its 95% half-width (None: no interval, and why)."""

    j_per_token: float
    half_width_j: float | None
    power_w: float | None  # the device's mean power over the phase's windows
    test: str  # which test it comes from
    interval_note: str = ""


@dataclass
class BatteryLife:
    prompt_tokens: int
    answer_tokens: int
    capacity_wh: float | None = None
    capacity_basis: str | None = None  # "full (today's, worn)" or "design (the battery new)"
    answers_per_charge: float | None = None
    answers_per_charge_ci95: tuple[float | None, float | None] | None = None  # (low, high); high None: unbounded
    answer_energy_j: float | None = None
    generation_hours: float | None = None
    generation_hours_ci95: tuple[float | None, float | None] | None = None
    measured: bool | None = None  # False: from an estimated J/token (or a typical cell voltage): "(est.)"
    provenance: str = ""  # tests, energy source, capacity files
    interval_note: str = ""  # why there is no interval, when there is none
    unavailable: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def phase_cost(row, phase: str) -> PhaseCost | None:
    """The row's whole-device J/token for one phase, from its ``energy_detail.phases``."""
    data = ((row.energy_detail or {}).get("phases") or {}).get(phase) or {}
    domain, tokens, duration = data.get("domain_j"), data.get("tokens"), data.get("duration_s")
    if data.get("unavailable") or not domain or not tokens or domain <= 0:
        return None
    rel = data.get("j_per_token_ci95_rel") if row.energy_measured else None
    value = domain / tokens
    note = "" if rel is not None else ("estimated, not measured" if not row.energy_measured else
                                       (data.get("interval") or {}).get("unavailable") or "no interval stored")
    return PhaseCost(value, rel * value if rel is not None else None,
                     domain / duration if duration else None, row.test, note)


def _cost_rows(rows: Sequence) -> tuple[object | None, object | None]:
    """(row for the prefill J/token, row for the decode J/token) among one configuration's rows:
    a prompt-only test for the prompt and a pure generation test for the answer where run, else a
    test holding both phases."""
    def has(row, phase):
        return phase_cost(row, phase) is not None

    prompt = [r for r in rows if has(r, "prefill") and not (r.n_gen or 0)] or [r for r in rows if has(r, "prefill")]
    gen = [r for r in rows if has(r, "decode") and not (r.n_prompt or 0)] or [r for r in rows if has(r, "decode")]
    return (prompt[0] if prompt else None), (gen[0] if gen else None)


def battery_life(rows: Sequence, capacity: BatteryCapacity, answer: tuple[int, int] = DEFAULT_ANSWER) -> BatteryLife:
    """Answers per charge and hours of generation for one configuration's rows (one model, one
    thread count), or why they are unavailable."""
    prompt_tokens, answer_tokens = answer
    life = BatteryLife(prompt_tokens, answer_tokens)
    if not capacity.packs:
        life.unavailable = NO_BATTERY if capacity.unavailable in (None, "no battery") else \
            f"unavailable, because the battery capacity is unknown ({capacity.unavailable})"
        return life
    life.capacity_wh, life.capacity_basis = capacity.wh, capacity.to_dict()["basis"]
    pre_row, dec_row = _cost_rows(rows)
    if dec_row is None or (prompt_tokens and pre_row is None):
        missing = "decode" if dec_row is None else "prefill"
        life.unavailable = f"unavailable, because no test has a {missing} energy figure"
        return life
    decode = phase_cost(dec_row, "decode")
    prefill = phase_cost(pre_row, "prefill") if prompt_tokens else None
    budget = capacity.wh * J_PER_WH
    parts = [(answer_tokens, decode.j_per_token, decode.half_width_j)]
    if prefill is not None:
        parts.insert(0, (prompt_tokens, prefill.j_per_token, prefill.half_width_j))
    fits = fits_in_budget(budget, parts)
    life.answers_per_charge, life.answer_energy_j = fits.value, fits.cost
    if fits.low is not None:
        life.answers_per_charge_ci95 = (fits.low, fits.high)
    if decode.power_w:
        hours = fits_in_budget(budget / 3600, [(decode.power_w / decode.j_per_token, decode.j_per_token,
                                                decode.half_width_j)])
        life.generation_hours = hours.value
        if hours.low is not None:
            life.generation_hours_ci95 = (hours.low, hours.high)
    used = [r for r in (pre_row, dec_row) if r is not None]
    life.measured = all(bool(r.energy_measured) for r in used) and capacity.measured
    notes = sorted({c.interval_note for c in (prefill, decode) if c is not None and c.interval_note})
    life.interval_note = "; ".join(notes)
    life.provenance = _provenance(prefill, decode, used, capacity)
    return life


def _provenance(prefill: PhaseCost | None, decode: PhaseCost, used: Sequence, capacity: BatteryCapacity) -> str:
    tests = f"prefill J/token from {prefill.test}, " if prefill else ""
    source = ", ".join(sorted({f"{r.energy_source} ({r.energy_scope} scope, "
                               f"{'measured' if r.energy_measured else 'ESTIMATED'})" for r in used}))
    packs = "; ".join(f"{p.name}: {p.source}" for p in capacity.packs)
    return (f"{tests}decode J/token and power from {decode.test}, whole device over the timed windows, "
            f"{source}; capacity {capacity.wh:.3g} Wh, {capacity.to_dict()['basis']} ({packs})")


def fastest(rows: Sequence) -> list:
    """The rows at the thread count of the fastest test (the closing line's)."""
    threads = max(rows, key=lambda r: r.decode_ts or r.prefill_ts or 0.0).n_threads
    return [r for r in rows if r.n_threads == threads]


def run_battery_life(rows: Sequence, device: Mapping | None, answer: tuple[int, int] = DEFAULT_ANSWER) -> dict:
    """The run's JSON ``battery_life``: per model (at its fastest thread count), or why there is none."""
    capacity = capacity_of(device)
    out = {"answer_tokens": {"prompt": answer[0], "answer": answer[1]}, "capacity": capacity.to_dict()}
    if not capacity.packs:
        return {**out, "unavailable": battery_life([], capacity, answer).unavailable, "models": []}
    models: dict[tuple, list] = {}
    for row in rows:
        models.setdefault((row.model_name, row.quant_type), []).append(row)
    found = [{"model": name, "quant": quant, "n_threads": fastest(mine)[0].n_threads,
              **battery_life(fastest(mine), capacity, answer).to_dict()} for (name, quant), mine in models.items()]
    return {**out, "unavailable": None, "models": found}


def capacity_of(device: Mapping | None) -> BatteryCapacity:
    """The battery capacity stored with a run's device (``Device.battery``)."""
    return BatteryCapacity.from_dict((device or {}).get("battery"))
