"""The HTML report's density section: the table and ρ (log axis) against release date, with the
fitted trend, its 95% band and the 8-month and 3.3-month doubling lines for comparison.

It reads the JSON form of a density report (``DensityReport.to_dict``), so a stored report and a
freshly computed one draw the same way. Inline SVG, no script, as the rest of the page.
"""

from __future__ import annotations

import datetime as dt
import html
import math

from profiler.density import fmt_interval, fmt_params

W, H, PAD = 560, 320, 56
DOUBLING_STYLES = {8.0: ("#9333ea", "6 3"), 3.3: ("#ea580c", "2 3")}


def _e(value) -> str:
    return html.escape(str(value))


def density_section(run, report: dict | None = None) -> str:
    """The section for ``run``: the given report, else one computed with the default reference family."""
    if report is None:
        from profiler import density_io
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
          f"{fit['b']:.4f} ln N))). ρ = N̂ / active parameters.</p>",
        _table(report["configurations"]),
        f"<figure>{plot_trend(report)}<figcaption>ρ (log axis) against release date, with 95% intervals; "
        "the fitted trend and its 95% band when three or more dates exist; dashed lines: doubling every "
        "8 months and every 3.3 months (Densing Law), through the data's centre.</figcaption></figure>",
        f"<p>{_e(_trend_text(report))}</p>",
    ]
    trend = report.get("trend")
    if trend:
        parts += [f"<p>{_e(c)}</p>" for c in trend["comparisons"]]
    parts += [f"<p>{_e(c)}</p>" for c in report.get("cost") or []]
    parts += [f"<p class='warn'>{_e(n)}</p>" for n in report.get("notes") or []]
    return "".join(parts)


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
        return f"Trend over {t['n_points']} points: ρ does not grow with release date here. {report.get('trend_note')}"
    ci = fmt_interval(t.get("doubling_ci95_months"), lambda v: f"{v:.1f}").replace(">", "unbounded")
    return f"Trend over {t['n_points']} points: ρ doubles every {t['doubling_months']:.1f} months{ci} (95%)."


# --------------------------------------------------------------------------- the plot


def plot_trend(report: dict) -> str:
    points = [r for r in report["configurations"] if r.get("rho") and r.get("released")]
    if not points:
        return _empty("no configuration has both ρ and a release date")
    days = [dt.date.fromisoformat(r["released"]).toordinal() for r in points]
    ys = [math.log10(r["rho"]) for r in points]
    lows = [math.log10(r["rho_ci95"][0]) for r in points if r.get("rho_ci95") and r["rho_ci95"][0]]
    highs = [math.log10(r["rho_ci95"][1]) for r in points if r.get("rho_ci95") and r["rho_ci95"][1]]
    x_lo, x_hi = min(days) - 60, max(days) + 60
    y_lo, y_hi = min(ys + lows) - 0.3, max(ys + highs) + 0.3
    px = _scaler(x_lo, x_hi, PAD, W - 16)
    py = _scaler(y_lo, y_hi, H - PAD, 16)
    body = [_axes(x_lo, x_hi, y_lo, y_hi, px, py),
            f"<clipPath id='density-area'><rect x='{PAD}' y='16' width='{W - 16 - PAD}' height='{H - PAD - 16}'/></clipPath>",
            "<g clip-path='url(#density-area)'>"]
    body += _trend_lines(report.get("trend"), px, py, x_lo, x_hi, y_lo, y_hi)
    body += _reference_lines(days, ys, px, py, x_lo, x_hi)
    body += ["</g>", _legend(bool(report.get("trend")))]
    for r, d, y in zip(points, days, ys):
        ci = r.get("rho_ci95")
        if ci and ci[0] and ci[1]:
            body.append(f"<line x1='{px(d):.1f}' x2='{px(d):.1f}' y1='{py(math.log10(ci[0])):.1f}' "
                        f"y2='{py(math.log10(ci[1])):.1f}' stroke='#2563eb'/>")
        body.append(f"<circle cx='{px(d):.1f}' cy='{py(y):.1f}' r='4' fill='#2563eb'><title>{_e(r['key'])}: "
                    f"ρ {r['rho']:.2f}</title></circle>")
        body.append(f"<text x='{px(d) + 6:.1f}' y='{py(y) - 6:.1f}'>{_e(r['key'])}</text>")
    return (f"<svg xmlns='http://www.w3.org/2000/svg' class='plot' width='{W}' height='{H}' viewBox='0 0 {W} {H}' "
            "role='img'>"
            f"<title>relative density against release date</title>{''.join(body)}</svg>")


def _scaler(lo: float, hi: float, lo_px: float, hi_px: float):
    span = (hi - lo) or 1.0
    return lambda v: lo_px + (v - lo) / span * (hi_px - lo_px)


