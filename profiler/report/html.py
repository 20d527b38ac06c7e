"""One self-contained HTML page per run: device, results, warnings and inline SVG plots.

No CDN, no script, no network: the plots are SVG written here, so the file opens offline and
can be mailed or archived as it is.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict

from profiler.results import RunResult

WIDTH, HEIGHT, PAD = 560, 320, 56
COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #111; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5em 0; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f5f5f5; } td.l, th.l { text-align: left; }
.warn { color: #92400e; background: #fffbeb; padding: 2px 6px; }
.fail { color: #991b1b; background: #fef2f2; padding: 2px 6px; }
.plots { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; } figcaption { font-size: 12px; color: #555; max-width: 560px; }
svg text { font: 11px system-ui, sans-serif; }
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
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


# ----------------------------------------------------------------------------- SVG plots


def _scale(values: list[float], lo_px: float, hi_px: float, log: bool = False):
    vals = [math.log10(v) if log else v for v in values]
    lo, hi = min(vals), max(vals)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    span = hi - lo
    floor = lo
    lo, hi = lo - 0.08 * span, hi + 0.08 * span
    if not log and floor >= 0 > lo:  # never pad non-negative data (J, t/s) below zero
        lo = 0.0

    def to_px(v: float) -> float:
        v = math.log10(v) if log else v
        return lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px)

    ticks = [lo + (hi - lo) * i / 4 for i in range(5)]
    labels = [10**t if log else t for t in ticks]
    return to_px, list(zip([lo_px + (t - lo) / (hi - lo) * (hi_px - lo_px) for t in ticks], labels))


def _axes(x_ticks, y_ticks, x_label: str, y_label: str) -> str:
    parts = [
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - 10}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<line x1="{PAD}" y1="10" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#333"/>',
        f'<text x="{(WIDTH + PAD) / 2}" y="{HEIGHT - 12}" text-anchor="middle">{_e(x_label)}</text>',
        f'<text x="14" y="{(HEIGHT - PAD) / 2}" transform="rotate(-90 14 {(HEIGHT - PAD) / 2})" text-anchor="middle">{_e(y_label)}</text>',
    ]
    for px, label in x_ticks:
        parts.append(f'<text x="{px:.1f}" y="{HEIGHT - PAD + 16}" text-anchor="middle">{_tick(label)}</text>')
    for px, label in y_ticks:
        parts.append(f'<text x="{PAD - 6}" y="{px + 4:.1f}" text-anchor="end">{_tick(label)}</text>')
        parts.append(f'<line x1="{PAD}" y1="{px:.1f}" x2="{WIDTH - 10}" y2="{px:.1f}" stroke="#eee"/>')
    return "".join(parts)


def _tick(value: float) -> str:
    if value == 0:
        return "0"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 1:
        return f"{value:.1f}"
    return f"{value:.2g}"


def _svg(body: str, title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" '
            f'role="img" aria-label="{_e(title)}">{body}</svg>')


def _empty(title: str, reason: str) -> str:
    return _svg(f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" fill="#777">{_e(reason)}</text>', title)


def plot_threads(run: RunResult) -> str:
    """Tokens/s against threads, one line per model and test."""
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in run.rows:
        series[f"{r.model_name} {r.test}"].append((r.n_threads, r.avg_ts))
    points = [p for pts in series.values() for p in pts]
    if not points:
        return _empty("tokens per second against threads", "no rows")
    fx, xt = _scale([float(x) for x, _ in points], PAD, WIDTH - 10)
    fy, yt = _scale([y for _, y in points], HEIGHT - PAD, 10, log=min(y for _, y in points) > 0)
    body = [_axes(xt, yt, "threads", "tokens/s")]
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        pts = sorted(pts)
        path = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in pts)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        body += [f'<circle class="point" cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="4" fill="{colour}"><title>{_e(name)}: {y:.1f} t/s at {x} threads</title></circle>' for x, y in pts]
        body.append(f'<text x="{WIDTH - 14}" y="{18 + 14 * i}" text-anchor="end" fill="{colour}">{_e(name)}</text>')
    return _svg("".join(body), "tokens per second against threads")


def plot_ladder(run: RunResult) -> str:
    """Bars per model file: decode t/s (and size in the label), the quantization ladder at a glance."""
    best: dict[str, tuple[float, int, str]] = {}
    for r in run.rows:
        rate = r.decode_ts if r.decode_ts is not None else None
        if rate is None:
            continue
        if r.model_name not in best or rate > best[r.model_name][0]:
            best[r.model_name] = (rate, r.file_size_bytes, r.quant_type)
    if not best:
        return _empty("quantization ladder", "no decode tests in this run")
    items = sorted(best.items(), key=lambda kv: kv[1][1])
    top = max(v[0] for _, v in items) * 1.1
    bar_w = (WIDTH - PAD - 20) / len(items)
    _, yt = _scale([0.0, top], HEIGHT - PAD, 10)
    body = [_axes([], yt, "model (smallest file first)", "decode tokens/s")]
    for i, (name, (rate, size, quant)) in enumerate(items):
        x = PAD + 10 + i * bar_w
        h = (rate / top) * (HEIGHT - PAD - 10)
        body.append(f'<rect class="bar" x="{x:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{bar_w * 0.7:.1f}" height="{h:.1f}" '
                    f'fill="{COLOURS[i % len(COLOURS)]}"><title>{_e(name)}: {rate:.1f} t/s, {size / 2**20:.0f} MiB</title></rect>')
        body.append(f'<text x="{x + bar_w * 0.35:.1f}" y="{HEIGHT - PAD + 14}" text-anchor="middle">{_e(quant)}</text>')
        body.append(f'<text x="{x + bar_w * 0.35:.1f}" y="{HEIGHT - PAD + 27}" text-anchor="middle">{size / 2**20:.0f} MiB</text>')
        body.append(f'<text x="{x + bar_w * 0.35:.1f}" y="{HEIGHT - PAD - h - 4:.1f}" text-anchor="middle">{rate:.0f}</text>')
    return _svg("".join(body), "quantization ladder")


def plot_quality_energy(board) -> str:
    """Accuracy against J/token; frontier points filled and joined, dominated ones hollow."""
    if board is None:
        return _empty("quality against energy", "no scoreboard for this run")
    pts = [s for s in board.scores if s.accuracy_pct is not None and s.config.j_per_decode_token]
    if not pts:
        return _empty("quality against energy", "needs an accuracy score and J/token")
    fx, xt = _scale([s.config.j_per_decode_token for s in pts], PAD, WIDTH - 10)
    fy, yt = _scale([s.accuracy_pct for s in pts], HEIGHT - PAD, 10)
    body = [_axes(xt, yt, "J per decoded token" + ("" if all(s.config.energy_measured for s in pts) else " (estimated)"),
                  f"{board.metric} accuracy %")]
    frontier = sorted((s for s in pts if s.on_frontier), key=lambda s: s.config.j_per_decode_token)
    if len(frontier) > 1:
        path = " ".join(f"{fx(s.config.j_per_decode_token):.1f},{fy(s.accuracy_pct):.1f}" for s in frontier)
        body.append(f'<polyline class="frontier" fill="none" stroke="#16a34a" stroke-dasharray="4 3" points="{path}"/>')
    for s in pts:
        x, y = fx(s.config.j_per_decode_token), fy(s.accuracy_pct)
        fill = "#16a34a" if s.on_frontier else "white"
        body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="#16a34a" stroke-width="2">'
                    f'<title>{_e(s.config.key)}: {s.accuracy_pct:.1f}% at {s.config.j_per_decode_token * 1e3:.2f} mJ/token'
                    f'{"" if s.on_frontier else " (dominated)"}</title></circle>')
        body.append(f'<text x="{x + 7:.1f}" y="{y - 7:.1f}">{_e(s.config.model_name)}</text>')
    return _svg("".join(body), "quality against energy")


# ----------------------------------------------------------------------------- the page


def render_html(run: RunResult, board=None) -> str:
    d = run.device
    bw = (d.get("memory_bandwidth") or {}).get("read_gbps")
    device_rows = [
        ["CPU", d.get("cpu_model")], ["cores", f"{d.get('physical_cores')} physical, {d.get('logical_cores')} logical"],
        ["ISA", " ".join(d.get("isa") or []) or "n/a"], ["RAM", f"{(d.get('ram_total_bytes') or 0) / 2**30:.1f} GiB"],
        ["OS", f"{d.get('os')} (kernel {d.get('kernel')})"], ["board", d.get("board") or "n/a"],
        ["read bandwidth", f"{bw:.1f} GB/s (measured)" if bw else "not measured"],
    ]
    result_rows = [
        [r.model_name, r.quant_type, r.test, str(r.n_threads), f"{r.avg_ts:.2f} ± {r.stddev_ts:.2f}", _fmt(r.ttft_ms, ".1f"),
         _fmt(r.itl_ms_p50), f"{(r.peak_rss_bytes or 0) / 2**20:.0f} MiB", _fmt(r.bw_fraction), _energy_cell(r)]
        for r in run.rows
    ]
    warnings = list(dict.fromkeys(list(run.warnings) + [w for r in run.rows for w in r.warnings]))
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>profiler run {_e(run.run_id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>profiler run {_e(run.run_id)}</h1><p>{_e(run.created)} &middot; <code>{_e(run.command)}</code></p>",
        "<h2>Device</h2>", _table(["", ""], [[k, str(v)] for k, v in device_rows], left=2),
        "<h2>Results</h2>",
        _table(["model", "quant", "test", "threads", "t/s", "TTFT ms", "ITL p50 ms", "peak RSS", "bw frac", "J/token"],
               result_rows, left=3),
    ]
    if board is not None:
        parts.append("<h2>Scores</h2>")
        parts.append(_table(
            ["configuration", f"{board.metric} %", "J/token", "tokens/J", "decode t/s", "peak MiB", "frontier"],
            [[s.config.key, _fmt(s.accuracy_pct, ".1f"), _fmt(s.config.j_per_decode_token, ".4f"), _fmt(s.tokens_per_j, ".1f"),
              _fmt(s.config.decode_tps, ".1f"), f"{(s.config.peak_rss_bytes or 0) / 2**20:.0f}",
              {True: "yes", False: "dominated", None: "not compared"}[s.on_frontier]] for s in board.scores],
        ))
        parts += [f"<p>{_e(n)}</p>" for n in board.notes]
    parts += [
        "<h2>Plots</h2><div class='plots'>",
        f"<figure>{plot_quality_energy(board)}<figcaption>Quality against J/token: filled points form the Pareto frontier.</figcaption></figure>",
        f"<figure>{plot_threads(run)}<figcaption>Tokens/s against threads.</figcaption></figure>",
        f"<figure>{plot_ladder(run)}<figcaption>Quantization ladder: best decode t/s per model file, with size.</figcaption></figure>",
        "</div>",
    ]
    if run.failures:
        parts.append("<h2>Failures</h2>")
        parts += [f"<p class='fail'>{_e(f['model'])} ({_e(f.get('test') or 'load')}): {_e(f['error'])}</p>" for f in run.failures]
    if warnings:
        parts.append("<h2>Warnings</h2>")
        parts += [f"<p class='warn'>{_e(w)}</p>" for w in warnings]
    parts.append("</body></html>")
    return "".join(parts)


def _energy_cell(row) -> str:
    value = getattr(row, "j_per_decode_token", None) or getattr(row, "j_per_prefill_token", None)
    if value is None:
        return "unavailable"
    measured = getattr(row, "energy_measured", None)
    return f"{value * 1e3:.3f} mJ" + ("" if measured else " (est.)")
