"""The HTML report's density section: the table and ρ (log axis) against release date, with the
fitted trend, its 95% band and the 8-month and 3.3-month doubling lines for comparison.

It reads the JSON form of a density report (``DensityReport.to_dict``), so a stored report and a
freshly computed one draw the same way. Inline SVG, no script, drawn with the helpers of
profiler/report/plots.py so it follows the same plot rules (round ticks, "better:", labels apart).
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass

from profiler.analysis.density import fmt_interval, fmt_params
from profiler.report import plots
from profiler.report.html import figure
from profiler.stats import mean_response_half_width

DOUBLING_STYLES = {8.0: ("#9333ea", "6 3"), 3.3: ("#ea580c", "2 3")}
TREND_COLOUR = "#2563eb"


def _e(value) -> str:
    return html.escape(str(value))


def density_section(run, report: dict | None = None) -> str:
    """The section for ``run``: the given report, else one computed with the default reference family."""
    if report is None:
        from profiler.analysis import density_io
        from profiler.errors import UserError

        try:
            report = density_io.report_for_run(run).to_dict()
        except UserError as exc:
            return f"<h2>Knowledge density</h2><p class='warn'>density unavailable: {_e(exc)}</p>"
    return render(report)


def render(report: dict) -> str:
    fam, fit = report["family"], report["fit"]
    setting = fam["setting"]
    parts = [
        "<h2>Knowledge density</h2>",
        f"<p>Reference family <b>{_e(fam['name'])}</b> ({_e(fam['provenance'])}): {_e(setting['metric'])} "
        f"{_e(setting['n_shot'])}-shot, {_e(setting['variant'] or 'variant unstated')}; sizes "
        + ", ".join(f"{fmt_params(p['n_params_active'])} {p['accuracy_pct']:g}%" for p in fam["points"])
        + f". Fit: A = {fit['chance_pct']:g} + {100 - fit['chance_pct']:g} / (1 + exp(-({fit['a']:.3f} + "
          f"{fit['b']:.4f} ln N))), residual sd {fit['residual_sd_logit']:.3f} (logit). ρ = N̂ / active parameters; "
          f"N̂ and ρ intervals (95%): {_e(fit.get('n_hat_interval') or 'the accuracy interval mapped through the curve')}.</p>",
        _table(report["configurations"]),
        _figure(report),
        f"<p>{_e(_trend_text(report))}</p>",
    ]
    trend = report.get("trend")
    if trend:
        parts += [f"<p>{_e(c)}</p>" for c in trend["comparisons"]]
    parts += [f"<p>{_e(c)}</p>" for c in report.get("cost") or []]
    parts += [f"<p class='warn'>{_e(n)}</p>" for n in report.get("notes") or []]
    return "".join(parts)


def _figure(report: dict) -> str:
    """The plot with a caption that describes what is drawn, or the sentence that stands in for it."""
    trend = ("the fitted trend (solid line) and its 95% band" if report.get("trend")
             else "no fitted trend line (the note below says why)")
    caption = (f"ρ (log axis) against release date, one point per configuration with its 95% interval "
               f"(configurations with the same date and ρ, such as one model at several thread counts, share a point); "
               f"{trend}; "
               "dashed and dotted lines: doubling every 8 months and every 3.3 months (Densing Law), drawn "
               "through the points' centre for comparison.")
    return figure(plot_trend(report), caption)


def _table(rows: list[dict]) -> str:
    head = ["configuration", "active", "total", "accuracy", "setting", "N̂ [95%]", "ρ [95%]", "released", "notes"]
    body = []
    for r in rows:
        acc = r.get("accuracy")
        cells = [
            r["key"], fmt_params(r["n_params_active"]), fmt_params(r["n_params_total"]),
            f"{acc['value_pct']:.1f}%" if acc else "none", r.get("setting") or "",
            fmt_params(r.get("n_hat")) + fmt_interval(r.get("n_hat_ci95"), fmt_params) + (" extrapolated" if r.get("extrapolated") else ""),
            ("n/a" if r.get("rho") is None else f"{r['rho']:.2f}") + fmt_interval(r.get("rho_ci95"), lambda v: f"{v:.2f}"),
            r.get("released") or "missing", "; ".join(r.get("notes") or []),
        ]
        body.append("<tr>" + "".join(f"<td class='{'l' if i in (0, 4, 8) else ''}'>{_e(c)}</td>"
                                     for i, c in enumerate(cells)) + "</tr>")
    return ("<div class='scroll'><table><thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head)
            + "</tr></thead><tbody>" + "".join(body) + "</tbody></table></div>")


def _trend_text(report: dict) -> str:
    t = report.get("trend")
    if not t:
        return f"Trend: {report.get('trend_note')}"
    if t["doubling_months"] is None:
        return (f"Trend over {t['n_points']} models (one point each): ρ does not grow with release date here. "
                f"{report.get('trend_note')}")
    ci = fmt_interval(t.get("doubling_ci95_months"), lambda v: f"{v:.1f}").replace(">", "unbounded")
    return (f"Trend over {t['n_points']} models (one point each): ρ doubles every {t['doubling_months']:.1f} "
            f"months{ci} (95%); {report.get('trend_note')}.")


# --------------------------------------------------------------------------- the plot
# Drawn with the report's plot helpers (profiler/report/plots.py), so it keeps the same rules as the
# other plots: round ticks, a log axis that ends on round values, "better:" at the top, labels placed
# where they touch nothing, a legend below the plot, and a sentence when there is nothing to compare.

TITLE = "relative density against release date"


def plot_trend(report: dict) -> str:
    points = [r for r in report["configurations"] if r.get("rho") and r.get("released")]
    dates = sorted({r["released"] for r in points})
    if len(dates) < 2:
        return plots.sentence(_nothing_to_compare(points, dates))
    marks = _marks(points)
    ya = plots.log_axis([m.rho for m in marks] + [v for m in marks for v in (m.ci or []) if v])
    xa = date_axis(min(m.day for m in marks), max(m.day for m in marks))
    trend = report.get("trend")
    entries = ([("fitted trend, 95% band", TREND_COLOUR, "")] if trend else []) + [
        (f"doubling every {months:g} months", colour, dash) for months, (colour, dash) in DOUBLING_STYLES.items()]
    top_of_legend = 300
    legend_svg, legend_h = plots.legend(entries, top_of_legend)
    # the last month label is centred on the axis end: leave it room to stay inside the picture
    right = plots.WIDTH - 8 - plots.text_px("2000-01") / 2
    frame = plots.Frame(plots.y_label_room(ya), right, 30, top_of_legend - plots.AXIS_ROOM)
    body = [plots.direction("up (more capability per active parameter)"),
            plots.y_axis(frame, ya, "ρ = N̂ / active parameters, log scale"), plots.x_axis(frame, xa, "release date"),
            legend_svg,
            f'<clipPath id="density-area"><rect x="{frame.left}" y="{frame.top}" width="{frame.right - frame.left}" '
            f'height="{frame.bottom - frame.top}"/></clipPath><g clip-path="url(#density-area)">',
            *_trend_lines(trend, frame, xa, ya), *_reference_lines(marks, frame, xa, ya), "</g>"]
    labels = plots.Labels(plots.Frame(frame.left + 2, frame.right, 22, frame.bottom - 2))
    for m in marks:
        x, y = frame.x(xa, m.day), frame.y(ya, m.rho)
        labels.reserve(x - 6, y - 6, x + 6, y + 6)
        body += [_whisker(m, x, frame, ya),
                 f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{TREND_COLOUR}"><title>'
                 f'{_e(", ".join(m.keys))}: ρ {m.rho:.2f}, released {m.released}</title></circle>']
    body += [labels.place(frame.x(xa, m.day), frame.y(ya, m.rho), m.label) for m in marks]
    return plots.svg("".join(body), top_of_legend + legend_h, TITLE, "density")



@dataclass
class _Mark:
    """One drawn point: the configurations that share a release date and ρ (a model at several
    thread counts has the same accuracy, so the same ρ) are one point with one label."""

    released: str
    rho: float
    ci: list
    keys: list[str]

    @property
    def day(self) -> int:
        return dt.date.fromisoformat(self.released).toordinal()

    @property
    def label(self) -> str:
        return _joined_keys(self.keys)


def _marks(points: list[dict]) -> list[_Mark]:
    marks: dict[tuple, _Mark] = {}
    for r in points:
        where = (r["released"], f"{r['rho']:.6g}")
        if where not in marks:
            marks[where] = _Mark(r["released"], r["rho"], r.get("rho_ci95"), [])
        marks[where].keys.append(r["key"])
    return list(marks.values())


def _joined_keys(keys: list[str]) -> str:
    """"m-q4_1 t1, t2" for keys that differ only in their last word, else the keys joined."""
    heads = {k.rsplit(" ", 1)[0] for k in keys}
    if len(keys) > 1 and len(heads) == 1 and all(" " in k for k in keys):
        return f"{heads.pop()} " + ", ".join(k.rsplit(" ", 1)[1] for k in keys)
    return ", ".join(keys)


def _nothing_to_compare(points: list[dict], dates: list[str]) -> str:
    if not points:
        return ("No density plot: no configuration has both ρ and a release date (the table above says why for "
                "each), so there is nothing to draw.")
    rhos = ", ".join(f"{m.label} ρ {m.rho:.2f}" for m in _marks(points))
    return (f"No density plot: every configuration with ρ was released on {dates[0]} ({rhos}), so there is nothing "
            "to compare over time; the plot of ρ against release date needs at least two release dates.")


class _DateAxis(plots.Axis):
    """A linear axis over day ordinals whose ticks are first days of months, labelled YYYY-MM."""

    def label(self, value: float) -> str:
        return f"{dt.date.fromordinal(int(value)):%Y-%m}"


def date_axis(first_day: int, last_day: int, most: int = 6) -> plots.Axis:
    """Ends and ticks on the first day of a month, every 1, 2, 3, 6 or 12 months (or a multiple of
    12 years), with at most ``most`` ticks; the ends lie strictly outside the data so no point sits
    on an axis line."""
    def month_index(day: int) -> int:
        d = dt.date.fromordinal(day)
        return d.year * 12 + d.month - 1

    def first_of(index: int) -> int:
        return dt.date(index // 12, index % 12 + 1, 1).toordinal()

    start, end = month_index(first_day - 1), month_index(last_day) + 1  # first_of(end) > last_day
    for step in (1, 2, 3, 6, 12, 24, 60, 120, 240, 600):
        lo, hi = start - start % step, -(-end // step) * step
        if (hi - lo) // step + 1 <= most:
            break
    ticks = [float(first_of(i)) for i in range(lo, hi + 1, step)]
    return _DateAxis(ticks[0], ticks[-1], ticks)


def _whisker(m: _Mark, x: float, frame: plots.Frame, ya: plots.Axis) -> str:
    """ρ's 95% interval; an open end (None: unbounded) runs to the edge of the plot; no interval, no line."""
    if m.ci is None:
        return ""
    low, high = m.ci
    y0 = frame.bottom if low is None else frame.y(ya, low)
    y1 = frame.top if high is None else frame.y(ya, high)
    return f'<line class="interval" x1="{x:.1f}" x2="{x:.1f}" y1="{y0:.1f}" y2="{y1:.1f}" stroke="{TREND_COLOUR}"/>'


