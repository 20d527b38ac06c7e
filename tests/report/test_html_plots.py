"""Plots people trust (issue 14.2): honest axes, round ticks, sentences instead of empty plots, and a
real headless Chromium at 1300 and 390 px: no horizontal scroll, no overlapping text, ticks that
match the data."""

from __future__ import annotations

import copy
import html
import json
import math
import re
import shutil
import subprocess
import sys

import pytest

from profiler.report import plots
from profiler.report.html import render_html
from profiler.report.html_density import density_section
from support.axes import is_round
from support.density_fixtures import dated_density_report
from support.runs import sweep_run, three_config_scoreboard

# ----------------------------------------------------------------------------- axes and ticks


@pytest.mark.parametrize("values", [[0.84, 3.2], [95.0, 190.0], [0.0011, 0.0013], [38.7, 41.2], [1234.0, 98765.0], [5.0, 5.0]])
def test_linear_ticks_are_round_and_cover_the_data(values):
    axis = plots.linear_axis(values)
    steps = {round(b - a, 12) for a, b in zip(axis.ticks, axis.ticks[1:], strict=False)}
    assert len(steps) == 1 and is_round(steps.pop())
    assert axis.ticks[0] <= min(values) and axis.ticks[-1] >= max(values)
    assert axis.ticks[0] >= 0  # non-negative data never gets a negative axis
    assert 3 <= len(axis.ticks) <= 8


def test_bars_start_at_zero_and_small_values_never_go_negative():
    assert plots.linear_axis([61.0, 123.0], zero=True).ticks[0] == 0
    axis = plots.linear_axis([0.05, 1.3])  # the old J/token axis ran from -1.1 to 1.3
    assert axis.lo == 0 and axis.hi >= 1.3


def test_log_axis_when_values_span_more_than_thirty_times():
    assert not plots.auto_axis([10.0, 250.0]).log
    axis = plots.auto_axis([2.0, 900.0])
    assert axis.log and axis.ticks[0] <= 2.0 and axis.ticks[-1] >= 900.0
    assert all(is_round(t) for t in axis.ticks)
    assert not plots.auto_axis([2.0, 900.0], zero=True).log  # bars stay linear from zero


def test_tick_labels_are_as_short_as_the_step_allows():
    axis = plots.linear_axis([0.0, 1.0])
    assert [axis.label(t) for t in axis.ticks] == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert plots.linear_axis([0.0, 40000.0]).label(20000.0) == "20k"


def test_an_axis_always_labels_both_of_its_ends():
    """Crowded labels are skipped from the middle, never at the ends (a log axis of a 1000x spread)."""
    run = sweep_run()
    run.rows = [r for r in run.rows if r.test == "pp512"]
    run.rows[0].samples_ts = [110.0, 45229.0, 101713.9]  # one repetition disturbed: a 900x spread
    svg = plots.plot_samples(run, "pp512")
    labels = re.findall(r'class="tick-x">([^<]*)<', svg)
    assert "log scale" in svg and labels[0] == "100" and labels[1] == "200k"


# ----------------------------------------------------------------------------- what the page says


def one_model_run():
    run = sweep_run()
    run.rows = [r for r in run.rows if r.n_threads == 2 and r.model_name.startswith("smollm2")]
    return run


def test_plots_with_nothing_to_compare_become_sentences():
    page = render_html(one_model_run(), None)
    sentences = re.findall(r'<p class="noplot">(.*?)</p>', page)
    assert any("every test ran at 2 thread(s)" in s for s in sentences)
    assert any("only one model file" in s and "246 t/s" in s for s in sentences)
    assert any("no scoreboard" in s for s in sentences)
    assert 'data-plot="threads"' not in page and 'data-plot="ladder"' not in page
    assert page.count('data-plot="samples"') == 2  # the spread of every test still has something to show


def test_every_plot_says_which_way_is_better_and_the_quality_plot_names_frontier_and_recommendation():
    page = render_html(sweep_run(), three_config_scoreboard())
    n_plots = page.count('<svg')
    assert n_plots == 5  # quality, threads, ladder and one spread plot per test (pp512, tg128)
    assert page.count('class="better"') == n_plots
    assert "better: up and left" in page
    assert 'class="label frontier-label"' in page and ">Pareto frontier<" in page
    assert "recommended: gemma-3-270m Q4_K_M t2" in page  # the most accurate, as profiler score recommends
    assert page.count('class="sample"') == sum(len(r.samples_ts) for r in sweep_run().rows)


def test_page_leaves_room_for_other_sections():
    page = render_html(sweep_run(), None, sections=["<h2>Density</h2><p>three families</p>"])
    assert page.index("<h2>Density</h2>") < page.index("<h2>Plots</h2>")


