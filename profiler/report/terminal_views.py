"""The columns of each terminal table (run results, scoreboard, compare, history) and the quotable
closing line per model. The fitting itself lives in ``profiler.report.terminal``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from profiler.analysis import battery_life
from profiler.analysis.density import fmt_params
from profiler.measure import adaptive
from profiler.platform import placement
from profiler.report import energy_text
from profiler.report.terminal import (
    Column,
    joules,
    rate,
    rate_pm,
    seconds,
    short_device,
    short_model_names,
    sig3,
    size,
    varies,
)
from profiler.results.schema import TestResult

EST = " (est.)"


def _reasons(rows: Sequence[TestResult], field: str, fallback: str) -> str:
    found = sorted({str(getattr(r, field)) for r in rows if getattr(r, field)})
    return "; ".join(found) if found else fallback


# ----------------------------------------------------------------------------- profiler run / show


def _j_per_token(row: TestResult) -> float | None:
    decode = (row.n_gen or 0) > 0
    return row.j_per_decode_token if decode else row.j_per_prefill_token


def _resolved(row: TestResult) -> bool:
    return energy_text.phase_resolved(row, "decode" if (row.n_gen or 0) > 0 else "prefill")


def _energy_column(rows: Sequence[TestResult]) -> Column:
    """J per token of the test's own phase; "(est.)" once in the header when every figure is an estimate."""
    with_value = [r for r in rows if _j_per_token(r) is not None]
    all_estimated = bool(with_value) and not any(r.energy_measured for r in with_value)

    def cell(row):
        value = _j_per_token(row)
        if value is None:
            return None
        mark = "" if all_estimated or row.energy_measured else EST
        # energy_attribution "system-wide": no CPU-time share, so the figure is the whole machine's
        scope = " system-wide" if row.energy_attribution == "system-wide" else ""
        return f"{'' if _resolved(row) else '~'}{joules(value)}{mark}{scope}"

    return Column("J/token" + (EST if all_estimated else ""), cell, core=True,
                  why_na=lambda rs: "energy " + _reasons(rs, "energy_unavailable", "not tracked"))


def _itl(row: TestResult) -> str | None:
    p50, p90, p99 = row.itl_ms_p50, row.itl_ms_p90, row.itl_ms_p99
    if p50 is None:
        return None
    return "/".join(sig3(v) for v in (p50, p90, p99)) + " ms"


def _thermal(row: TestResult) -> str | None:
    """None (n/a, so an all-n/a column is dropped) when there is neither a temperature nor a clock."""
    if row.temp_max_c is None and row.freq_ratio is None:
        return None
    return energy_text.thermal_cell(row)


def _ci(row: TestResult) -> str | None:
    ci = row.ci95_rel
    return None if ci is None else f"±{ci:.1%} n={row.repetitions}"


def placed(rows: Sequence[TestResult]) -> bool:
    """Whether some row ran under a placement (a mask other than llama-bench's 0x0)."""
    return any(placement.is_placed(r.cpu_mask) for r in rows)


def _cores(row: TestResult) -> str | None:
    """The CPUs the test's threads were allowed (read back from the kernel) and their clusters."""
    if not row.cpu_affinity:
        return None
    where = placement.cpu_list_text(row.cpu_affinity)
    return f"{where} ({row.cpu_cores})" if row.cpu_cores else where


def run_columns(rows: Sequence[TestResult]) -> list[Column]:
    names = short_model_names([(r.model_name, r.quant_type) for r in rows])

    def model(row):
        return names[(row.model_name, row.quant_type)]

    return [
        Column("model", model, "left", core=True, shrink=True),
        Column("threads", lambda r: str(r.n_threads), core=varies(rows, "n_threads") or placed(rows)),
        # as llama-bench's cpu_mask column: in view when some test was placed (-C, --cores, the big-cluster
        # default), else with --wide; rows stored before placements have no such column at all
        *([Column("cores", _cores, "left", core=placed(rows), shrink=True)] if any(r.cpu_affinity for r in rows) else []),
        Column("test", lambda r: r.test, "left", core=True),
        Column("t/s", lambda r: rate_pm(r.avg_ts, r.stddev_ts) + adaptive.target_mark(r), core=True),
        Column("TTFT", lambda r: None if r.ttft_ms is None else seconds(r.ttft_ms / 1e3), core=True),
        # the model's own peak (process peak minus the RSS before the load); the process peak beside it
        Column("model mem", lambda r: size(r.model_peak_rss_bytes), core=True,
               why_na=lambda rs: "no RSS before the load recorded"),
        Column("proc peak", lambda r: size(r.peak_rss_bytes), why_na=lambda rs: "RSS not readable"),
        _energy_column(rows),
        Column("CI95", _ci, why_na=lambda rs: "fixed repetitions"),
        Column("ITL p50/90/99", _itl, why_na=lambda rs: "no generation test"),
        Column("load", lambda r: seconds(r.load_s)),
        Column("file", lambda r: size(r.file_size_bytes)),
        Column("PSS", lambda r: size(r.pss_bytes), why_na=lambda rs: "/proc smaps_rollup not readable"),
        Column("bw frac", lambda r: None if r.bw_fraction is None else f"{r.bw_fraction:.2f}",
               why_na=lambda rs: _reasons(rs, "bw_note", "no bandwidth probe")),
        Column("max °C / clk", _thermal, why_na=lambda rs: "no temperature or clock readings on this device"),
    ]


