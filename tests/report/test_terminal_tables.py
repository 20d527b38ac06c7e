"""Terminal tables that fit (issue 14.1): 80, 100 and 200 columns, no wrapped row, readable numbers."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from profiler.report import terminal, terminal_views
from profiler.report.console import print_results
from profiler.report.quality_text import print_scoreboard
from profiler.results.compare import Comparison
from profiler.results.schema import RunResult
from profiler.results.store import Store
from support.runs import MIB, sweep_run, three_config_scoreboard

WIDTHS = (80, 100, 200)


def render(printer, width: int) -> str:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    printer(console)
    return console.export_text()


RULE = set("─━═┄╌-├┤┼┝┥┿╞╡╪ ")


def table_body(text: str, first_header: str) -> tuple[list[str], list[str]]:
    """(header lines, body lines) of the table whose first column is ``first_header``: the body runs
    from the rule under the header to the bottom border or the first blank line."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip("│ ").startswith(first_header))
    rule = next(i for i in range(start, len(lines)) if lines[i].strip() and set(lines[i]) <= RULE)
    body = []
    for line in lines[rule + 1:]:
        if not line.strip() or line.startswith("╰"):
            break
        body.append(line)
    return lines[start:rule], body


def assert_fits(text: str, width: int, n_rows: int, first_header: str = "model") -> None:
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(line for line in lines if len(line) > width)
    _, body = table_body(text, first_header)
    assert len(body) == n_rows, text  # one line per row: no row wrapped


def shown(columns, rows, width: int, wide: bool = False) -> list[str]:
    return [c.header for c in terminal.layout(columns, rows, width, wide).shown]


def table_lines(text: str, first_header: str = "model") -> list[str]:
    return table_body(text, first_header)[1]


# ----------------------------------------------------------------------------- numbers


@pytest.mark.parametrize("value, text", [(193.38, "193"), (12.345, "12.3"), (1.2345, "1.23"), (0.012345, "0.0123"),
                                         (99.96, "100"), (1234.5, "1234"), (0.0, "0")])
def test_rates_get_three_significant_digits(value, text):
    assert terminal.sig3(value) == text


def test_spread_is_written_at_the_precision_of_the_mean():
    assert terminal.rate_pm(193.38, 13.65) == "193 ± 14"
    assert terminal.rate_pm(12.34, 0.4123) == "12.3 ± 0.4"
    assert terminal.rate_pm(1234.0, 0.02) == "1234 ± 0.02"  # never a silent zero spread


def test_units_follow_the_magnitude():
    assert terminal.size(196.4 * MIB) == "196 MiB" and terminal.size(1.5 * 2**30) == "1.50 GiB"
    assert terminal.size(512) == "512 B"
    assert terminal.seconds(0.02654) == "26.5 ms" and terminal.seconds(2.5) == "2.50 s"
    assert terminal.seconds(0.0000123) == "12.3 µs"
    assert terminal.joules(0.0951) == "95.1 mJ" and terminal.joules(1.5) == "1.50 J"


def test_short_model_names_are_readable_and_stay_distinct():
    names = terminal.short_model_names([("smollm2-135m-instruct-q4_1", "Q4_1"), ("gemma-3-270m-it-q4_k_m", "Q4_K_M"),
                                        ("/models/tiny.gguf", "F32"), ("qwen/model.onnx", "int4")])
    assert list(names.values()) == ["smollm2-135m Q4_1", "gemma-3-270m Q4_K_M", "tiny F32", "qwen int4"]
    clash = terminal.short_model_names([("smollm2-135m-q4_1", "Q4_1"), ("smollm2-135m-instruct-q4_1", "Q4_1")])
    assert len(set(clash.values())) == 2  # dropping "-instruct" would merge them, so it stays


def test_device_names_lose_trademarks_and_clocks():
    assert terminal.short_device({"cpu_model": "Intel(R) Core(TM) i7-8650U CPU @ 1.90GHz"}) == "Intel Core i7-8650U"
    assert terminal.short_device({"cpu_model": "AMD EPYC 7B13 64-Core Processor"}) == "AMD EPYC 7B13"
    assert terminal.short_device({"board": "Raspberry Pi 5 Model B Rev 1.0", "cpu_model": "Cortex-A76"}) == "Raspberry Pi 5 Model B"


