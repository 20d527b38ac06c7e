"""`profiler density` end to end on a saved run: table, --json, the run's store, the HTML section,
release dates in the catalogue, and one-line errors (exit 2)."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys

import pytest

from profiler.results.schema import RunResult
from support.tests_support import make_row

CHANCE = 25.0
A, B = -13.0, 0.62
DATES = ["2023-01-01", "2023-07-02", "2024-01-01", "2024-07-01"]
ACTIVE = 100_000_000


def _acc(n: float) -> float:
    return CHANCE + (100 - CHANCE) / (1 + math.exp(-(A + B * math.log(n))))


def _months(date: str) -> float:
    return (dt.date.fromisoformat(date) - dt.date.fromisoformat(DATES[0])).days / (365.25 / 12)


FAMILIES = "".join(
    ["[[families]]\nname = \"syn\"\nmetric = \"hellaswag\"\nn_shot = 0\nvariant = \"acc_norm\"\n"]
    + [f"[[families.points]]\nmodel = \"ref{n}\"\nparams = {n}\nvalue = {_acc(n)!r}\nsource = \"test card\"\n"
       for n in (100_000_000, 300_000_000, 1_000_000_000)]
    + ["[[families]]\nname = \"two\"\nmetric = \"hellaswag\"\nn_shot = 0\n"]
    + [f"[[families.points]]\nmodel = \"t{n}\"\nparams = {n}\nvalue = {_acc(n)!r}\nsource = \"card\"\n"
       for n in (100_000_000, 300_000_000)]
)


def _catalog(dated: bool = True) -> str:
    out = []
    for i, date in enumerate(DATES):
        # rho doubles every 6 months: each model scores like a reference model 2^(months/6) times its size
        value = _acc(ACTIVE * 2 ** (_months(date) / 6))
        released = f"released = {date}\n" if dated or i != 1 else ""
        out.append(f"[[models]]\nname = \"m{i}\"\nformat = \"gguf\"\nsource = \"m{i}.gguf\"\nparams = {ACTIVE}\n{released}"
                   f"[[models.accuracy]]\nmetric = \"hellaswag\"\nvariant = \"acc_norm\"\nvalue = {value!r}\nn_shot = 0\n"
                   f"measured_on = \"this file\"\nsource = \"test\"\n")
    return "\n".join(out)


def _write_run(reports, run_id="20261129-000000-aaaa", threads=(2,)):
    rows = []
    for i, t in ((i, t) for i in range(len(DATES)) for t in threads):
        common = dict(model_name=f"m{i}", model_filename=f"/nonexistent/m{i}.gguf", model_n_params=4 * ACTIVE,
                      model_n_params_active=ACTIVE, peak_rss_bytes=(i + 1) * 10**8, n_threads=t)
        rows.append(make_row(test="pp64", **common))
        rows.append(make_row(test="tg32", n_prompt=0, n_gen=32, decode_ts=50.0, prefill_ts=None,
                             j_per_decode_token=0.01 * (i + 1), energy_measured=True, **common))
    run = RunResult(run_id=run_id, created="2026-11-29T00:00:00Z", command="profiler run", device={},
                    rows=rows)
    folder = reports / run.run_id
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(run.to_dict()))
    return run


def profiler(*args, cwd):
    import os

    env = dict(os.environ, PROFILER_REPORTS=str(cwd / "reports"), PROFILER_CACHE=str(cwd / "cache"))
    env.pop("PROFILER_DB", None)
    return subprocess.run([sys.executable, "-m", "profiler", *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=120)


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "fam.toml").write_text(FAMILIES)
    (tmp_path / "models.toml").write_text(_catalog())
    _write_run(tmp_path / "reports")
    return tmp_path


def test_density_json_recovers_rho_and_the_doubling_time(workspace):
    done = profiler("density", "--families", "fam.toml", "--family", "syn", "--json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    rows = {r["model_name"]: r for r in data["configurations"]}
    for i, date in enumerate(DATES):
        r = rows[f"m{i}"]
        assert (r["n_params_total"], r["n_params_active"]) == (4 * ACTIVE, ACTIVE)
        assert r["rho"] == pytest.approx(2 ** (_months(date) / 6), rel=1e-6)
        assert r["released"] == date
    assert data["trend"]["doubling_months"] == pytest.approx(6.0, rel=1e-6)
    assert any("3.3 months): faster" in c for c in data["trend"]["comparisons"])
    # the run's folder and the results database carry the same report
    saved = json.loads((workspace / "reports" / "20261129-000000-aaaa" / "density.json").read_text())
    assert saved["trend"]["doubling_months"] == pytest.approx(6.0, rel=1e-6)
    from profiler.results.store import Store

    store = Store(workspace / "reports" / "profiler.db")
    assert store.density("20261129-000000-aaaa")["family"]["name"] == "syn"
    store.close()


def test_the_trend_counts_each_model_once_over_thread_counts_and_repeated_runs(workspace):
    """Issue #19.2: a second run of the same four models at two thread counts adds 8 configurations
    (12 in all) but no model: the trend fits 4 points (2 degrees of freedom), and says so."""
    _write_run(workspace / "reports", "20261130-000000-bbbb", threads=(1, 4))
    done = profiler("density", "--families", "fam.toml", "--family", "syn", "--run", "20261129-000000-aaaa",
                    "--run", "20261130-000000-bbbb", "--json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert len([r for r in data["configurations"] if r["rho"]]) == 12
    assert (data["trend"]["n_points"], data["trend"]["n_configurations"]) == (4, 12)
    assert "one point per model" in data["trend"]["method"]
    assert data["trend_note"].startswith("fitted over 4 independent points, one per model (2 degree(s) of freedom); "
                                         "12 configurations")
    done = profiler("density", "--families", "fam.toml", "--family", "syn", "--run", "20261129-000000-aaaa",
                    "--run", "20261130-000000-bbbb", cwd=workspace)
    assert "trend (4 models, one point each): ρ doubles every 6.0 months" in done.stdout


def test_density_table_and_cost_side(workspace):
    done = profiler("density", "--families", "fam.toml", "--family", "syn", cwd=workspace)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "ρ doubles every 6.0 months" in out
    assert "per effective billion parameters" in out and "J/token" in out
    assert "m0 t2: per effective billion parameters 0.1 J/token, 1 GB peak" in out  # N̂ = 100M: 0.01 / 0.1


def test_a_task_subset_score_is_not_placed_on_the_full_benchmark_family(workspace):
    """m0 has only an lm-eval score over 400 documents (--limit): the family was fitted to full-benchmark
    numbers, so m0 gets no ρ and the table says why."""
    catalog = _catalog()
    first = catalog.index("[[models.accuracy]]")
    (workspace / "models.toml").write_text(catalog[:first] + catalog[catalog.index("[[models]]", first):])
    (workspace / "lm.json").write_text(json.dumps({
        "results": {"hellaswag": {"acc_norm,none": _acc(ACTIVE) / 100}}, "n-shot": {"hellaswag": 0},
        "config": {"model_args": "pretrained=/nonexistent/m0.gguf", "limit": 400},
        "n-samples": {"hellaswag": {"original": 10042, "effective": 400}}}))
    done = profiler("density", "--families", "fam.toml", "--family", "syn", "--lm-eval", "m0=lm.json", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert "m0 t2: not placed on syn: its accuracy is over a task subset (first 400 documents" in done.stdout
    done = profiler("density", "--families", "fam.toml", "--family", "syn", "--lm-eval", "m0=lm.json", "--json",
                    cwd=workspace)
    m0 = {r["model_name"]: r for r in json.loads(done.stdout)["configurations"]}["m0"]
    assert m0["accuracy"]["provenance"] == "lm-eval" and m0["rho"] is None


def test_missing_release_date_is_one_line(workspace):
    (workspace / "models.toml").write_text(_catalog(dated=False))
    done = profiler("density", "--families", "fam.toml", "--family", "syn", cwd=workspace)
    assert done.returncode == 0, done.stderr
    assert "left out (no release date): m1 t2" in done.stdout  # three dates remain: the trend still fits


def test_bad_family_exits_2_with_one_line(workspace):
    done = profiler("density", "--families", "fam.toml", "--family", "two", cwd=workspace)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "has 2 size(s); the fit needs at least 3" in done.stderr


def test_bad_release_date_in_the_catalogue(workspace):
    (workspace / "models.toml").write_text(_catalog().replace("released = 2023-01-01", 'released = "2023-13-01"'))
    done = profiler("density", "--families", "fam.toml", "--family", "syn", cwd=workspace)
    assert done.returncode == 2
    assert "released '2023-13-01' is not a date like 2024-11-01" in done.stderr


def test_html_section_draws_the_trend_and_both_reference_doublings(workspace):
    done = profiler("density", "--families", "fam.toml", "--family", "syn", "--json", cwd=workspace)
    from profiler.report.html_density import render

    page = render(json.loads(done.stdout))
    assert "<h2>Knowledge density</h2>" in page
    assert page.count("<circle") == len(DATES)
    assert "<polyline" in page and "<polygon" in page  # fitted line and its band
    assert "doubling every 8 months" in page and "doubling every 3.3 months" in page
    assert "ρ doubles every 6.0 months" in page


def test_html_section_without_dates_says_why():
    from profiler.report.html_density import plot_trend

    svg = plot_trend({"configurations": [{"key": "a", "rho": 1.0, "released": None}], "trend": None})
    assert "no configuration has both ρ and a release date" in svg


def test_shipped_family_on_the_default_catalogue(isolated_env):
    from pathlib import Path

    catalog = Path(__file__).parents[2] / "models.toml"
    done = profiler("density", "--catalog", "--models-file", str(catalog), "--json", cwd=isolated_env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    rows = {r["model_name"]: r for r in data["configurations"]}
    smol = rows["smollm2-135m-instruct-q4_1"]
    assert smol["accuracy"]["value_pct"] == 42.1 and smol["rho"] == pytest.approx(0.886, abs=0.01)
    gemma = rows["gemma-3-270m-q4_k_m"]
    assert gemma["rho"] is None and any("settings are never mixed" in n for n in gemma["notes"])
    done = profiler("density", "--catalog", "--models-file", str(catalog), "--family", "gemma3-hellaswag", "--json",
                    cwd=isolated_env)
    gemma = {r["model_name"]: r for r in json.loads(done.stdout)["configurations"]}["gemma-3-270m-q4_k_m"]
    assert gemma["rho"] == pytest.approx(0.9, abs=0.02)


def test_html_report_of_a_stored_run_has_the_stored_density(workspace):
    """profiler report RUN --html draws the density report stored for that run by profiler density."""
    from profiler.results.schema import load_run
    from profiler.results.store import Store

    run = load_run(workspace / "reports" / "20261129-000000-aaaa" / "results.json")
    store = Store(workspace / "reports" / "profiler.db")
    store.begin_run(run, {})
    for i, row in enumerate(run.rows):
        store.add_row(run.run_id, f"k{i}", row)
    store.update_run(run, "complete")
    store.close()
    assert profiler("density", "--families", "fam.toml", "--family", "syn", cwd=workspace).returncode == 0
    done = profiler("report", run.run_id, "--html", "page.html", cwd=workspace)
    assert done.returncode == 0, done.stderr
    page = (workspace / "page.html").read_text()
    assert "<h2>Knowledge density</h2>" in page and "Reference family <b>syn</b>" in page
    assert "ρ doubles every 6.0 months" in page


def test_html_plot_of_two_close_dates_gets_month_ticks_and_one_date_a_sentence():
    from profiler.report.html_density import plot_trend

    points = [{"key": "smollm2", "rho": 0.89, "rho_ci95": None, "released": "2024-11-01"},
              {"key": "gemma", "rho": 0.9, "rho_ci95": None, "released": "2024-12-15"}]
    svg = plot_trend({"configurations": points, "trend": None})
    assert ">2024-10<" in svg and ">2024-11<" in svg and ">2024-12<" in svg and ">2025-01<" in svg
    assert "doubling every 8 months" in svg and "fitted trend" not in svg  # no trend line without a trend
    one = plot_trend({"configurations": points[:1], "trend": None})  # nothing to compare (issue 14.2)
    assert "<svg" not in one and "nothing to compare over time" in one