def _trend_lines(trend, frame: plots.Frame, xa: plots.Axis, ya: plots.Axis) -> list[str]:
    if not trend:
        return []
    d0 = dt.date.fromisoformat(trend["date0"]).toordinal()
    xs = [xa.lo + i * (xa.hi - xa.lo) / 40 for i in range(41)]
    months = [(x - d0) / (365.25 / 12) for x in xs]
    # ln ρ from the fit, onto the axis; the band is clipped to the plot area by the enclosing <g>
    y_of = lambda ln_rho: frame.y(ya, math.exp(min(max(ln_rho, -700.0), 700.0)))  # noqa: E731
    band = [_band(trend, m) for m in months]
    upper = " ".join(f"{frame.x(xa, x):.1f},{y_of(hi):.1f}" for x, (_, hi) in zip(xs, band, strict=True))
    lower = " ".join(f"{frame.x(xa, x):.1f},{y_of(lo):.1f}" for x, (lo, _) in reversed(list(zip(xs, band, strict=True))))
    line = " ".join(f"{frame.x(xa, x):.1f},{y_of(trend['intercept'] + trend['slope_per_month'] * m):.1f}"
                    for x, m in zip(xs, months, strict=True))
    return [f'<polygon class="band" points="{upper} {lower}" fill="{TREND_COLOUR}" fill-opacity="0.12"/>',
            f'<polyline class="trend" points="{line}" fill="none" stroke="{TREND_COLOUR}" stroke-width="2"/>']


