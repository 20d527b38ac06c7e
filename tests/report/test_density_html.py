"""The HTML density plot follows the report's plot rules (issue 14.2): round ticks on a log ρ axis and
on month starts, "better:" at the top, one labelled point per (release date, ρ) so a model at two
thread counts does not print two labels on top of each other, a legend that cannot overlap, a
caption that names only what is drawn, and a sentence when there is nothing to compare over time.
The browser check of the same plot is in test_html_plots.py."""

from __future__ import annotations

import datetime as dt
import math
import re

from profiler.analysis import density_io
from profiler.report import plots
from profiler.report.html_density import date_axis, plot_trend, render
from support.axes import is_round
from support.density_fixtures import DATED, dated_density_report
from support.runs import sweep_run


def texts(svg: str, cls: str) -> list[str]:
    return re.findall(rf'class="{cls}"[^>]*>([^<]*)<', svg)


def test_density_plot_has_round_ticks_that_cover_the_data_and_says_which_way_is_better():
    report = dated_density_report()
    svg = plot_trend(report)
    assert 'data-plot="density"' in svg and "better: up" in svg
    rhos = [r["rho"] for r in report["configurations"]]
    y_ticks = [float(t) for t in texts(svg, "tick-y")]
    assert all(is_round(t) for t in y_ticks) and min(y_ticks) <= min(rhos) and max(y_ticks) >= max(rhos)
    months = sorted(dt.date.fromisoformat(t + "-01") for t in texts(svg, "tick-x"))
    assert months[0] <= dt.date(2024, 9, 19) and months[-1] >= dt.date(2025, 8, 14)
    assert len(months) >= 3 and len({(b.year - a.year) * 12 + b.month - a.month for a, b in zip(months, months[1:], strict=False)}) == 1


def test_one_point_and_one_label_per_release_date_and_rho():
    svg = plot_trend(dated_density_report())
    assert svg.count('<circle class="point"') == 3  # six configurations, three (date, ρ)
    assert sorted(texts(svg, "label")) == sorted(f"{name} t1, t2" for name, _, _ in DATED)


def test_placed_labels_keep_apart_from_each_other_and_the_legend():
    """By the plots' own text-size estimate (the browser test checks the real fonts)."""
    svg = plot_trend(dated_density_report())
    boxes = []
    for x, y, anchor, text in re.findall(r'<text x="([\d.]+)" y="([\d.]+)" text-anchor="(\w+)"[^>]*>([^<]*)<', svg):
        w = plots.text_px(text)
        x0 = float(x) - (w if anchor == "end" else w / 2 if anchor == "middle" else 0)
        boxes.append((x0, float(y) - plots.FONT_PX, x0 + w, float(y) + 3, text))
    legend = [b for b in boxes if b[4].startswith("doubling every") or b[4].startswith("fitted trend")]
    assert len(legend) == 3
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert min(a[2], b[2]) <= max(a[0], b[0]) or min(a[3], b[3]) <= max(a[1], b[1]), (a, b)


def test_a_single_release_date_is_a_sentence_not_a_plot():
    """The real case: one model (profiled at two thread counts) on the default catalogue."""
    run = sweep_run()
    page = render(density_io.report_for_run(run).to_dict())
    assert "<svg" not in page and "<figcaption" not in page  # no caption describing lines that are not drawn
    sentence = re.search(r'<p class="noplot">([^<]*)</p>', page).group(1)
    assert "released on 2024-11-01" in sentence and "smollm2-135m-instruct-q4_1 t1, t2" in sentence
    assert "nothing to compare over time" in sentence


def test_no_dated_configuration_is_a_sentence():
    page = plot_trend({"configurations": [{"key": "a", "rho": 1.0, "released": None}], "trend": None})
    assert page.startswith('<p class="noplot">') and "no configuration has both ρ and a release date" in page


def test_caption_names_the_trend_only_when_it_is_drawn():
    with_trend = render(dated_density_report())
    assert 'class="trend"' in with_trend and "the fitted trend (solid line) and its 95% band" in with_trend
    two_dates = render(dated_density_report(DATED[:2]))
    assert "<svg" in two_dates and 'class="trend"' not in two_dates and 'class="band"' not in two_dates
    assert "no fitted trend line" in two_dates and "fitted trend, 95% band" not in two_dates  # legend agrees


def test_date_axis_ends_on_month_starts_outside_the_data():
    for first, last in [("2024-11-01", "2024-11-20"), ("2024-09-19", "2025-08-14"), ("2019-03-05", "2026-01-01")]:
        a, b = dt.date.fromisoformat(first).toordinal(), dt.date.fromisoformat(last).toordinal()
        axis = date_axis(a, b)
        ticks = [dt.date.fromordinal(int(t)) for t in axis.ticks]
        assert all(t.day == 1 for t in ticks) and 2 <= len(ticks) <= 6
        assert axis.lo < a and axis.hi > b and axis.ticks[0] == axis.lo and axis.ticks[-1] == axis.hi
        assert math.isclose(axis.frac(axis.lo), 0) and math.isclose(axis.frac(axis.hi), 1)
