"""Suite scores as text (``profiler run --suite``): the headline figures with their 95% intervals,
then one line per shape. Plain lines, so the terminal, markdown and HTML pages can all show them."""

from __future__ import annotations

import html

from profiler.analysis.suites import GroupScore
from profiler.measure.suites import SUITES, Figure


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def figure_text(f: Figure) -> str:
    """e.g. "LocalScore 412.3 (95% CI 398.1-427.0)"; an interval that is missing says why."""
    unit = f" {f.unit}" if f.unit else ""
    if f.interval is not None:
        ci = f"95% CI {_num(f.interval.low)}-{_num(f.interval.high)}{unit}"
    else:
        ci = f"no interval: {f.unavailable or 'unavailable'}"
    return f"{f.name} {_num(f.value)}{unit} ({ci})"


def _shape_line(suite: str, shape: dict) -> str:
    if suite == "localscore":
        return (f"  {shape['test']:<15} {shape['label']:<34} pp {_num(shape['prompt_tps'])} t/s, "
                f"tg {_num(shape['gen_tps'])} t/s, TTFT {_num(shape['ttft_ms'])} ms")
    return f"  {shape['test']:<15} {shape['label']:<25} {figure_text(shape['ttft'])}; {figure_text(shape['tps'])}"


def suite_lines(groups: list[GroupScore]) -> list[str]:
    lines: list[str] = []
    for g in groups:
        suite = SUITES[g.score.suite]
        where = f" on {g.device_name}" if g.device_name else ""
        lines.append(f"{suite.title}: {g.model_name}{where} ({g.setting}, {g.score.repetitions} repetitions per test"
                     + ("" if g.random_tokens else ", real-text tokens: the original uses random ids") + ")")
        lines += [f"  {figure_text(f)}" for f in g.score.headline]
        lines += [_shape_line(g.score.suite, s) for s in g.score.per_shape]
        lines += [f"  note: {n}" for n in g.score.notes]
        lines.append(f"  shapes and formula: {suite.source}")
    return lines


def suite_html(groups: list[GroupScore]) -> str:
    """The HTML report's section: the same lines, preformatted; empty when no suite is complete."""
    if not groups:
        return ""
    return "<h2>Suite scores</h2><pre>" + html.escape("\n".join(suite_lines(groups))) + "</pre>"