def _is_prompt_only(row: TestResult) -> bool:
    return (row.n_prompt or 0) > 0 and not (row.n_gen or 0)


def closing_lines(rows: Sequence[TestResult], device: Mapping, where: str | None = None,
                  answer: tuple[int, int] = battery_life.DEFAULT_ANSWER) -> list[str]:
    """One quotable line per model at its fastest thread count, e.g.
    "smollm2-135m Q4_1 on AMD EPYC (2 threads): 300 t/s prompt, 123 t/s generation, 196 MiB, 95 mJ/token (est.)".
    ``where`` replaces the device's short name after "on" (the fleet names the device and its CPU).
    Where the device has a battery, its life for an ``answer`` (prompt, answer tokens) follows; a
    device without one gets nothing more (its JSON says why)."""
    names = short_model_names([(r.model_name, r.quant_type) for r in rows])
    where = where or short_device(device)
    capacity = battery_life.capacity_of(device)
    lines = []
    for key, label in names.items():
        mine = [r for r in rows if (r.model_name, r.quant_type) == key]
        line = f"{label} on {where} " + _closing_figures(mine)
        if capacity.packs:
            line += "; " + energy_text.battery_text(battery_life.battery_life(battery_life.fastest(mine), capacity, answer))
        lines.append(line)
    return lines


def _generation_ts(gen: Sequence[TestResult]) -> float | None:
    """A tgN test's t/s is the table's own figure (llama-bench's rate over the decodes); only a
    test with a prompt needs decode_ts, the rate after the first token, to leave the prompt out."""
    alone = [r for r in gen if not (r.n_prompt or 0)]
    return alone[0].avg_ts if alone else gen[0].decode_ts


def _closing_figures(rows: Sequence[TestResult]) -> str:
    mine = battery_life.fastest(rows)
    threads = mine[0].n_threads
    prompt = [r for r in mine if _is_prompt_only(r)] or [r for r in mine if r.prefill_ts]
    gen = [r for r in mine if (r.n_gen or 0) > 0 and r.decode_ts is not None]
    parts = []
    if prompt:
        parts.append(f"{rate(prompt[0].prefill_ts or prompt[0].avg_ts)} prompt")
    if gen:
        parts.append(f"{rate(_generation_ts(gen))} generation")
    parts.append(_memory_phrase(mine))
    energy_row = (gen or prompt or mine)[0]
    value = _j_per_token(energy_row)
    if value is None:
        parts.append("energy unavailable")
    else:
        parts.append(f"{joules(value)}/token" + ("" if energy_row.energy_measured else EST))
    return f"({threads} thread{'s' if threads != 1 else ''}): " + ", ".join(parts)


# ----------------------------------------------------------------------------- scoreboard


def params_text(total: int | None, active: int | None) -> str:
    """``134.5M`` for a dense model; ``1.2B (active 400M)`` when a token runs through fewer (MoE)."""
    if not total:
        return "n/a"
    return fmt_params(total) if not active or active == total else f"{fmt_params(total)} (active {fmt_params(active)})"


def _answers_cell(s) -> str | None:
    """Answers per full charge with its 95% interval, "(est.)" from an estimate."""
    c = s.config
    if c.answers_per_charge is None:
        return None
    ci = c.answers_per_charge_ci95
    interval = f" ({ci[0]:,.0f}-{f'{ci[1]:,.0f}' if ci[1] is not None else 'unbounded'})" if ci else ""
    return f"{c.answers_per_charge:,.0f}{interval}{'' if c.battery_measured else EST}"


