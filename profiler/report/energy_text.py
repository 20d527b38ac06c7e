"""Short text for energy and thermal figures: table cells and summary lines.

Rows may be ``TestResult`` objects or their dicts. An estimate is always marked
"(est.)", a phase shorter than the source resolves is prefixed "~", and a missing
figure reads "unavailable" or "n/a", never 0.
"""

from __future__ import annotations

from collections.abc import Mapping


def _get(row, name: str, default=None):
    if isinstance(row, Mapping):
        return row.get(name, default)
    return getattr(row, name, default)


def joules(value: float | None) -> str:
    if value is None:
        return "n/a"
    if abs(value) < 1:
        return f"{value * 1e3:.3g} mJ"
    return f"{value:.3g} J"


def _resolved(row, phase: str) -> bool:
    detail = _get(row, "energy_detail") or {}
    return bool(((detail.get("phases") or {}).get(phase) or {}).get("resolved", True))


def energy_cell(row) -> str:
    """J per token per phase, e.g. "pp 1.2 mJ | tg ~4.5 mJ (est.)"."""
    if _get(row, "energy_method") is None:
        return "unavailable"
    parts = []
    for phase, short, field in (("prefill", "pp", "j_per_prefill_token"), ("decode", "tg", "j_per_decode_token")):
        value = _get(row, field)
        if value is not None:
            parts.append(f"{short} {'' if _resolved(row, phase) else '~'}{joules(value)}")
    text = " | ".join(parts) or "n/a"
    text = text if _get(row, "energy_measured") else f"{text} (est.)"
    # no CPU-time share could be computed: the figure is the whole machine's, and the cell says so
    return f"{text} system-wide" if _get(row, "energy_attribution") == "system-wide" else text


def thermal_cell(row) -> str:
    """Hottest zone and mean clock ratio, e.g. "61 °C, 92% clk, THROTTLED"."""
    temp, ratio = _get(row, "temp_max_c"), _get(row, "freq_ratio")
    parts = [f"{temp:.0f} °C" if temp is not None else "n/a °C", f"{ratio:.0%} clk" if ratio is not None else "n/a clk"]
    if _get(row, "throttled"):
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


def sustained_line(row) -> str | None:
    if _get(row, "sustained_s") is None:
        return None
    detail = _get(row, "sustained_detail") or {}
    return (f"sustained {_get(row, 'model_name')} {_get(row, 'test')}: burst {_get(row, 'burst_ts'):.2f} t/s, "
            f"steady {_get(row, 'steady_ts'):.2f} t/s ({detail.get('steady_over_burst', 0):.0%} of burst); "
            f"{detail.get('onset_note', '')}")


def source_rows(choice: Mapping) -> list[tuple[str, str, str, str]]:
    """(status, name, method/scope, reason) for every energy source a probe looked at."""
    rows = []
    for c in choice.get("candidates", []):
        kind = "/".join(x for x in (c.get("method"), c.get("scope")) if x) or "-"
        rows.append((c["status"], c["name"], kind, c["reason"]))
    return rows
