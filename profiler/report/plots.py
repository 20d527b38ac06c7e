"""Hand-drawn SVG plots for the HTML report: honest axes, round ticks, labels that never overlap.

Rules every plot follows (issue 14): a non-negative quantity never gets a negative axis; bars start
at zero; an axis turns logarithmic when the values span more than ``LOG_SPAN``; ticks are round
numbers (1, 2, 5 x 10^k); every plot says which direction is better; a plot with nothing to
compare is replaced by a sentence. Why SVG written here rather than matplotlib: see docs/report.md.

Each plot function returns HTML (an ``<svg>`` or a ``<p class="noplot">``). Text sizes are
estimated to place labels; the estimate is deliberately wide so a real font never overlaps.
"""

from __future__ import annotations

import html
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from profiler.report.terminal import short_model_names, sig3

WIDTH = 540
FONT_PX = 12
CHAR_PX = 0.62 * FONT_PX  # a wide estimate of one character of system-ui at 11 px
LOG_SPAN = 30.0
COLOURS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4d7c0f", "#be185d"]
FRONTIER = "#16a34a"
GOOD = "#166534"
AXIS_ROOM = 54  # below the plot area: tick labels, then the axis label


def _e(value) -> str:
    return html.escape(str(value))


def text_px(text: str, font_px: float = FONT_PX) -> float:
    return len(text) * 0.62 * font_px


def sentence(text: str) -> str:
    """What stands in for a plot that would carry no information."""
    return f'<p class="noplot">{_e(text)}</p>'


# ----------------------------------------------------------------------------- axes and ticks


def nice_step(raw: float) -> float:
    """The round step (1, 2 or 5 x 10^k) nearest above ``raw``."""
    power = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 5, 10):
        if m * power >= raw * 0.999:
            return m * power
    return 10 * power


