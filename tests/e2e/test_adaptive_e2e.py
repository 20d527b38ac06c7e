"""-r auto end to end on real runtimes: llama.cpp (CLI, child process) and both ONNX backends,
every test type (pp, tg, pg, depth), the table's mark for a missed target, and resume.

Targets are loose (50%) so tiny models reach them in any machine state: such a row must stop on
its target, after at least the target's minimum of repetitions, and its ci95_rel must equal the
interval recomputed here from its samples with a t table typed in from a textbook and the AR(1)
adjustment's formulas written out (not the product's own function). Nothing depends on how fast
the machine is.
"""

from __future__ import annotations

import json
import math
import sqlite3
import statistics
import subprocess
import sys

import pytest

from profiler import api
from profiler.measure import adaptive
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.run.options import RunOptions

# Student's t, 97.5% quantiles for 1..30 degrees of freedom (any statistics textbook's table)
T975 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
        2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042]


def t975(df: int) -> float:
    # beyond the table, the Cornish-Fisher expansion of t about z (within 1e-4 from 30 on)
    z = 1.959964
    return T975[df - 1] if df <= 30 else z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)


def textbook_ci95_rel(samples: list[float]) -> float:
    """Student's t below 8 samples; from 8, the AR(1)-adjusted interval of docs/repetitions.md,
    written out here from its formulas: lag-1 autocorrelation r1, rho = (n r1 + 1) / (n - 3) + 0.6 / sqrt(n)
    clipped to [-0.5, 0.9], f = 1 + 2 sum (1 - k/n) rho^k, variance s^2 (n-1) f / (n (n-f)), df = n/f - 1."""
    n, m, s = len(samples), statistics.fmean(samples), statistics.stdev(samples)
    if n < 8:
        return t975(n - 1) * s / math.sqrt(n) / m
    d = [v - m for v in samples]
    r1 = sum(d[t] * d[t + 1] for t in range(n - 1)) / sum(v * v for v in d)
    rho = min(max((n * r1 + 1) / (n - 3) + 0.6 / math.sqrt(n), -0.5), 0.9)
    f = 1 + 2 * sum((1 - k / n) * rho**k for k in range(1, n))
    df = min(n - 1, max(1, round(n / f - 1)))
    return t975(df) * math.sqrt(s * s * (n - 1) * f / (n * max(n - f, 1))) / m


BASE = ["--no-bandwidth", "--idle", "0"]


def profiler_run(args: list[str], cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "profiler", "run", *args, *BASE], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**__import__("os").environ, "PROFILER_REPORTS": str(cwd / "r")})


def check_auto_rows(rows: list[dict], target: float) -> None:
    """A tiny model's t/s varies far less than 50%, so rows reach the target, and not before the
    target's earliest stop (16: the target must hold at n and on the first half of the samples; at
    n = 8 a 50% target needs only a CV below ~60%). On a machine kept busy (CI under load) a row's
    passes can drift steadily, and the trend check then stops it first, as designed: such a row must
    say so, and most rows must still stop on the target."""
    on_target = [r for r in rows if r["stop_reason"] == "target"]
    assert len(on_target) * 2 > len(rows), [(r["test"], r["stop_reason"], r["warnings"]) for r in rows]
    for row in rows:
        assert row["stop_reason"] in ("target", "trend"), (row["stop_reason"], row["warnings"])
        check_auto_row(row, target)


def check_auto_row(row: dict, target: float) -> None:
    assert row["ci_target_rel"] == pytest.approx(target)
    assert row["ci95_rel"] == pytest.approx(textbook_ci95_rel(row["samples_ts"]), rel=1e-3)
    if row["stop_reason"] == "trend":  # stopped before the target by a drift it names
        assert row["repetitions"] == len(row["samples_ts"]) >= 3
        assert any("Mann-Kendall" in w for w in row["warnings"]), row["warnings"]
    else:
        assert row["repetitions"] == len(row["samples_ts"]) >= adaptive.earliest_target_stop()
        assert row["ci95_method"] == "ar1-adjusted" and -0.5 <= row["ci95_rho_hat"] <= 0.9
        assert row["ci95_rel"] <= target
        assert not any("missed" in w for w in row["warnings"])
    assert row["warmup_passes"] >= 1
    if row["n_prompt"]:
        assert row["ttft_ms"] > 0 and len(row["ttft_ms_samples"]) == row["repetitions"]
    else:
        assert row["ttft_ms"] is None and row["ttft_ms_samples"] == []  # no prompt: n/a, never 0
    if row["n_gen"]:
        assert len(row["itl_ms_samples"]) == row["n_gen"] * row["repetitions"] and row["decode_ts"] > 0


