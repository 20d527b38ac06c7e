"""Every figure derived from an estimated energy says "(est.)" in the HTML report too (issue #10, item 4)."""

from __future__ import annotations

import re

from profiler.analysis import accuracy as acc
from profiler.analysis import scoring
from support.runs import stored_energy_rows


def test_every_figure_derived_from_an_estimate_says_est_in_the_html_scores():
    from profiler.report.html import render_html
    from profiler.results.schema import RunResult

    estimated = scoring.configurations(stored_energy_rows("est", 0.02, energy_measured=False))[0]
    measured = scoring.configurations(stored_energy_rows("meas", 0.03))[0]
    published = acc.AccuracyScore(metric="hellaswag", value_pct=40.0, provenance="published", n_shot=0, source="card")
    scores = [scoring.score(c, "hellaswag", published, 0.3) for c in (estimated, measured)]
    board = scoring.Scoreboard("hellaswag", 0.3, scores, [])
    page = render_html(RunResult("r1", "now", "profiler run", {}), board)
    scores_table = page.split("<h2>Scores</h2>", 1)[1].split("</table>", 1)[0]
    cells = {row.split("</td>")[0].rsplit(">", 1)[-1]: row for row in re.split(r"<tr>", scores_table)[1:]}
    est_row, meas_row = cells["est t2"], cells["meas t2"]
    assert est_row.count("(est.)") == 2  # J/token and tokens/J
    assert "(est.)" not in meas_row


def test_the_quality_plot_tooltip_marks_an_estimated_j_per_token():
    from profiler.report.plots import plot_quality_energy

    estimated = scoring.configurations(stored_energy_rows("est", 0.02, energy_measured=False))[0]
    measured = scoring.configurations(stored_energy_rows("meas", 0.03))[0]
    published = acc.AccuracyScore(metric="hellaswag", value_pct=40.0, provenance="published", n_shot=0, source="card")
    board = scoring.scoreboard([scoring.score(c, "hellaswag", published, 0.3) for c in (estimated, measured)], 0.3)
    titles = dict(t.split(": ", 1) for t in re.findall(r'class="point"[^>]*><title>([^<]*)</title>', plot_quality_energy(board)))
    assert titles["est t2"].startswith("40.0% at 20 mJ/token (est.)"), titles
    assert titles["meas t2"].startswith("40.0% at 30 mJ/token") and "(est.)" not in titles["meas t2"]
    # one configuration alone: the sentence standing in for the plot marks it too
    alone = scoring.scoreboard(board.scores[:1], 0.3)
    assert "(20 mJ (est.))" in plot_quality_energy(alone)