def scoreboard_columns(board) -> list[Column]:
    configs = [s.config for s in board.scores]
    names = short_model_names([(c.model_name, c.quant) for c in configs])
    key_names = {c.key: _config_label(c, names) for c in configs}
    with_energy = [s for s in board.scores if s.config.j_per_decode_token is not None]
    all_estimated = bool(with_energy) and not any(s.config.energy_measured for s in with_energy)
    header_mark = EST if all_estimated else ""

    def marked(s, value, unit=""):
        """A figure computed from the energy: "(est.)" in the cell when the column mixes measured and
        estimated figures (the header carries it when all are estimated)."""
        if value is None:
            return None
        return f"{sig3(value)}{unit}{EST if not s.config.energy_measured and not all_estimated else ''}"

    def energy(s):
        return marked(s, s.j_per_1k_tokens, " J")

    def pareto(s):
        return None if s.on_frontier is None else "frontier" if s.on_frontier else "dominated"

    def fmt(value, spec):
        return None if value is None else format(value, spec)

    return [
        Column("configuration", lambda s: key_names[s.config.key], "left", core=True, shrink=True),
        Column("decode t/s", lambda s: rate(s.config.decode_tps, ""), core=True, why_na=lambda ss: "no generation test"),
        Column("peak mem", lambda s: size(s.config.peak_rss_bytes), core=True),
        Column("J/1k tok" + header_mark, energy, core=True, why_na=lambda ss: "energy unavailable"),
        # only runs on a device with a battery have it: the column is dropped when none does
        Column("answers/charge", _answers_cell, core=True, why_na=lambda ss: "no battery"),
        Column(f"{board.metric} %", lambda s: fmt(s.accuracy_pct, ".1f"), core=True, why_na=lambda ss: f"no {board.metric} score"),
        Column("provenance", lambda s: s.accuracy.label() if s.accuracy else None, "left", shrink=True,
               why_na=lambda ss: "no accuracy source"),
        Column("Pareto", pareto, "left", core=True, why_na=lambda ss: "nothing to compare"),
        Column("acc/J·1k" + header_mark, lambda s: marked(s, s.accuracy_pct_per_j_per_1k_tokens),
               why_na=lambda ss: "needs accuracy and energy"),
        Column("cost/1M tok" + header_mark, lambda s: marked(s, s.cost_per_1m_tokens), why_na=lambda ss: "energy unavailable"),
        Column("params", lambda s: params_text(s.config.n_params, s.config.n_params_active) if s.config.n_params else None),
        Column("acc/GB", lambda s: fmt(s.accuracy_pct_per_gb_peak, ".1f"), why_na=lambda ss: "needs accuracy and memory"),
        Column("density %/B", lambda s: fmt(s.knowledge_density_pct_per_b_params, ".0f"), why_na=lambda ss: "needs accuracy"),
        Column("above chance", lambda s: fmt(s.knowledge_density_above_chance_pct_per_b_params, ".0f"),
               why_na=lambda ss: "needs accuracy"),
    ]


def dominance_note(board) -> str | None:
    """Who dominates whom, in one line under the scoreboard (the table says only "dominated")."""
    configs = [s.config for s in board.scores]
    names = short_model_names([(c.model_name, c.quant) for c in configs])
    label = {c.key: _config_label(c, names) for c in configs}
    parts = [f"{label[s.config.key]} by {', '.join(label.get(k, k) for k in s.dominated_by)}"
             for s in board.scores if s.on_frontier is False and s.dominated_by]
    return "dominated: " + "; ".join(parts) if parts else None


def _config_label(config, names) -> str:
    """The short model name plus what the key adds after the name (threads, settings)."""
    label = names[(config.model_name, config.quant)]
    tail = config.key[len(config.model_name):] if config.key.startswith(config.model_name) else ""
    return f"{label}{tail}"


# ----------------------------------------------------------------------------- compare, history


def compare_columns(results: Sequence[Any]) -> list[Column]:
    names = short_model_names([(c.model, None) for c in results])
    return [
        Column("model", lambda c: names[(c.model, None)], "left", core=True, shrink=True),
        Column("test", lambda c: c.test, "left", core=True),
        Column("threads", lambda c: str(c.n_threads), core=varies(results, "n_threads")),
        Column("A t/s", lambda c: sig3(c.a_ts), core=True),
        Column("B t/s", lambda c: sig3(c.b_ts), core=True),
        Column("speedup", lambda c: f"{c.speedup:.3f}x", core=True),
        Column("verdict", lambda c: c.verdict, "left", core=True),
        Column("p", lambda c: None if c.p_value is None else f"{c.p_value:.3g}", why_na=lambda cs: "no raw samples"),
    ]


def history_columns(runs: Sequence[Mapping]) -> list[Column]:
    names = short_model_names([(m, None) for r in runs for m in r["models"]])
    return [
        Column("run id", lambda r: r["run_id"], "left", core=True),
        Column("created", lambda r: str(r["created"])[:16].replace("T", " "), "left", core=True),
        Column("status", lambda r: r["status"], "left", core=True),
        Column("rows", lambda r: str(r["rows"]), core=True),
        Column("models", lambda r: ", ".join(names[(m, None)] for m in r["models"]) or "-", "left", core=True, shrink=True,
               cut_end=True),
        Column("command", lambda r: r["command"] or None, "left", shrink=True),
    ]


def _memory_phrase(rows: Sequence[TestResult]) -> str:
    """The model's own peak, with the whole process's beside it."""
    model = [r.model_peak_rss_bytes for r in rows if r.model_peak_rss_bytes is not None]
    peaks = [r.peak_rss_bytes for r in rows if r.peak_rss_bytes is not None]
    if model and peaks:
        return f"{size(max(model))} model peak ({size(max(peaks))} process)"
    return f"{size(max(peaks))} process peak" if peaks else "peak memory n/a"