# ----------------------------------------------------------------------------- the run table


@pytest.mark.parametrize("width", WIDTHS)
def test_run_table_fits_and_keeps_the_deciding_columns(width):
    run = sweep_run()
    text = render(lambda c: print_results(run, c), width)
    assert_fits(text, width, len(run.rows))
    cols = shown(terminal_views.run_columns(run.rows), run.rows, width)
    for name in ("model", "threads", "test", "t/s", "TTFT", "model mem", "J/token (est.)"):
        assert name in cols, (name, cols)
    assert "smollm2-135m Q4_1" in text and "gemma-3-270m Q4_K_M" in text  # readable names, not "smoll…"
    assert "304 ± 22" in text and "26.5 ms" in text and "148 MiB" in text and "4.12 mJ" in text
    # n/a on every row: dropped, with one line saying which and why
    flat = " ".join(text.split())
    assert "not shown, n/a on every row:" in flat
    assert "bw frac: probe skipped (--no-bandwidth)" in flat
    assert "max °C / clk: no temperature or clock readings on this device" in flat
    assert "n/a °C" not in text


def test_a_wider_terminal_adds_columns_and_wide_adds_all():
    run = sweep_run()
    columns = terminal_views.run_columns(run.rows)
    assert len(shown(columns, run.rows, 200)) > len(shown(columns, run.rows, 80))
    assert "more column(s) with --wide" in render(lambda c: print_results(run, c), 80)
    wide = render(lambda c: print_results(run, c, wide=True), 80)
    assert len(table_lines(wide)) == len(run.rows)  # longer lines, still one per row
    assert all(name in wide for name in ("ITL p50/90/99", "load", "file", "PSS"))
    assert "more column(s)" not in wide


def test_closing_line_per_model_can_be_quoted():
    run = sweep_run()
    text = " ".join(render(lambda c: print_results(run, c), 200).split())
    assert ("smollm2-135m Q4_1 on AMD EPYC 7B13 (2 threads): 607 t/s prompt, 246 t/s generation, 148 MiB model peak (196 MiB process), "
            "95.1 mJ/token (est.)") in text
    assert "gemma-3-270m Q4_K_M on AMD EPYC 7B13 (2 threads):" in text


def test_the_closing_lines_generation_rate_is_the_tables_for_a_tg_test():
    """tg128's avg_ts (the table's t/s) and decode_ts (after the first token, choosing included)
    differ on a tiny model; the quotable line must repeat the number the table shows."""
    run = sweep_run()
    for row in run.rows:
        if row.decode_ts is not None:
            row.decode_ts = row.avg_ts * 0.8
    text = " ".join(render(lambda c: print_results(run, c), 200).split())
    assert "607 t/s prompt, 246 t/s generation" in text


def test_measured_energy_carries_no_estimate_mark_and_mixed_rows_mark_each_estimate():
    run = sweep_run()
    run.rows[0].energy_measured = True
    text = render(lambda c: print_results(run, c), 100)
    cols = shown(terminal_views.run_columns(run.rows), run.rows, 100)
    assert "J/token" in cols and "J/token (est.)" not in cols
    assert text.count("(est.)") >= len(run.rows) - 1
    measured_line = next(line for line in table_lines(text) if "4.12 mJ" in line and "(est.)" not in line)
    assert "smollm2" in measured_line


def test_long_names_are_cut_with_an_ellipsis_only_when_nothing_else_fits():
    run = sweep_run()
    for r in run.rows:
        r.model_name = "a-very-long-model-name-that-nobody-could-read-in-a-terminal-" + r.model_name
    text = render(lambda c: print_results(run, c), 80)
    assert_fits(text, 80, len(run.rows))
    assert "…" in text
    assert "a-very-long-model-name-that-nobody-could-read-in-a-terminal-smollm2-135m Q4_1" in render(
        lambda c: print_results(run, c), 200)