# ----------------------------------------------------------------------------- in a real browser

MEASURE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
// a plot without data-plot is still measured, named by its title (the density plot once had none)
const kindOf = svg => ((svg.querySelector('title') || {}).textContent || '').startsWith('relative density') ? 'density' : '';
const out = { scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
  plots: [...document.querySelectorAll('svg.plot')].map(svg => ({ kind: svg.dataset.plot || kindOf(svg), box: box(svg),
    texts: [...svg.querySelectorAll('text')].map(t => ({ text: t.textContent, cls: t.getAttribute('class') || '', box: box(t) })) })) };
parent.document.getElementById('measure').textContent = JSON.stringify(out);
</script>"""


def measure_in_chromium(page_html: str, width: int, tmp_path) -> dict:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); CI installs it")
    # Headless Chromium will not make a window narrower than 500 px, so the page is laid out in an
    # iframe of exactly ``width`` (tall enough never to need a scrollbar); the measuring script is
    # the test's, not the report's, and writes its findings into the outer page, which is dumped.
    inner = page_html.replace("</body>", MEASURE + "</body>")
    page = tmp_path / f"page-{width}.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0"><pre id="measure"></pre><iframe style="width:{width}px;'
                    f'height:20000px;border:0" srcdoc="{html.escape(inner, quote=True)}"></iframe></body></html>')
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / f'profile-{width}'}",
         f"--window-size={width + 100},1000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    found = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, re.S)
    assert found and found.group(1), done.stderr[-2000:]
    return json.loads(html.unescape(found.group(1)))


def overlaps(a, b, tolerance: float = 0.5) -> bool:
    return (min(a[2], b[2]) - max(a[0], b[0]) > tolerance) and (min(a[3], b[3]) - max(a[1], b[1]) > tolerance)


def numbers(texts, cls: str) -> list[float]:
    def value(text: str) -> float:
        return float(text[:-1]) * 1e3 if text.endswith("k") else float(text)

    return sorted(value(t["text"]) for t in texts if t["cls"] == cls)


def check_ticks(plot: dict, run, board, density: dict | None = None) -> None:
    """The tick values match the data: they cover it, stay non-negative and step by round numbers."""
    texts = plot["texts"]
    kind = plot["kind"]
    if kind == "density":
        check_density_ticks(texts, density)
        return
    if kind == "threads":
        assert numbers(texts, "tick-x") == sorted({r.n_threads for r in run.rows})
        data, ticks = [r.avg_ts for r in run.rows], numbers(texts, "tick-y")
    elif kind == "ladder":
        data, ticks = [r.decode_ts for r in run.rows if r.decode_ts], numbers(texts, "tick-x")
        assert ticks[0] == 0  # bars from zero
    elif kind == "samples":
        test = next(t["text"] for t in texts if t["cls"] == "axis-label").split()[0]
        data, ticks = [s for r in run.rows if r.test == test for s in r.samples_ts], numbers(texts, "tick-x")
    else:
        scores = [s for s in board.scores if s.accuracy_pct is not None and s.config.j_per_decode_token]
        factor, _ = plots.unit_for_joules([s.config.j_per_decode_token for s in scores])
        check_range([s.config.j_per_decode_token / factor for s in scores], numbers(texts, "tick-x"), kind)
        data, ticks = [s.accuracy_pct for s in scores], numbers(texts, "tick-y")
    check_range(data, ticks, kind)


def check_density_ticks(texts, report: dict) -> None:
    """ρ on round log ticks around the data; month ticks (YYYY-MM) around the release dates."""
    placed = [r for r in report["configurations"] if r.get("rho") and r.get("released")]
    check_range([r["rho"] for r in placed], numbers(texts, "tick-y"), "density")
    months = sorted(t["text"] for t in texts if t["cls"] == "tick-x")
    assert months[0] <= min(r["released"] for r in placed)[:7] and months[-1] >= max(r["released"] for r in placed)[:7]


def check_range(data: list[float], ticks: list[float], kind: str) -> None:
    assert len(ticks) >= 2, (kind, ticks)
    assert min(ticks) >= 0, (kind, ticks)  # every plotted quantity is non-negative
    assert min(ticks) <= min(data) and max(ticks) >= max(data), (kind, ticks, data)
    steps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    linear = all(math.isclose(s, steps[0], rel_tol=1e-6) for s in steps) and is_round(steps[0])
    if linear:  # not a range the data never nears
        assert max(ticks) - min(ticks) <= 3 * max(max(data) - min(data), max(data) * 0.5), (kind, ticks, data)
    else:  # logarithmic: round ticks, ends within a few times the data's own ends
        assert all(is_round(t) for t in ticks) and min(ticks) > 0, (kind, ticks)
        assert max(ticks) <= 5 * max(data) and min(ticks) >= min(data) / 5, (kind, ticks, data)


def steady(run):
    """Fixed decode rates, so what the browser shows does not depend on this machine's speed."""
    steady_run = copy.deepcopy(run)
    for r in steady_run.rows:
        if r.decode_ts:
            r.decode_ts = 100.0 if "smollm2" in r.model_name else 80.0
    return steady_run