@dataclass
class Axis:
    lo: float
    hi: float
    ticks: list[float]
    log: bool = False

    def frac(self, value: float) -> float:
        """Where ``value`` sits between the axis ends, 0..1."""
        if self.log:
            return (math.log10(value) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        return (value - self.lo) / (self.hi - self.lo)

    def label(self, value: float) -> str:
        return tick_label(value, self.ticks, self.log)


def tick_label(value: float, ticks: Sequence[float], log: bool) -> str:
    if value == 0:
        return "0"
    if log:
        if abs(value) >= 1e4:
            return f"{value / 1e3:g}k"
        return f"{value:g}" if abs(value) >= 1e-4 else f"{value:.0e}"
    step = min((b - a for a, b in zip(ticks, ticks[1:], strict=False)), default=abs(value)) or abs(value)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if abs(value) >= 1e4 and decimals == 0:
        return f"{value / 1e3:g}k"
    return f"{value:.{decimals}f}"


def linear_axis(values: Sequence[float], zero: bool = False, n_ticks: int = 6) -> Axis:
    """Round ticks covering the values; ``zero`` includes zero (bars). Non-negative data never
    gets a negative end."""
    lo, hi = min(values), max(values)
    nonneg = lo >= 0
    if zero or (nonneg and lo <= 0.3 * hi):
        lo = min(lo, 0.0)
    if hi == lo:
        pad = abs(hi) * 0.2 or 1.0
        lo, hi = (0.0 if nonneg and lo - pad < 0 else lo - pad), hi + pad
    step = nice_step((hi - lo) / (n_ticks - 1))
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    if nonneg:
        start = max(start, 0.0)
    ticks = [round(start + i * step, 12) for i in range(int(round((end - start) / step)) + 1)]
    return Axis(ticks[0], ticks[-1], ticks)


def _nice_below(value: float) -> float:
    """The largest 1, 2 or 5 x 10^k at or below ``value``."""
    power = 10.0 ** math.floor(math.log10(value))
    return max(m * power for m in (1, 2, 5) if m * power <= value * (1 + 1e-9))


def _nice_above(value: float) -> float:
    """The smallest 1, 2 or 5 x 10^k at or above ``value``."""
    power = 10.0 ** math.floor(math.log10(value))
    return min(m * power for m in (1, 2, 5, 10) if m * power >= value * (1 - 1e-9))


def log_axis(values: Sequence[float]) -> Axis:
    """Round ends (1, 2 or 5 x 10^k) just outside the values, the decades between them as ticks,
    and 2 and 5 in between when there are few decades."""
    lo, hi = _nice_below(min(values)), _nice_above(max(values))
    decades = math.log10(hi / lo)
    mults = (1, 2, 5) if decades <= 2 else (1,)
    inner = [m * 10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in mults]
    ticks = sorted({float(f"{t:.6g}") for t in [lo, hi] + [t for t in inner if lo <= t <= hi]})
    return Axis(lo, hi, ticks, log=True)


def auto_axis(values: Sequence[float], zero: bool = False) -> Axis:
    """Log when positive values span more than LOG_SPAN (never for bars, which start at zero)."""
    positive = min(values) > 0
    if not zero and positive and max(values) / min(values) > LOG_SPAN:
        return log_axis(values)
    return linear_axis(values, zero=zero)


# ----------------------------------------------------------------------------- the frame of a plot


@dataclass
class Frame:
    """Plot area inside the SVG: x from left to right, y from top to bottom (pixels)."""

    left: float
    right: float
    top: float
    bottom: float

    def x(self, axis: Axis, value: float) -> float:
        return self.left + axis.frac(value) * (self.right - self.left)

    def y(self, axis: Axis, value: float) -> float:
        return self.bottom - axis.frac(value) * (self.bottom - self.top)


def _text(x: float, y: float, text: str, anchor: str = "start", cls: str = "", fill: str = "") -> str:
    attrs = f' class="{cls}"' if cls else ""
    attrs += f' fill="{fill}"' if fill else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{attrs}>{_e(text)}</text>'


def direction(text: str) -> str:
    """The "which way is better" line at the top of every plot."""
    return _text(8, 16, f"better: {text}", cls="better", fill=GOOD)


def x_axis(frame: Frame, axis: Axis, label: str, ticks: Sequence[float] | None = None) -> str:
    parts = [f'<line x1="{frame.left}" y1="{frame.bottom}" x2="{frame.right}" y2="{frame.bottom}" stroke="#333"/>']
    ticks = list(ticks if ticks is not None else axis.ticks)
    placed: list[tuple[float, float]] = []
    for t in ticks[:1] + ticks[-1:] + ticks[1:-1]:  # both ends first: an axis always shows its range
        px, text = frame.x(axis, t), axis.label(t)
        half = text_px(text) / 2
        if any(px - half < right + 4 and px + half > left - 4 for left, right in placed):  # would touch a label
            continue
        parts.append(_text(px, frame.bottom + 20, text, "middle", "tick-x"))  # clear of the lowest y label
        parts.append(f'<line x1="{px:.1f}" y1="{frame.bottom}" x2="{px:.1f}" y2="{frame.bottom + 4}" stroke="#333"/>')
        placed.append((px - half, px + half))
    parts.append(_text((frame.left + frame.right) / 2, frame.bottom + 39, label, "middle", "axis-label"))
    return "".join(parts)


def y_axis(frame: Frame, axis: Axis, label: str) -> str:
    parts = [f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{frame.bottom}" stroke="#333"/>']
    for t in axis.ticks:
        py = frame.y(axis, t)
        parts.append(_text(frame.left - 6, py + 4, axis.label(t), "end", "tick-y"))
        parts.append(f'<line x1="{frame.left}" y1="{py:.1f}" x2="{frame.right}" y2="{py:.1f}" stroke="#e5e5e5"/>')
    mid = (frame.top + frame.bottom) / 2
    parts.append(f'<text x="12" y="{mid:.1f}" transform="rotate(-90 12 {mid:.1f})" text-anchor="middle" '
                 f'class="axis-label">{_e(label)}</text>')
    return "".join(parts)


def y_label_room(axis: Axis) -> float:
    return 26 + max(text_px(axis.label(t)) for t in axis.ticks) + 8


def svg(body: str, height: float, title: str, kind: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" data-plot="{_e(kind)}" width="{WIDTH}" '
            f'height="{height:.0f}" viewBox="0 0 {WIDTH} {height:.0f}" role="img" aria-label="{_e(title)}">'
            f'<title>{_e(title)}</title>{body}</svg>')


class Labels:
    """Places point labels where they touch no other label (estimated boxes); gives up otherwise."""

    def __init__(self, bounds: Frame) -> None:
        self.bounds = bounds
        self.boxes: list[tuple[float, float, float, float]] = []

    def reserve(self, x0: float, y0: float, x1: float, y1: float) -> None:
        self.boxes.append((x0, y0, x1, y1))

    def free(self, box) -> bool:
        x0, y0, x1, y1 = box
        b = self.bounds
        if x0 < b.left or x1 > b.right or y0 < b.top or y1 > b.bottom:
            return False
        return all(x1 <= a0 or x0 >= a1 or y1 <= b0 or y0 >= b1 for a0, b0, a1, b1 in self.boxes)

    def place(self, x: float, y: float, text: str, cls: str = "label", fill: str = "", gap: float = 8) -> str:
        """The label beside (x, y), ``gap`` pixels away, at the first free spot; "" when none is free."""
        w = text_px(text)
        for dx, dy, anchor in ((gap, -4, "start"), (-gap, -4, "end"), (gap, FONT_PX + 2, "start"),
                               (-gap, FONT_PX + 2, "end"), (0, -gap - 2, "middle"), (0, gap + FONT_PX, "middle"),
                               (gap, -FONT_PX - 4, "start"), (-gap, -FONT_PX - 4, "end")):
            x0 = x + dx - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
            box = (x0, y + dy - FONT_PX, x0 + w, y + dy + 3)
            if self.free(box):
                self.boxes.append(box)
                return _text(x + dx, y + dy, text, anchor, cls, fill)
        return ""


def legend(entries: Sequence[tuple[str, ...]], top: float) -> tuple[str, float]:
    """Swatch + name entries in rows below the plot; returns the SVG and the height used. An entry
    (name, colour) gets a square; (name, colour, dasharray) a short line in that dash ("" solid)."""
    parts, x, y = [], 8.0, top + 12
    for name, colour, *dash in entries:
        swatch = 22 if dash else 10
        w = swatch + 6 + text_px(name) + 14
        if x + w > WIDTH - 8 and x > 8:
            x, y = 8.0, y + 16
        if dash:
            parts.append(f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + swatch:.1f}" y2="{y - 4:.1f}" stroke="{colour}" '
                         f'stroke-width="2" stroke-dasharray="{dash[0]}"/>')
        else:
            parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}"/>')
        parts.append(_text(x + swatch + 4, y, name, cls="legend"))
        x += w
    return "".join(parts), y - top + 8