def test_llama_cpp_every_test_type_in_a_child(tiny_gguf, tmp_path):
    done = profiler_run([str(tiny_gguf), "-p", "16", "-n", "8", "-pg", "16,8", "-d", "0,16", "-t", "1",
                         "-r", "auto", "--ci-target", "50%", "--max-time", "5", "-o", "json"], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["test"] for r in rows] == ["pp16", "pp16 @ d16", "tg8", "tg8 @ d16", "pp16+tg8", "pp16+tg8 @ d16"]
    check_auto_rows(rows, 0.5)


def test_table_marks_a_missed_target(tiny_gguf, tmp_path):
    # a target no machine reaches: the test stops on its cap (or a trend) and the table says so
    done = profiler_run([str(tiny_gguf), "-p", "16", "-n", "0", "-t", "1", "-r", "auto", "--ci-target", "0.00001%",
                         "--max-time", "1"], tmp_path)
    assert done.returncode == 0, done.stderr
    # the table's row (the warning for a missed target names pp16 and a ± too)
    (line,) = [ln for ln in done.stdout.splitlines() if "pp16" in ln and "±" in ln and "│" in ln]
    assert "*" in line
    assert adaptive.MARK_LEGEND in done.stdout
    assert "missed the 0.0% target" in done.stdout or "t/s fell" in done.stdout or "t/s rose" in done.stdout


def test_bad_repetition_options_are_one_line_errors(tiny_gguf, tmp_path):
    for args, text in [(["-r", "sometimes"], "-r/--repetitions 'sometimes' is invalid"),
                       (["-r", "auto", "--ci-target", "5"], "--ci-target 5 is ambiguous"),
                       (["-r", "auto", "--max-time", "0"], "--max-time 0 is invalid")]:
        done = profiler_run([str(tiny_gguf), *args], tmp_path)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [f"error: {done.stderr.split('error: ')[1].strip()}"]
        assert text in done.stderr


def test_onnx_backends_every_test_type(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxruntime_genai")
    from support.tinyonnx import write_genai, write_plain

    models = [str(write_genai(tmp_path / "genai")), str(write_plain(tmp_path / "plain"))]
    options = RunOptions(reports_dir=tmp_path / "r", bandwidth_probe=False, energy=EnergyOptions(idle_s=0),
                             isolate=False)
    sweep = Sweep(n_prompt=[8], n_gen=[4], prompt_gen=[(8, 4)], n_depth=[0, 4], n_threads=[1],
                  repetitions="auto", ci_target=0.5, max_time_s=5)
    run = api.profile(models, sweep, options)
    assert not run.failures
    assert {r.backend for r in run.rows} == {"onnxruntime-genai", "onnxruntime"}
    assert len(run.rows) == 2 * 6
    check_auto_rows([row.to_dict() for row in run.rows], 0.5)


def test_resume_keeps_the_auto_policy(tiny_gguf, tmp_path):
    # three tests, so that the majority check means something: under load the first test after the
    # model loads can ramp (seen: pp16 from 63k to 138k t/s over 10 repetitions) and stop on a trend,
    # which with two rows alone failed the majority 1 run in 3 under busy -d
    options = RunOptions(reports_dir=tmp_path / "r", bandwidth_probe=False, energy=EnergyOptions(idle_s=0))
    sweep = Sweep(n_prompt=[16], n_gen=[8], prompt_gen=[(16, 8)], n_threads=[1], repetitions="auto",
                  ci_target=0.5, max_time_s=5)
    run = api.profile([str(tiny_gguf)], sweep, options)  # each model in a child process
    assert [r.test for r in run.rows] == ["pp16", "tg8", "pp16+tg8"]
    with sqlite3.connect(options.db_path) as db:  # as if the run had been interrupted during pp16+tg8
        db.execute("DELETE FROM rows WHERE id = (SELECT max(id) FROM rows)")
        db.execute("UPDATE runs SET status = 'interrupted'")
    resumed = api.profile([], Sweep(), options, resume=run.run_id)
    assert [r.test for r in resumed.rows] == ["pp16", "tg8", "pp16+tg8"]
    check_auto_rows([row.to_dict() for row in resumed.rows], 0.5)
