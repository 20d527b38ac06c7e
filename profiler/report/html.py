"""One self-contained HTML page per run: device, results, warnings and inline SVG plots.

No CDN, no script, no network: the plots are SVG written by profiler/report/plots.py, so the file
opens offline and can be mailed or archived as it is. Other sections (such as density) come in
through ``render_html(..., sections=...)``.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from profiler.analysis import battery_life
from profiler.analysis.suites import suite_scores
from profiler.platform import placement
from profiler.report import energy_text, plots
from profiler.report.suites_text import suite_html
from profiler.report.terminal import joules
from profiler.results.schema import RunResult

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; padding: 0 12px; max-width: 1100px; color: #111; }
p, code { overflow-wrap: anywhere; }
.scroll { max-width: 100%; overflow-x: auto; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
.warn { color: #92400e; background: #fffbeb; padding: 2px 6px; }
.fail { color: #991b1b; background: #fef2f2; padding: 2px 6px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; width: 530px; max-width: 100%; } figcaption { font-size: 12px; color: #555; }
svg.plot { width: 100%; height: auto; display: block; }
svg text { font: 12px system-ui, sans-serif; } svg text.better { font-weight: 600; }
td { white-space: nowrap; }
.noplot { color: #555; background: #f8fafc; border: 1px dashed #cbd5e1; padding: 8px 10px; margin: 0; }
"""


def _e(value) -> str:
    return html.escape(str(value))


def _fmt(value, spec: str = ".2f", none: str = "n/a") -> str:
    return none if value is None else format(value, spec)


