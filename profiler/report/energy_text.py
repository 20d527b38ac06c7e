"""Short text for energy and thermal figures: table cells and summary lines.

Rows are ``TestResult`` objects. An estimate is always marked
"(est.)", a phase shorter than the source resolves is prefixed "~", a measured one carries
its 95% interval ("±3%"), and a missing
figure reads "unavailable" or "n/a", never 0.
"""

from __future__ import annotations

from collections.abc import Mapping

from profiler.results.schema import TestResult


def joules(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) < 1:
        return f"{value * 1e3:.3g} mJ"
    return f"{value:.3g} J"


def phase_resolved(row: TestResult, phase: str) -> bool:
    """Whether the energy source resolves a phase this short (an unresolved figure reads "~")."""
    detail = row.energy_detail or {}
    return bool(((detail.get("phases") or {}).get(phase) or {}).get("resolved", True))


def phase_interval_rel(row: TestResult, phase: str) -> float | None:
    """The 95% interval of a phase's mean J/token over that mean (measured, resolved phases only)."""
    detail = row.energy_detail or {}
    return ((detail.get("phases") or {}).get(phase) or {}).get("j_per_token_ci95_rel")


def energy_cell(row: TestResult) -> str:
    """J per token per phase, e.g. "pp 1.2 mJ ±3% | tg ~4.5 mJ (est.)"."""
    if row.energy_method is None:
        return "unavailable"
    parts = []
    for phase, short, value in (("prefill", "pp", row.j_per_prefill_token), ("decode", "tg", row.j_per_decode_token)):
        if value is not None:
            rel = phase_interval_rel(row, phase) if row.energy_measured else None
            interval = f" ±{rel:.0%}" if rel is not None and rel >= 0.01 else (f" ±{rel:.1%}" if rel is not None else "")
            parts.append(f"{short} {'' if phase_resolved(row, phase) else '~'}{joules(value)}{interval}")
    text = " | ".join(parts) or "n/a"
    text = text if row.energy_measured else f"{text} (est.)"
    # no CPU-time share could be computed: the figure is the whole machine's, and the cell says so
    return f"{text} system-wide" if row.energy_attribution == "system-wide" else text


def _count(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _range(ci, fmt) -> str:
    if ci is None:
        return ""
    low, high = ci
    return f" ({fmt(low)}-{fmt(high) if high is not None else 'unbounded'})"


def capacity_line(capacity) -> str:
    """The battery the battery life is of, e.g. "battery: 25.5 Wh, full (today's, worn); BAT0: energy_full
    (µWh), design 38.9 Wh"."""
    packs = "; ".join(f"{p.name}: {p.source}" + (f", design {p.design_wh:.3g} Wh" if p.design_wh else "")
                      + ("" if p.measured else " (est.)") for p in capacity.packs)
    return f"battery: {capacity.wh:.3g} Wh, {capacity.to_dict()['basis']}; {packs}"


def battery_text(life) -> str:
    """Answers per charge and hours of generation with their 95% intervals, e.g. "1,302 answers/charge
    (1,233-1,379) of 512+256 tokens, 10 h generation (9.43-10.6)"; "(est.)" from an estimate."""
    if life.unavailable:
        return f"battery life {life.unavailable}"
    mark = "" if life.measured else " (est.)"
    text = (f"{_count(life.answers_per_charge)} answers/charge{_range(life.answers_per_charge_ci95, _count)} of "
            f"{life.prompt_tokens}+{life.answer_tokens} tokens{mark}")
    if life.generation_hours is not None:
        text += f", {life.generation_hours:.3g} h generation{_range(life.generation_hours_ci95, lambda v: f'{v:.3g}')}{mark}"
    return text


def skin_temp_max_c(row: TestResult) -> float | None:
    """A phone's skin temperature over the test (thermal_detail's summary), where a zone is named as one."""
    return ((row.thermal_detail or {}).get("summary") or {}).get("skin_temp_max_c")


def thermal_cell(row: TestResult) -> str:
    """Hottest CPU zone, a phone's skin, mean clock ratio, e.g. "61 °C, skin 38 °C, 92% clk, THROTTLED"."""
    temp, ratio = row.temp_max_c, row.freq_ratio
    parts = [f"{temp:.0f} °C" if temp is not None else "n/a °C", f"{ratio:.0%} clk" if ratio is not None else "n/a clk"]
    skin = skin_temp_max_c(row)
    if skin is not None:
        parts.insert(1, f"skin {skin:.0f} °C")
    if row.throttled:
        parts.append("THROTTLED")
    return ", ".join(parts)


def provenance_line(energy: Mapping | None) -> str:
    """One line on where the run's energy figures come from (``device["energy"]``)."""
    if not energy:
        return "energy: not tracked"
    sources = energy.get("sources") or {}
    chosen = sources.get("chosen")
    if not chosen:
        return f"energy: unavailable ({sources.get('unavailable_reason') or 'no source'})"
    kind = "measured" if chosen["measured"] else "ESTIMATED, not measured"
    attributed = ", system-wide: split by this process's CPU-time share" if chosen["system_wide"] else ""
    idle = energy.get("idle") or {}
    idle_text = (f"idle {idle['power_w']:.2f} W over {idle['duration_s']:.1f} s" if idle.get("power_w") is not None
                 else f"idle baseline unavailable: {idle.get('reason') or 'not measured'}")
    # counters and models are read at the tests' window edges; sensors are sampled at their rate
    how = "read at window edges" if chosen["method"] in ("counter", "model") else f"{chosen['rate_hz']:g} Hz"
    return (f"energy: {chosen['source']} ({chosen['method']}, {chosen['scope']} scope, {kind}, "
            f"{how}{attributed}); {idle_text}")


def sustained_line(row: TestResult) -> str | None:
    if row.sustained_s is None:
        return None
    detail = row.sustained_detail or {}
    return (f"sustained {row.model_name} {row.test}: burst {row.burst_ts:.2f} t/s, "
            f"steady {row.steady_ts:.2f} t/s ({detail.get('steady_over_burst', 0):.0%} of burst); "
            f"{detail.get('onset_note', '')}")


def source_rows(choice: Mapping) -> list[tuple[str, str, str, str]]:
    """(status, name, method/scope, reason) for every energy source a probe looked at."""
    rows = []
    for c in choice.get("candidates", []):
        kind = "/".join(x for x in (c.get("method"), c.get("scope")) if x) or "-"
        rows.append((c["status"], c["name"], kind, c["reason"]))
    return rows