def test_thermal_column_appears_when_any_row_has_a_reading():
    run = sweep_run()
    run.rows[0].temp_max_c, run.rows[0].freq_ratio, run.rows[0].throttled = 61.2, 0.92, True
    text = render(lambda c: print_results(run, c, wide=True), 100)
    assert "61 °C, 92% clk, THROTTLED" in text and "n/a °C" not in text  # rows without readings: a plain n/a
    assert "max °C / clk:" not in " ".join(text.split())  # not dropped: one row has a reading


def test_an_empty_run_says_so_instead_of_drawing_an_empty_frame():
    text = render(lambda c: print_results(RunResult("r", "now", "profiler run", {}, []), c), 80)
    assert "no rows" in text and "╭" not in text and "more column(s)" not in text


# ----------------------------------------------------------------------------- scoreboard, compare, history


@pytest.mark.parametrize("width", WIDTHS)
def test_scoreboard_fits_and_marks_every_estimate(width):
    board = three_config_scoreboard()
    text = render(lambda c: print_scoreboard(board, c), width)
    assert_fits(text, width, len(board.scores), "configuration")
    cols = shown(terminal_views.scoreboard_columns(board), board.scores, width)
    assert {"configuration", "decode t/s", "J/1k tok (est.)", "hellaswag %", "Pareto"} <= set(cols)
    assert "smollm2-135m Q4_1 t2" in text and "smollm2-135m Q8_0 t2" in text
    derived = [c for c in cols if c.startswith(("acc/J", "cost/1M"))]
    assert all(c.endswith("(est.)") for c in derived)  # derived from an estimate: marked too
    assert "dominated: smollm2-135m Q8_0 t2 by smollm2-135m Q4_1 t2" in text
    board.scores[0].config.energy_measured = True  # mixed: every estimated cell carries its own mark
    mixed = render(lambda c: print_scoreboard(board, c), width)
    body = table_lines(mixed, "configuration")
    assert "(est.)" not in body[0] and all("(est.)" in line for line in body[1:])


@pytest.mark.parametrize("width", WIDTHS)
def test_compare_table_fits(width):
    results = [Comparison(test, "smollm2-135m-instruct-q4_1", t, 100.0 + t, 104.4 + t, (104.4 + t) / (100.0 + t), 0.0123, True)
               for test in ("pp512", "tg128 @ d512") for t in (1, 2, 4)]
    text = render(lambda c: terminal.print_table(c, "B against A", terminal_views.compare_columns(results), results), width)
    assert_fits(text, width, len(results))
    assert "smollm2-135m" in text and "1.04x faster" in text and "1.044x" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_history_table_fits_with_long_commands(width):
    runs = [{"run_id": f"20261129-19000{i}-abcdef", "created": "2026-11-29T19:00:0{i}Z", "status": "complete", "rows": 12,
             "models": ["smollm2-135m-instruct-q4_1", "gemma-3-270m-it-q4_k_m"],
             "command": "profiler run smollm2-135m-instruct-q4_1 gemma-3-270m-it-q4_k_m -t 1,2 -p 512 -n 128 -r auto"}
            for i in range(3)]
    text = render(lambda c: terminal.print_table(c, "runs", terminal_views.history_columns(runs), runs), width)
    assert_fits(text, width, len(runs), "run id")
    assert "2026-11-29 19:00" in text and "complete" in text
    assert "smollm2-135m, gem" in text  # a list is cut at its end, never in the middle


def _profiler(*args, env_columns: int, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(env_columns)}
    return subprocess.run([sys.executable, "-m", "profiler", *map(str, args)], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=120)