def _band(trend: dict, months: float) -> tuple[float, float]:
    centre = trend["intercept"] + trend["slope_per_month"] * months
    if not trend.get("sxx"):
        return centre, centre
    half = mean_response_half_width(trend["t975"], trend["resid_sd"], trend["n_points"], trend["x_mean_months"],
                                    trend["sxx"], months)
    return centre - half, centre + half


def _reference_lines(marks: list[_Mark], frame: plots.Frame, xa: plots.Axis, ya: plots.Axis) -> list[str]:
    """Doubling every 8 and 3.3 months, drawn through the points' centre (mean date, mean log ρ)."""
    cx = sum(m.day for m in marks) / len(marks)
    cy = sum(math.log10(m.rho) for m in marks) / len(marks)
    out = []
    for months, (colour, dash) in DOUBLING_STYLES.items():
        per_day = math.log10(2) / (months * 365.25 / 12)
        ends = [(x, frame.y(ya, 10 ** min(max(cy + per_day * (x - cx), -300.0), 300.0))) for x in (xa.lo, xa.hi)]
        (xa0, y0), (xa1, y1) = ends
        out.append(f'<line class="reference" x1="{frame.x(xa, xa0):.1f}" y1="{y0:.1f}" x2="{frame.x(xa, xa1):.1f}" '
                   f'y2="{y1:.1f}" stroke="{colour}" stroke-dasharray="{dash}"><title>doubling every {months:g} months'
                   "</title></line>")
    return out