def unit_for_joules(values: Sequence[float]) -> tuple[float, str]:
    top = max(values)
    for factor, unit in ((1.0, "J"), (1e-3, "mJ"), (1e-6, "µJ")):
        if top >= factor:
            return factor, unit
    return 1e-6, "µJ"


# ----------------------------------------------------------------------------- the plots


def _model_labels(rows) -> dict:
    return short_model_names([(r.model_name, r.quant_type) for r in rows])


def plot_quality_energy(board, recommended_key: str | None = None) -> str:
    """Accuracy against J/token: the Pareto frontier and the recommended configuration are labelled."""
    if board is None:
        return sentence("No quality plot: this run has no scoreboard (no accuracy source for its models).")
    pts = _quality_points(board)
    if len(pts) < 2:
        if not pts:
            return sentence("No quality plot: it needs an accuracy score and J/token for at least two configurations; "
                            "this run has none with both.")
        s = pts[0]
        return sentence(f"No quality plot: only {s.config.key} has both an accuracy score ({s.accuracy_pct:.1f}%) and "
                        f"J/token ({s.config.j_per_decode_token * 1e3:.3g} mJ{_est(s)}): nothing to compare it with.")
    names = short_model_names([(s.config.model_name, s.config.quant) for s in pts])
    factor, unit = unit_for_joules([s.config.j_per_decode_token for s in pts])
    xs = [s.config.j_per_decode_token / factor for s in pts]
    ya = auto_axis([s.accuracy_pct for s in pts])
    xa = auto_axis(xs)
    height = 340
    frame = Frame(y_label_room(ya), WIDTH - 16, 30, height - AXIS_ROOM)
    estimated = not all(s.config.energy_measured for s in pts)
    x_label = f"{unit} per decoded token" + (" (estimated)" if estimated else "") + (", log scale" if xa.log else "")
    body = [direction("up and left (more accurate, less energy per token)"),
            y_axis(frame, ya, f"{board.metric} accuracy %" + (", log" if ya.log else "")), x_axis(frame, xa, x_label)]
    labels = Labels(Frame(frame.left + 2, frame.right, 22, frame.bottom - 2))
    where = {s.config.key: (frame.x(xa, x), frame.y(ya, s.accuracy_pct)) for s, x in zip(pts, xs, strict=True)}
    for x, y in where.values():
        labels.reserve(x - 7, y - 7, x + 7, y + 7)
    frontier = sorted((s for s in pts if s.on_frontier), key=lambda s: s.config.j_per_decode_token)
    marks = []
    if len(frontier) > 1:
        path = " ".join(f"{where[s.config.key][0]:.1f},{where[s.config.key][1]:.1f}" for s in frontier)
        body.append(f'<polyline class="frontier" fill="none" stroke="{FRONTIER}" stroke-width="1.5" '
                    f'stroke-dasharray="5 3" points="{path}"/>')
    # a one-point frontier that is also the recommendation gets one label, not two competing for room
    alone = len(frontier) == 1 and frontier[0].config.key == recommended_key
    if recommended_key in where:
        x, y = where[recommended_key]
        labels.reserve(x - 11, y - 11, x + 11, y + 11)
        body.append(f'<circle class="recommended" cx="{x:.1f}" cy="{y:.1f}" r="10" fill="none" stroke="#111" stroke-width="1.5"/>')
        text = f"recommended: {_label_of(recommended_key, pts, names)}" + (", the Pareto frontier" if alone else "")
        marks.append(labels.place(x, y, text, "label recommended-label", gap=13))
    if len(frontier) > 1:  # name the dashed line at the middle of its longest segment
        segs = [(where[a.config.key], where[b.config.key]) for a, b in zip(frontier, frontier[1:], strict=False)]
        (x0, y0), (x1, y1) = max(segs, key=lambda ab: math.dist(*ab))
        marks.append(labels.place((x0 + x1) / 2, (y0 + y1) / 2, "Pareto frontier", "label frontier-label", FRONTIER, gap=6))
    elif frontier and not alone:
        marks.append(labels.place(*where[frontier[0].config.key], "Pareto frontier (one point)", "label frontier-label",
                                  FRONTIER, gap=9))
    for s in pts:
        x, y = where[s.config.key]
        fill = FRONTIER if s.on_frontier else "white"
        body.append(f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{fill}" stroke="{FRONTIER}" stroke-width="2">'
                    f'<title>{_e(s.config.key)}: {s.accuracy_pct:.1f}% at {s.config.j_per_decode_token / factor:.3g} {unit}/token{_est(s)}'
                    f'{"" if s.on_frontier else " (dominated)"}</title></circle>')
    for s in pts:
        if s.config.key != recommended_key:
            marks.append(labels.place(*where[s.config.key], _label_of(s.config.key, pts, names), gap=9))
    return svg("".join(body + marks), height, "quality against energy", "quality")


