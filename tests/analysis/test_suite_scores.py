"""Suite scores of a run's rows (profiler/analysis/suites.py): recognised by their shapes, per
model and setting."""

from __future__ import annotations

from profiler.analysis.suites import suite_scores
from profiler.measure.suites import mlperf_client
from profiler.report.suites_text import suite_lines
from support.tests_support import make_row


def _rows(threads: int, skip_last: bool = False, **placement):
    rows = []
    shapes = mlperf_client.SHAPES[:-1] if skip_last else mlperf_client.SHAPES
    for s in shapes:
        rows.append(make_row(model_name="tiny", n_threads=threads, n_prompt=s.n_prompt, n_gen=s.n_gen, test=s.test,
                             random_tokens=True, ttft_ms_samples=[100.0, 110.0, 105.0],
                             itl_ms_samples=[10.0] * s.n_gen + [11.0] * s.n_gen + [10.5] * s.n_gen, **placement))
    return rows


def test_each_setting_with_every_shape_gets_its_score():
    groups = suite_scores(_rows(1) + _rows(2) + _rows(4, skip_last=True))
    assert [(g.score.suite, g.setting.split()[0]) for g in groups] == [("mlperf-client", "t1"), ("mlperf-client", "t2")]
    tps = groups[0].score.headline[1]
    assert tps.value == tps.value and tps.low < 1000 / 10.5 < tps.high
    lines = suite_lines(groups[:1])
    assert "TPS, geometric mean" in lines[2] and "95% CI" in lines[2]
    assert any("not an MLPerf result" in line for line in lines)


def test_each_placement_is_its_own_setting():
    big = dict(cpu_mask="0xf0", cpu_cores="4× Cortex-A76")
    groups = suite_scores(_rows(4) + _rows(4, **big))
    assert [g.setting.split(" on ")[-1] for g in groups if " on " in g.setting] == ["4× Cortex-A76"]
    assert len(groups) == 2


def test_rows_whose_latencies_do_not_split_into_repetitions_are_not_scored():
    rows = _rows(1)
    rows[0].itl_ms_samples = rows[0].itl_ms_samples[:-1]
    assert suite_scores(rows) == []


def test_the_html_report_shows_the_suite_scores_before_its_plots():
    from profiler.report.html import render_html
    from profiler.results.schema import RunResult

    page = render_html(RunResult("r1", "2026-12-03T17:00:00Z", "profiler run --suite mlperf-client", {}, _rows(1)))
    assert "<h2>Suite scores</h2>" in page and page.index("Suite scores") < page.index("<h2>Plots</h2>")
    assert "TTFT, geometric mean" in page