def far_apart(run, board):
    """The second model 60x slower and 60x hungrier, so the rate and energy axes turn logarithmic."""
    for r in run.rows:
        if "gemma" in r.model_name:
            r.avg_ts, r.samples_ts = r.avg_ts / 60, [s / 60 for s in r.samples_ts]
    board.scores[-1].config.j_per_decode_token *= 60
    return run, board


@pytest.mark.browser
@pytest.mark.parametrize("width, log", [(1300, False), (390, False), (390, True)])
def test_in_chromium_no_scroll_no_overlap_and_ticks_match_the_data(width, log, tmp_path):
    run, board = steady(sweep_run()), three_config_scoreboard()
    run.rows[0].model_name = "a-model-with-a-name-long-enough-to-push-a-phone-screen-sideways-q4_1"
    if log:
        run, board = far_apart(run, board)
    density = dated_density_report()  # a model at two thread counts: two configurations on one point
    page = render_html(run, board, sections=[density_section(run, density)])
    assert ("log scale" in page.split("<h2>Plots</h2>")[1]) == log
    got = measure_in_chromium(page, width, tmp_path)
    assert got["clientWidth"] == width
    assert got["scrollWidth"] <= got["clientWidth"], got["scrollWidth"]
    for plot in got["plots"]:
        texts = plot["texts"]
        for i, a in enumerate(texts):
            assert plot["box"][0] - 0.5 <= a["box"][0] and a["box"][2] <= plot["box"][2] + 0.5, (plot["kind"], a)
            for b in texts[i + 1:]:
                assert not overlaps(a["box"], b["box"]), (plot["kind"], a, b)
        check_ticks(plot, run, board, density)
    assert {p["kind"] for p in got["plots"]} == {"quality", "threads", "ladder", "samples", "density"}


@pytest.mark.browser
def test_in_chromium_one_model_run_shows_sentences_and_fits_a_phone(tmp_path):
    """Its density section (the default catalogue: one release date) is a sentence too, not a plot."""
    run = one_model_run()
    got = measure_in_chromium(render_html(run, None, sections=[density_section(run)]), 390, tmp_path)
    assert got["clientWidth"] == 390 and got["scrollWidth"] <= 390
    assert [p["kind"] for p in got["plots"]] == ["samples", "samples"]
    for plot in got["plots"]:
        check_ticks(plot, run, None)


@pytest.mark.browser
def test_the_report_command_page_with_every_section_fits_a_phone(tiny_gguf, tmp_path):
    """`profiler report` on a stored run, other sections (density) included: still no horizontal
    scroll at 390 px, and our plots keep their labels apart and their ticks on the data."""
    from profiler.results.schema import load_run

    reports = tmp_path / "reports"
    run_args = [sys.executable, "-m", "profiler", "run", str(tiny_gguf), "-p", "16", "-n", "4", "-t", "1,2", "-r", "3",
                "--no-bandwidth", "--idle", "0", "--no-score", "--reports-dir", str(reports)]
    done = subprocess.run(run_args, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr
    (folder,) = [p for p in reports.iterdir() if p.is_dir()]
    page = tmp_path / "page.html"
    done = subprocess.run([sys.executable, "-m", "profiler", "report", folder.name, "--html", str(page), "--reports-dir",
                           str(reports)], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    run = load_run(folder / "results.json")
    for width in (390, 1300):
        got = measure_in_chromium(page.read_text(), width, tmp_path)
        assert got["clientWidth"] == width and got["scrollWidth"] <= width
        ours = [p for p in got["plots"] if p.get("kind")]
        assert {p["kind"] for p in ours} >= {"threads", "samples"}
        for plot in ours:
            texts = plot["texts"]
            assert not any(overlaps(a["box"], b["box"]) for i, a in enumerate(texts) for b in texts[i + 1:]), plot["kind"]
            if plot["kind"] == "density":  # the report the page drew: the default family's for this run
                from profiler.analysis import density_io

                check_ticks(plot, run, None, density_io.report_for_run(run).to_dict())
            elif plot["kind"] != "quality":
                check_ticks(plot, run, None)