def _est(score) -> str:
    """Marks an estimated J/token "(est.)": each point's own figure says so, not only the axis."""
    return "" if score.config.energy_measured else " (est.)"


def _quality_points(board) -> list:
    """The scores plot_quality_energy draws: those with both an accuracy and a J/token."""
    return [s for s in board.scores if s.accuracy_pct is not None and s.config.j_per_decode_token]


def quality_energy_caption(board, recommended_key: str | None = None) -> str:
    """The caption of plot_quality_energy, naming only what it draws ("" when it draws a sentence):
    the dashed frontier line only when the frontier has two or more points, the ring only when the
    recommended configuration is on the plot."""
    pts = [] if board is None else _quality_points(board)
    if len(pts) < 2:
        return ""
    frontier = [s for s in pts if s.on_frontier]
    objectives = f": {', '.join(board.objectives_used)}" if board.objectives_used else ""
    if len(frontier) > 1:
        text = ("filled points, joined by the dashed line, form the Pareto frontier: no other configuration is at least "
                f"as good as one of them on every objective{objectives} and better beyond the noise on one; open points "
                "are dominated")
    elif frontier:
        text = (f"the filled point, {frontier[0].config.key}, is the only point on the Pareto frontier (no other "
                f"configuration is at least as good on every objective{objectives} and better beyond the noise on one), "
                "so no frontier line is drawn; open points "
                "are dominated")
    else:
        text = "no configuration drawn here is on the Pareto frontier; open points are dominated"
    if recommended_key in {s.config.key for s in pts}:
        text += "; the ringed point is the recommended configuration"
    elif recommended_key:
        text += f"; the recommended configuration, {recommended_key}, is not drawn: it lacks an accuracy or a J/token"
    return f"Quality against J/token: {text}."