def _axes(x_lo, x_hi, y_lo, y_hi, px, py) -> str:
    out = [f"<line x1='{PAD}' y1='{H - PAD}' x2='{W - 16}' y2='{H - PAD}' stroke='#444'/>",
           f"<line x1='{PAD}' y1='16' x2='{PAD}' y2='{H - PAD}' stroke='#444'/>"]
    for power in range(math.floor(y_lo), math.ceil(y_hi) + 1):
        for mult in (1, 2, 5):
            v = power + math.log10(mult)
            if y_lo <= v <= y_hi:
                out.append(f"<text x='{PAD - 6}' y='{py(v) + 4:.1f}' text-anchor='end'>{10 ** v:g}</text>")
    for d in _month_ticks(x_lo, x_hi):
        out.append(f"<text x='{px(d.toordinal()):.1f}' y='{H - PAD + 16}' text-anchor='middle'>{d:%Y-%m}</text>")
    out.append(f"<text x='{(PAD + W) / 2:.0f}' y='{H - 12}' text-anchor='middle'>release date</text>")
    out.append(f"<text x='14' y='{H / 2:.0f}' transform='rotate(-90 14 {H / 2:.0f})' text-anchor='middle'>"
               "ρ = N̂ / active parameters (log)</text>")
    return "".join(out)


def _month_ticks(x_lo: float, x_hi: float, most: int = 6) -> list[dt.date]:
    """First-of-month dates inside [x_lo, x_hi], every 1, 2, 3, 6 or 12 months: at most ``most``."""
    start = dt.date.fromordinal(int(x_lo))
    months = (x_hi - x_lo) / (365.25 / 12)
    step = next((s for s in (1, 2, 3, 6, 12) if months / s <= most), 12 * math.ceil(months / (12 * most)))
    ticks, index = [], start.year * 12 + start.month  # the first month that starts after x_lo
    while True:
        year, month = divmod(index, 12)
        day = dt.date(year, month + 1, 1)
        if day.toordinal() > x_hi:
            return ticks
        if day.toordinal() >= x_lo and (month % step == 0):
            ticks.append(day)
        index += 1


def _trend_lines(trend, px, py, x_lo, x_hi, y_lo, y_hi) -> list[str]:
    if not trend:
        return []
    d0 = dt.date.fromisoformat(trend["date0"]).toordinal()
    xs = [x_lo + i * (x_hi - x_lo) / 40 for i in range(41)]
    months = [(x - d0) / (365.25 / 12) for x in xs]
    clip = lambda v: min(max(v, y_lo), y_hi)  # noqa: E731 - keep the band inside the plot
    centre = [clip((trend["intercept"] + trend["slope_per_month"] * m) / math.log(10)) for m in months]
    band = [_band(trend, m) for m in months]
    upper = " ".join(f"{px(x):.1f},{py(clip(hi / math.log(10))):.1f}" for x, (_, hi) in zip(xs, band))
    lower = " ".join(f"{px(x):.1f},{py(clip(lo / math.log(10))):.1f}" for x, (lo, _) in reversed(list(zip(xs, band))))
    line = " ".join(f"{px(x):.1f},{py(c):.1f}" for x, c in zip(xs, centre))
    return [f"<polygon points='{upper} {lower}' fill='#2563eb' fill-opacity='0.12'/>",
            f"<polyline points='{line}' fill='none' stroke='#2563eb' stroke-width='2'/>"]


def _band(trend: dict, months: float) -> tuple[float, float]:
    centre = trend["intercept"] + trend["slope_per_month"] * months
    if not trend.get("sxx"):
        return centre, centre
    half = trend["t975"] * trend["resid_sd"] * math.sqrt(1 / trend["n_points"]
                                                          + (months - trend["x_mean_months"]) ** 2 / trend["sxx"])
    return centre - half, centre + half


def _reference_lines(days, ys, px, py, x_lo, x_hi) -> list[str]:
    """Doubling every 8 and 3.3 months, drawn through the points' centre (mean date, mean log ρ)."""
    cx, cy = sum(days) / len(days), sum(ys) / len(ys)
    out = []
    for months, (colour, dash) in DOUBLING_STYLES.items():
        per_day = math.log10(2) / (months * 365.25 / 12)
        a, b = cy + per_day * (x_lo - cx), cy + per_day * (x_hi - cx)
        out.append(f"<line x1='{px(x_lo):.1f}' y1='{py(a):.1f}' x2='{px(x_hi):.1f}' y2='{py(b):.1f}' stroke='{colour}' "
                   f"stroke-dasharray='{dash}'><title>doubling every {months:g} months</title></line>")
    return out


def _legend(with_trend: bool) -> str:
    """Top-left key: the fitted trend (when there is one) and the two reference doubling times."""
    entries = [("#2563eb", "", "fitted trend, 95% band")] if with_trend else []
    entries += [(colour, dash, f"doubling every {months:g} months") for months, (colour, dash) in DOUBLING_STYLES.items()]
    out = [f"<rect x='{PAD + 6}' y='20' width='200' height='{14 * len(entries) + 6}' fill='white' fill-opacity='0.85'/>"]
    for i, (colour, dash, label) in enumerate(entries):
        y = 32 + 14 * i
        out.append(f"<line x1='{PAD + 12}' y1='{y - 4}' x2='{PAD + 36}' y2='{y - 4}' stroke='{colour}' stroke-width='2' "
                   f"stroke-dasharray='{dash}'/><text x='{PAD + 42}' y='{y}'>{_e(label)}</text>")
    return "".join(out)


def _empty(reason: str) -> str:
    return (f"<svg xmlns='http://www.w3.org/2000/svg' class='plot' width='{W}' height='80' viewBox='0 0 {W} 80' "
            "role='img'>"
            f"<title>relative density against release date</title>"
            f"<text x='10' y='40'>no density plot: {_e(reason)}</text></svg>")
