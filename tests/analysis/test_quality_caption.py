"""The quality-against-energy plot's caption names only what the plot draws: the dashed frontier line
only when the frontier has two or more points, the ring only when the recommended configuration is
on the plot, and no caption at all under the sentence that stands in for a plot."""

from __future__ import annotations

import re

from profiler.analysis import scoring
from profiler.analysis.accuracy import AccuracyScore
from profiler.report import plots
from profiler.report.html import render_html

MIB = 2**20


def board_of(configs) -> scoring.Scoreboard:
    """(name, accuracy %, J/token, decode t/s, peak MiB) per configuration, through the real Pareto marking."""
    scores = []
    for name, acc, j, tps, peak in configs:
        config = scoring.Configuration(key=f"{name} t2", model_name=name, model_file=f"/m/{name}.gguf", quant="Q4_1",
                                       n_params=134_515_008, file_size_bytes=86 * MIB, n_threads=2, runtime="",
                                       decode_tps=tps, prefill_tps=3 * tps, peak_rss_bytes=peak * MIB,
                                       j_per_decode_token=j, energy_measured=True)
        score = AccuracyScore(metric="hellaswag", value_pct=acc, provenance="measured", n_shot=0, source="test",
                              n_tasks=10042)
        scores.append(scoring.score(config, "hellaswag", score, 0.30))
    return scoring.scoreboard(scores, 0.30)


# a trade-off: the more accurate model costs more energy, so both are on the frontier
TRADE_OFF = [("small", 35.0, 0.05, 120.0, 150), ("big", 60.0, 0.20, 40.0, 600), ("worse", 34.0, 0.30, 30.0, 700)]
# one configuration better on every objective: the frontier is that single point
ONE_BEST = [("best", 60.0, 0.05, 120.0, 150), ("slow", 40.0, 0.10, 60.0, 300), ("slower", 35.0, 0.20, 30.0, 600)]


def caption_of(page: str) -> str:
    svg_end = page.index('data-plot="quality"')
    return re.search(r"<figcaption>([^<]*)</figcaption>", page[svg_end:]).group(1)


def test_a_frontier_of_several_points_is_a_dashed_line_and_the_caption_says_so():
    board = board_of(TRADE_OFF)
    assert [s.on_frontier for s in board.scores] == [True, True, False]
    svg = plots.plot_quality_energy(board, "big t2")
    assert 'class="frontier"' in svg
    caption = plots.quality_energy_caption(board, "big t2")
    assert "dashed line" in caption and "ringed point is the recommended configuration" in caption
    assert "accuracy, J/token, peak memory, decode t/s" in caption


def test_a_single_point_frontier_has_no_line_and_the_caption_does_not_mention_one():
    board = board_of(ONE_BEST)
    assert [s.on_frontier for s in board.scores] == [True, False, False]
    svg = plots.plot_quality_energy(board, "best t2")
    assert 'class="frontier"' not in svg and "stroke-dasharray" not in svg
    assert ">recommended: best Q4_1 t2, the Pareto frontier<" in svg  # one label, not two competing for room
    other = plots.plot_quality_energy(board, "slow t2")  # recommended elsewhere: the frontier point has its own
    assert ">Pareto frontier (one point)<" in other and ">recommended: slow Q4_1 t2<" in other
    page = render_html_with(board)
    caption = caption_of(page)
    assert "dashed" not in caption and "line" in caption  # it says that no frontier line is drawn
    assert "best t2, is the only point on the Pareto frontier" in caption
    assert "ringed point is the recommended configuration" in caption and 'class="recommended"' in page


def test_a_recommendation_that_is_not_drawn_is_not_called_ringed():
    board = board_of(TRADE_OFF)
    caption = plots.quality_energy_caption(board, "elsewhere t2")
    assert "ringed" not in caption and "elsewhere t2, is not drawn" in caption
    assert 'class="recommended"' not in plots.plot_quality_energy(board, "elsewhere t2")


def test_a_sentence_instead_of_the_plot_gets_no_caption():
    board = board_of(ONE_BEST[:1])
    page = render_html_with(board)
    assert "No quality plot: only best t2" in page
    assert plots.quality_energy_caption(board, "best t2") == ""
    assert "Quality against J/token" not in page and "Pareto frontier" not in page.split("<h2>Plots</h2>")[1]


def render_html_with(board) -> str:
    from support.runs import sweep_run

    return render_html(sweep_run(), board)