def test_show_history_and_compare_commands_fit_the_columns_they_are_given(tmp_path):
    db = tmp_path / "profiler.db"
    run = sweep_run()
    store = Store(db)
    for run_id in ("r1", "r2"):
        run.run_id = run_id
        store.begin_run(run, {})
        for i, row in enumerate(run.rows):
            store.add_row(run_id, f"k{i}", row)
        store.update_run(run, "complete")
    store.close()
    (tmp_path / "a.json").write_text(json.dumps(sweep_run().to_dict()))
    (tmp_path / "b.json").write_text(json.dumps(sweep_run().to_dict()))
    for width in WIDTHS:
        for args, n_rows, first in ((["show", "r1"], len(run.rows), "model"), (["history"], 2, "run id"),
                                    (["compare", "a.json", "b.json"], len(run.rows), "model")):
            done = _profiler(*args, "--db", db, env_columns=width, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            assert_fits(done.stdout, width, n_rows, first)
        wide = _profiler("show", "r1", "--wide", "--db", db, env_columns=width, cwd=tmp_path)
        assert len(table_lines(wide.stdout)) == len(run.rows) and "PSS" in wide.stdout


def test_score_command_fits_and_wide_shows_every_column(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps(sweep_run().to_dict()))
    (tmp_path / "models.toml").write_text("")  # no published scores: accuracy is n/a on every row
    for width in WIDTHS:
        done = _profiler("score", "--run", "a.json", "--models-file", "models.toml", env_columns=width, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert_fits(done.stdout, width, 4, "configuration")
        assert "hellaswag %: no hellaswag score" in " ".join(done.stdout.split())  # dropped, with the reason
    wide = _profiler("score", "--run", "a.json", "--models-file", "models.toml", "--wide", env_columns=80, cwd=tmp_path)
    assert len(table_lines(wide.stdout, "configuration")) == 4 and "params" in wide.stdout
    assert "more column(s)" not in wide.stdout


def test_run_prints_fitted_tables_and_wide_shows_every_column(tiny_gguf, tmp_path):
    """The real command, on a tiny model: the results table and the scoreboard fit 80 columns."""
    args = ["run", tiny_gguf, "-p", "16", "-n", "4", "-r", "2", "--no-bandwidth", "--idle", "0", "--score-tasks", "0",
            "--reports-dir", tmp_path / "reports"]
    done = _profiler(*args, env_columns=80, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert_fits(done.stdout, 80, 2)
    assert_fits(done.stdout, 80, 1, "configuration")
    assert "tiny" in done.stdout and " on " in done.stdout and "t/s generation" in done.stdout  # the closing line
    wide = _profiler(*args, "--wide", env_columns=80, cwd=tmp_path)
    assert wide.returncode == 0, wide.stderr
    assert len(table_lines(wide.stdout)) == 2 and "PSS" in wide.stdout and "load" in wide.stdout
    assert "more column(s)" not in wide.stdout


def test_the_scoreboard_states_its_reference_test():
    """Issue #19.8: the printed scoreboard and the HTML report say which test decode t/s and J/token are from."""
    from profiler.analysis import scoring, scoring_io
    from profiler.report.html import render_html

    run = sweep_run()
    board = scoring_io.board(scoring.configurations(run.rows, run.run_id), "hellaswag")
    assert board.reference_test == "tg128"
    text = render(lambda c: print_scoreboard(board, c), 200)
    assert "reference test tg128: decode t/s and J/token come from this test alone" in " ".join(text.split())
    assert "reference test tg128: decode t/s and J/token come from this test alone" in render_html(run, board)


def test_per_joule_columns_mark_each_estimated_cell_when_the_board_mixes():
    """Issue #19.11: a scoreboard with measured and estimated energy marks each estimated per-joule
    figure (acc/J·1k, cost/1M tok) with (est.), as J/1k tok does, and leaves the measured one bare."""
    board = three_config_scoreboard()
    board.scores[0].config.energy_measured = True  # the Q4_1 measured, the other two estimated
    header, body = table_body(render(lambda c: print_scoreboard(board, c, wide=True), 250), "configuration")
    assert "(est.)" not in " ".join(header)
    cells = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[1:-1]] for line in body}
    titles = [c.strip() for c in header[0].split("│")[1:-1]]
    acc, cost = titles.index("acc/J·1k"), titles.index("cost/1M tok")
    assert cells["smollm2-135m Q4_1 t2"][acc] == "0.407" and cells["smollm2-135m Q4_1 t2"][cost] == "0.00792"
    assert cells["smollm2-135m Q8_0 t2"][acc] == "0.323 (est.)" and cells["gemma-3-270m Q4_K_M t2"][cost] == "0.0158 (est.)"