def _label_of(key: str, pts, names) -> str:
    for s in pts:
        if s.config.key == key:
            return names[(s.config.model_name, s.config.quant)] + key[len(s.config.model_name):]
    return key


def plot_threads(run) -> str:
    """Tokens/s against threads, one line per model and test."""
    counts = sorted({r.n_threads for r in run.rows})
    if len(counts) < 2:
        if not run.rows:
            return sentence("No thread-scaling plot: the run has no rows.")
        return sentence(f"No thread-scaling plot: every test ran at {counts[0]} thread(s). "
                        "Run with -t 1,2,4 (for example) to see how speed scales with threads.")
    names = _model_labels(run.rows)
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for r in run.rows:
        on = f"{r.device_name}: " if r.device_name else ""  # a fleet run: one line per device too
        series[f"{on}{names[(r.model_name, r.quant_type)]} {r.test}"].append((r.n_threads, r.avg_ts))
    rates = [y for pts in series.values() for _, y in pts]
    ya = auto_axis(rates)
    xa = linear_axis([float(c) for c in counts], zero=True)
    xa = Axis(xa.lo, xa.hi, [float(c) for c in counts])  # ticks at the thread counts that ran
    entries = [(name, COLOURS[i % len(COLOURS)]) for i, name in enumerate(sorted(series))]
    top_of_legend = 300
    legend_svg, legend_h = legend(entries, top_of_legend)
    height = top_of_legend + legend_h
    frame = Frame(y_label_room(ya), WIDTH - 16, 30, top_of_legend - AXIS_ROOM)
    body = [direction("up (more tokens per second)"), y_axis(frame, ya, "tokens/s" + (", log scale" if ya.log else "")),
            x_axis(frame, xa, "threads"), legend_svg]
    for name, colour in entries:
        pts = sorted(series[name])
        path = " ".join(f"{frame.x(xa, x):.1f},{frame.y(ya, y):.1f}" for x, y in pts)
        body.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        body += [f'<circle class="point" cx="{frame.x(xa, x):.1f}" cy="{frame.y(ya, y):.1f}" r="4" fill="{colour}">'
                 f'<title>{_e(name)}: {y:.1f} t/s at {x} threads</title></circle>' for x, y in pts]
    return svg("".join(body), height, "tokens per second against threads", "threads")


def _bars(items: Sequence[tuple[str, float, str]], value_label, title: str, kind: str, x_label: str,
          better: str) -> str:
    """Horizontal bars from zero, one per (label, value, tooltip), the value written at the bar's end."""
    xa = linear_axis([v for _, v, _ in items], zero=True)
    label_w = min(max(text_px(label) for label, _, _ in items) + 12, WIDTH * 0.45)
    row_h = 24
    top = 30
    height = top + row_h * len(items) + AXIS_ROOM
    frame = Frame(label_w, WIDTH - 16 - text_px("00000 t/s"), top, top + row_h * len(items))
    body = [direction(better), x_axis(frame, xa, x_label)]
    for i, (label, value, tip) in enumerate(items):
        y = top + i * row_h + 4
        x1 = frame.x(xa, value)
        colour = COLOURS[i % len(COLOURS)]
        shown = label if text_px(label) + 12 <= label_w else label[: int((label_w - 12) / CHAR_PX) - 1] + "…"
        body.append(_text(label_w - 6, y + 12, shown, "end", "bar-label"))
        body.append(f'<rect class="bar" x="{frame.left:.1f}" y="{y:.1f}" width="{max(x1 - frame.left, 0.5):.1f}" '
                    f'height="{row_h - 8}" fill="{colour}"><title>{_e(tip)}</title></rect>')
        body.append(_text(x1 + 4, y + 12, value_label(value), cls="bar-value"))
    return svg("".join(body), height, title, kind)


