"""Battery life in the closing line and results.json (issue #22.2): shown where a battery exists,
nothing more printed without one, and the JSON says why."""

from __future__ import annotations

import io

from rich.console import Console

from profiler.report.console import print_results
from profiler.report.writers import run_json
from profiler.results.schema import RunResult
from support.battery import capacity, laptop_rows


def _run(battery: dict | None) -> RunResult:
    device = {"cpu_model": "Intel Core i7-7700HQ", "physical_cores": 4, "logical_cores": 8, "isa": []}
    if battery is not None:
        device["battery"] = battery
    return RunResult("20261203-170000-abcd", "2026-12-03T17:00:00", "profiler run", device, laptop_rows())


def _printed(run: RunResult, **kw) -> str:
    buffer = io.StringIO()
    print_results(run, Console(file=buffer, width=250, force_terminal=False), **kw)
    return " ".join(buffer.getvalue().split())


def test_the_closing_line_carries_answers_per_charge_and_hours_with_intervals():
    text = _printed(_run(capacity(50.0).to_dict()))
    # 50 Wh over 10.24 + 128 J per answer: 1302 answers, interval from the phases' ±4% and ±6%
    assert "1,302 answers/charge (1,233-1,379) of 512+256 tokens, 10 h generation (9.43-10.6)" in text
    assert "battery: 50 Wh, full (today's, worn); BAT0: energy_full (µWh), design 55 Wh" in text


def test_the_answer_shape_is_the_users():
    text = _printed(_run(capacity(50.0).to_dict()), answer=(0, 100))
    assert "3,600 answers/charge" in text and "of 0+100 tokens" in text


def test_an_estimate_is_marked():
    run = _run(capacity(50.0).to_dict())
    for row in run.rows:
        row.energy_measured = False
    text = _printed(run)
    assert "answers/charge of 512+256 tokens (est.)" in text and "h generation (est.)" in text


def test_without_a_battery_nothing_more_is_printed_and_the_json_says_why():
    run = _run({"capacity_wh": None, "packs": [], "unavailable": "no battery"})
    text = _printed(run)
    assert "answers/charge" not in text and "battery" not in text
    data = run_json(run)["battery_life"]
    assert data["unavailable"] == "unavailable, because no battery" and data["models"] == []


def test_the_json_has_each_models_battery_life():
    data = run_json(_run(capacity(50.0).to_dict()), (512, 256))["battery_life"]
    model = data["models"][0]
    assert model["answers_per_charge"] > 1000 and model["answers_per_charge_ci95"][0] < model["answers_per_charge"]
    assert model["generation_hours"] == 10.0 and model["measured"] is True and "tg128" in model["provenance"]
    assert data["capacity"]["capacity_wh"] == 50.0


def test_the_html_report_has_a_battery_section_only_with_a_battery():
    from profiler.report.html import render_html

    page = render_html(_run(capacity(50.0).to_dict()))
    assert "<h2>Battery life</h2>" in page and "1,302 (1,233-1,379)" in page and "10 (9.43-10.6)" in page
    assert "Battery life" not in render_html(_run({"packs": [], "unavailable": "no battery"}))


def test_the_saved_files_and_the_html_take_the_users_answer_shape(tmp_path):
    import json

    from profiler.report.html import render_html
    from profiler.report.writers import save_run

    run = _run(capacity(50.0).to_dict())
    folder = save_run(run, tmp_path, answer=(0, 100))
    saved = json.loads((folder / "results.json").read_text())["battery_life"]
    assert saved["models"][0]["answers_per_charge"] == 3600
    page = render_html(run, answer=(0, 100))
    assert "answers of a 0-token prompt, 100-token answer" in page and "3,600" in page
