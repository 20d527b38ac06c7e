"""Placement in the results views: the console's cores column, llama-bench's cpu_mask column in
Markdown and the HTML table's threads cell appear only when some test was placed."""

from __future__ import annotations

from profiler.report import render, terminal_views
from profiler.report.html import render_html
from profiler.results.schema import RunResult
from support.tests_support import make_row


def _run(placed: bool) -> RunResult:
    where = dict(cpu_mask="0xf0", cpu_affinity=[4, 5, 6, 7], cpu_cores="4× Cortex-A76") if placed else \
        dict(cpu_mask="0x0", cpu_affinity=[0, 1], cpu_cores="2× Xeon")
    rows = [make_row(n_threads=4, **where), make_row(n_threads=4, test="tg16", n_prompt=0, n_gen=16, **where)]
    return RunResult(run_id="r", created="2026-12-03T00:00:00+00:00", command="profiler run", device={}, rows=rows)


def test_console_shows_the_cores_column_only_for_placed_tests():
    columns = {c.header: c for c in terminal_views.run_columns(_run(True).rows)}
    assert columns["cores"].core and columns["threads"].core
    assert columns["cores"].cell(_run(True).rows[0]) == "4-7 (4× Cortex-A76)"
    assert not {c.header: c for c in terminal_views.run_columns(_run(False).rows)}["cores"].core


def test_markdown_has_llama_bench_cpu_mask_column_only_when_placed():
    header = render(_run(True), "md").splitlines()[0]
    assert "| threads | cpu_mask | CPUs | test |" in header
    assert "| 4 | 0xf0 | 4-7 | pp64 |" in render(_run(True), "md")
    assert "cpu_mask" not in render(_run(False), "md").splitlines()[0]


def test_html_names_the_cores_beside_the_threads():
    page = render_html(_run(True))
    assert "threads on cores" in page and "4 on CPUs 4-7 (4× Cortex-A76)" in page
    assert "threads on cores" not in render_html(_run(False))