def plot_ladder(run) -> str:
    """Best decode t/s per model file, smallest file first: the quantization ladder at a glance."""
    names = _model_labels(run.rows)
    best: dict[tuple, tuple[float, int]] = {}
    for r in run.rows:
        if r.decode_ts is None:
            continue
        key = (r.model_name, r.quant_type)
        if key not in best or r.decode_ts > best[key][0]:
            best[key] = (r.decode_ts, r.file_size_bytes)
    if len(best) < 2:
        if not best:
            return sentence("No model-file comparison: this run has no generation (tg) test.")
        (key, (rate_ts, size)), = best.items()
        return sentence(f"No model-file comparison: only one model file ({names[key]}, {size / 2**20:.0f} MiB) "
                        f"decoded, at {sig3(rate_ts)} t/s. Add more files to compare them.")
    items = [(f"{names[k]} ({size / 2**20:.0f} MiB)", rate_ts, f"{names[k]}: {rate_ts:.1f} t/s, {size / 2**20:.0f} MiB")
             for k, (rate_ts, size) in sorted(best.items(), key=lambda kv: kv[1][1])]
    return _bars(items, lambda v: f"{sig3(v)} t/s", "quantization ladder", "ladder", "decode tokens/s (best thread count)",
                 "longer bars (more tokens per second)")


def plot_samples(run, test: str) -> str:
    """Every repetition's t/s for one test, per configuration, with the mean: the spread behind the mean."""
    rows = [r for r in run.rows if r.test == test]
    names = _model_labels(rows)
    samples = [(r, [s for s in (r.samples_ts or []) if s is not None]) for r in rows]
    total = sum(len(s) for _, s in samples)
    if total < 2:
        return sentence(f"No spread plot for {test}: it has {total} repetition sample(s); run with -r 3 or more to see the spread.")
    values = [v for _, s in samples for v in s]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 or max(abs(hi) * 0.05, 1e-9)
    xa = log_axis(values) if lo > 0 and hi / lo > LOG_SPAN else linear_axis([max(lo - pad, 0.0), hi + pad])
    label_of = {id(r): f"{names[(r.model_name, r.quant_type)]} t{r.n_threads}" for r, _ in samples}
    label_w = min(max(text_px(label) for label in label_of.values()) + 12, WIDTH * 0.45)
    row_h, top = 26, 30
    height = top + row_h * len(samples) + AXIS_ROOM
    frame = Frame(label_w, WIDTH - 16, top, top + row_h * len(samples))
    from_zero = xa.lo == 0
    body = [direction("right (faster); a tight cluster is a stable number"),
            x_axis(frame, xa, f"{test} tokens/s per repetition" + (", log scale" if xa.log else "" if from_zero
                                                                    else " (axis does not start at 0)"))]
    for i, (r, s) in enumerate(samples):
        y = top + i * row_h + row_h / 2
        label = label_of[id(r)]
        shown = label if text_px(label) + 12 <= label_w else label[: int((label_w - 12) / CHAR_PX) - 1] + "…"
        body.append(_text(label_w - 6, y + 4, shown, "end", "row-label"))
        body.append(f'<line x1="{frame.left}" y1="{y:.1f}" x2="{frame.right}" y2="{y:.1f}" stroke="#f0f0f0"/>')
        if s:
            mean = sum(s) / len(s)
            mx = frame.x(xa, mean)
            body.append(f'<line class="mean" x1="{mx:.1f}" y1="{y - 9:.1f}" x2="{mx:.1f}" y2="{y + 9:.1f}" stroke="#111" '
                        f'stroke-width="2"><title>mean {mean:.2f} t/s over {len(s)} repetitions</title></line>')
        colour = COLOURS[i % len(COLOURS)]
        for k, v in enumerate(s):
            dy = ((k % 3) - 1) * 4  # a small vertical offset so equal values stay visible
            body.append(f'<circle class="sample" cx="{frame.x(xa, v):.1f}" cy="{y + dy:.1f}" r="3" fill="{colour}" '
                        f'fill-opacity="0.75"><title>repetition {k + 1}: {v:.2f} t/s</title></circle>')
    return svg("".join(body), height, f"{test}: tokens per second of every repetition", "samples")


def sample_plots(run) -> list[tuple[str, str]]:
    """(test, plot) for every test of the run, in run order."""
    tests = list(dict.fromkeys(r.test for r in run.rows))
    return [(t, plot_samples(run, t)) for t in tests]