def _table(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{_e(c)}</td>' for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


# ----------------------------------------------------------------------------- the page


def render_html(run: RunResult, board=None, sections: Sequence[str] = (),
                answer: tuple[int, int] = battery_life.DEFAULT_ANSWER) -> str:
    """The page; ``sections`` are extra HTML blocks (each with its own <h2>) placed before the plots."""
    d = run.device
    bw = (d.get("memory_bandwidth") or {}).get("read_gbps")
    device_rows = [
        ["CPU", d.get("cpu_model")], ["cores", f"{d.get('physical_cores')} physical, {d.get('logical_cores')} logical"],
        ["ISA", " ".join(d.get("isa") or []) or "n/a"], ["RAM", f"{(d.get('ram_total_bytes') or 0) / 2**30:.1f} GiB"],
        ["OS", f"{d.get('os')} (kernel {d.get('kernel')})"], ["board", d.get("board") or "n/a"],
        ["read bandwidth", f"{bw:.1f} GB/s (measured)" if bw else "not measured"],
    ]
    placed = any(placement.is_placed(r.cpu_mask) for r in run.rows)  # a cores column only then, as in the console
    result_rows = [
        [r.model_name, r.quant_type, r.test, str(r.n_threads) + (f" on {_cores(r)}" if placed else ""),
         f"{r.avg_ts:.2f} ± {r.stddev_ts:.2f}", _fmt(r.ttft_ms, ".1f"),
         _fmt(r.itl_ms_p50), _fmt(r.model_peak_rss_bytes and r.model_peak_rss_bytes / 2**20, ".0f"),
         f"{(r.peak_rss_bytes or 0) / 2**20:.0f} MiB", _fmt(r.bw_fraction), _energy_cell(r)]
        for r in run.rows
    ]
    fleet = d.get("fleet")  # a fleet run (docs/fleet.md): the device is a dimension of every table
    if fleet:
        device_rows = [[name, _fleet_device_line(info)] for name, info in fleet.items()]
        result_rows = [[r.device_name or "?", *line] for r, line in zip(run.rows, result_rows, strict=True)]
    warnings = list(dict.fromkeys(list(run.warnings) + [w for r in run.rows for w in r.warnings]))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>profiler run {_e(run.run_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>profiler run {_e(run.run_id)}</h1><p>{_e(run.created)} &middot; <code>{_e(run.command)}</code></p>",
        "<h2>Device</h2>", _table(["", ""], [[k, str(v)] for k, v in device_rows], left=2),
        "<h2>Results</h2>",
        _table((["device"] if fleet else []) + ["model", "quant", "test", "threads on cores" if placed else "threads", "t/s", "TTFT ms", "ITL p50 ms",
                                                "model peak MiB", "peak RSS", "bw frac", "J/token"],
               result_rows, left=4 if fleet else 3),
    ]
    if board is not None:
        parts.append("<h2>Scores</h2>")
        parts.append(_table(
            ["configuration", f"{board.metric} %", "J/token", "tokens/J", "decode t/s", "peak MiB", "frontier"],
            [[s.config.key, _fmt(s.accuracy_pct, ".1f"), _est(s, _fmt(s.config.j_per_decode_token, ".4f")),
              _est(s, _fmt(s.tokens_per_j, ".1f")), _fmt(s.config.decode_tps, ".1f"), f"{(s.config.peak_rss_bytes or 0) / 2**20:.0f}",
              {True: "yes", False: "dominated", None: "not compared"}[s.on_frontier]] for s in board.scores],
        ))
        parts += [f"<p>{_e(n)}</p>" for n in ([board.reference_note] if board.reference_note else []) + board.notes]
    parts += _battery_section(run, answer)
    parts += [block for block in [suite_html(suite_scores(run.rows))] if block]  # profiler run --suite
    parts += list(sections)
    parts += ["<h2>Plots</h2>", _plots(run, board)]
    if run.failures:
        parts.append("<h2>Failures</h2>")
        parts += [f"<p class='fail'>{_e(f['device'] + ': ') if f.get('device') else ''}{_e(f['model'])} "
                  f"({_e(f.get('test') or 'load')}): {_e(f['error'])}"
                  f"{_e(' (recovered ' + f['recovered'] + ')') if f.get('recovered') else ''}</p>" for f in run.failures]
    if warnings:
        parts.append("<h2>Warnings</h2>")
        parts += [f"<p class='warn'>{_e(w)}</p>" for w in warnings]
    parts.append("</body></html>")
    return "".join(parts)


def _battery_section(run: RunResult, answer: tuple[int, int]) -> list[str]:
    """Answers per charge and hours of generation per model, where the device has a battery (a
    page of a machine without one has no such section; results.json says why)."""
    capacity = battery_life.capacity_of(run.device)
    if not capacity.packs:
        return []
    lives = battery_life.run_battery_life(run.rows, run.device, answer)["models"]

    def cell(value, ci, fmt, measured):
        if value is None:
            return "unavailable"
        interval = f" ({fmt(ci[0])}-{fmt(ci[1]) if ci[1] is not None else 'unbounded'})" if ci else ""
        return f"{fmt(value)}{interval}{'' if measured else ' (est.)'}"

    rows = [[f"{m['model']} {m['quant']}", str(m["n_threads"]),
             m["unavailable"] or cell(m["answers_per_charge"], m["answers_per_charge_ci95"], "{:,.0f}".format, m["measured"]),
             "" if m["unavailable"] else cell(m["generation_hours"], m["generation_hours_ci95"], "{:.3g}".format, m["measured"]),
             m["provenance"] + (f"; no interval: {m['interval_note']}" if m["interval_note"] else "")] for m in lives]
    shape = f"{answer[0]}-token prompt, {answer[1]}-token answer"
    return ["<h2>Battery life</h2>", f"<p>{_e(energy_text.capacity_line(capacity))}; answers of a {shape}; "
            "95% intervals from the J/token intervals (docs/energy.md, \"Battery life\", says what they leave out)</p>",
            _table(["model", "threads", "answers per charge", "hours of generation", "provenance"], rows, left=2)]


def _fleet_device_line(info: dict) -> str:
    fp = info.get("fingerprint") or {}
    ram = fp.get("ram_total_bytes")
    return (f"{fp.get('board') or fp.get('cpu_model') or '?'}, {fp.get('physical_cores', '?')} cores, "
            f"{f'{ram / 2**30:.1f} GiB' if ram else 'RAM unknown'}, {fp.get('arch') or '?'}; "
            f"Ray node {str(info.get('node_id', '?'))[:12]}")


def _plots(run: RunResult, board) -> str:
    recommended = _recommended_key(board)
    figures = [
        (plots.plot_quality_energy(board, recommended), plots.quality_energy_caption(board, recommended)),
        (plots.plot_threads(run), "Tokens/s against threads, one line per model and test."),
        (plots.plot_ladder(run), "Quantization ladder: best decode t/s per model file, smallest file first."),
    ]
    figures += [(plot, f"{test}: tokens/s of every repetition (dots) and their mean (bar). Look at the spread before "
                       "trusting the mean.") for test, plot in plots.sample_plots(run)]
    return "<div class='plots'>" + "".join(figure(p, c) for p, c in figures) + "</div>"


def figure(plot: str, caption: str) -> str:
    """A plot with its caption; a sentence standing in for a plot gets no caption (it would describe
    lines and points that are not drawn)."""
    if 'class="noplot"' in plot or not caption:
        return f"<figure>{plot}</figure>"
    return f"<figure>{plot}<figcaption>{_e(caption)}</figcaption></figure>"


def _est(score, text: str) -> str:
    """A figure derived from an estimated energy says so (issue #10, item 4)."""
    estimated = score.config.j_per_decode_token is not None and not score.config.energy_measured
    return f"{text} (est.)" if estimated else text


def _cores(row) -> str:
    """The CPUs the kernel reported for a placed row, and their clusters; "any CPU" without a placement."""
    if not row.cpu_affinity:
        return "any CPU"
    where = f"CPU{'s' if len(row.cpu_affinity) > 1 else ''} {placement.cpu_list_text(row.cpu_affinity)}"
    return f"{where} ({row.cpu_cores})" if row.cpu_cores else where


def _recommended_key(board) -> str | None:
    """The configuration ``profiler score`` recommends without a budget (the most accurate)."""
    if board is None:
        return None
    from profiler.analysis import scoring

    best = scoring.recommend(board).best
    return best.config.key if best else None


def _energy_cell(row) -> str:
    value = row.j_per_decode_token or row.j_per_prefill_token
    if value is None:
        return "unavailable"
    return f"{joules(value)}" + ("" if row.energy_measured else " (est.)")
