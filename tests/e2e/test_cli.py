"""End-to-end `profiler run` / `profiler device` on a tiny model, and clean errors (exit 2)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

LLAMA_BENCH_FIELDS = [
    "build_commit", "cpu_info", "model_filename", "model_type", "model_size", "model_n_params", "n_batch",
    "n_ubatch", "n_threads", "type_k", "type_v", "flash_attn", "n_prompt", "n_gen", "n_depth", "test_time",
    "avg_ns", "stddev_ns", "avg_ts", "stddev_ts", "samples_ns", "samples_ts",
]
OUR_FIELDS = ["backend", "ttft_ms", "itl_ms_p50", "itl_ms_p90", "itl_ms_p99", "load_s", "peak_rss_bytes", "pss_bytes",
              "bw_fraction", "warnings", "kv_cache_bytes", "n_ctx", "file_size_bytes", "model_n_params"]


def profiler(*args: str, cwd: Path, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "profiler", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def json_run(tiny_gguf, tmp_path_factory):
    work = tmp_path_factory.mktemp("run")
    done = profiler("run", str(tiny_gguf), "-p", "32", "-n", "8", "-t", "1,2", "-r", "3", "-o", "json",
                    "--no-bandwidth", "--idle", "0", cwd=work, env_extra={"PROFILER_REPORTS": str(work / "reports")})
    assert done.returncode == 0, done.stderr
    return work, json.loads(done.stdout), done


def test_json_rows_have_llama_bench_fields_and_ours(json_run):
    _, rows, _ = json_run
    assert [(r["test"], r["n_threads"]) for r in rows] == [("pp32", 1), ("tg8", 1), ("pp32", 2), ("tg8", 2)]
    for row in rows:
        for name in LLAMA_BENCH_FIELDS + OUR_FIELDS:
            assert name in row, name
        assert len(row["samples_ns"]) == len(row["samples_ts"]) == 3
        assert row["avg_ns"] == pytest.approx(sum(row["samples_ns"]) / 3, abs=1)
        n_tokens = row["n_prompt"] + row["n_gen"]
        assert row["avg_ts"] == pytest.approx(sum(n_tokens * 1e9 / s for s in row["samples_ns"]) / 3)
        assert row["model_n_params"] == 122048 and row["backend"] == "llama.cpp"
        assert row["load_s"] > 0 and row["peak_rss_bytes"] > 0
        # TTFT needs a prompt: n/a (null, never 0) for a generation-only test
        assert row["ttft_ms"] > 0 if row["n_prompt"] else row["ttft_ms"] is None
    tg = rows[1]
    assert len(tg["itl_ms_samples"]) == 3 * 8
    assert tg["itl_ms_p50"] <= tg["itl_ms_p90"] <= tg["itl_ms_p99"]
    assert rows[0]["itl_ms_p50"] is None, "a prompt-only test has no inter-token latency: null, not 0"
    assert tg["bw_fraction"] is None, "no bandwidth probe: bw_fraction is null, never a made-up number"


def test_run_is_saved_atomically_under_reports(json_run):
    work, rows, _ = json_run
    runs = [p for p in (work / "reports").iterdir() if p.is_dir()]
    assert len(runs) == 1
    assert (work / "reports" / "profiler.db").exists()
    saved = json.loads((runs[0] / "results.json").read_text())
    assert saved["schema_version"] == 2 and saved["run_id"] == runs[0].name
    assert [r["avg_ns"] for r in saved["rows"]] == [r["avg_ns"] for r in rows]
    assert saved["device"]["logical_cores"] >= 1
    table = list(csv.DictReader(io.StringIO((runs[0] / "results.csv").read_text())))
    assert len(table) == 4 and table[0]["test"] == "pp32"
    md = (runs[0] / "results.md").read_text()
    assert md.startswith("| model |") and "tg8" in md
    assert not list(runs[0].glob(".*")), "no temp files left behind"


def test_stdout_holds_only_the_requested_format(json_run):
    _, _, done = json_run
    json.loads(done.stdout)  # nothing else mixed in


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "md"])
def test_other_output_formats(tiny_gguf, tmp_path, fmt):
    done = profiler("run", str(tiny_gguf), "-p", "16", "-n", "0", "-r", "1", "-o", fmt, "--no-bandwidth", "--idle", "0",
                    "--reports-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    if fmt == "jsonl":
        assert json.loads(done.stdout.splitlines()[0])["test"] == "pp16"
    elif fmt == "csv":
        assert next(csv.DictReader(io.StringIO(done.stdout)))["n_prompt"] == "16"
    else:
        assert "| pp16 |" in done.stdout.replace("  ", " ")


def test_human_output_shows_table_device_and_saved_path(tiny_gguf, tmp_path):
    done = profiler("run", "-m", str(tiny_gguf), "-p", "16", "-n", "4", "-d", "8", "-r", "2", "--idle", "0",
                    "--reports-dir", str(tmp_path / "r"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "pp16 @ d8" in out and "tg4 @ d8" in out
    assert "device:" in out
    assert "read bandwidth" in out and "(measured)" in out
    assert "saved to" in out


def test_device_command(tmp_path):
    done = profiler("device", "--json", "--no-bandwidth", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["logical_cores"] >= 1 and data["python"].count(".") == 2
    assert "llama_cpp_python" in data["runtime"]["llama.cpp"]
    done = profiler("device", cwd=tmp_path)
    assert done.returncode == 0 and "read bandwidth" in done.stdout and "GB/s" in done.stdout


def _assert_clean_error(done: subprocess.CompletedProcess, fragment: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def test_unknown_model_name(tmp_path):
    (tmp_path / "models.toml").write_text("[[models]]\nname='alpha'\nformat='gguf'\nsource='a.gguf'\n")
    _assert_clean_error(profiler("run", "alpah", cwd=tmp_path), "unknown model 'alpah' (did you mean 'alpha'?)")


def test_missing_model_file(tmp_path):
    _assert_clean_error(profiler("run", str(tmp_path / "gone.gguf"), cwd=tmp_path), "model file not found")


def test_not_a_gguf_file(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello, I am text")
    _assert_clean_error(profiler("run", str(bad), "--no-bandwidth", cwd=tmp_path), "is not a GGUF file")


def test_bad_catalogue(tmp_path):
    (tmp_path / "models.toml").write_text("[[models]]\nname='a'\nformat='gguf'\nsorce='a.gguf'\n")
    _assert_clean_error(profiler("run", cwd=tmp_path), "unknown key 'sorce' (did you mean 'source'?)")


def test_bad_sweep_value(tiny_gguf, tmp_path):
    _assert_clean_error(profiler("run", str(tiny_gguf), "-t", "0", cwd=tmp_path), "-t/--threads value 0 is invalid")
    _assert_clean_error(profiler("run", str(tiny_gguf), "-p", "abc", cwd=tmp_path), "-p: 'abc' is not an integer")


def test_unknown_option_is_exit_2(tmp_path):
    done = profiler("run", "--frobnicate", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "No such option" in done.stderr


def test_paths_with_shell_metacharacters_are_just_paths(tiny_gguf, tmp_path):
    odd = tmp_path / "m $(touch PWNED); touch PWNED2 `id`.gguf"
    odd.write_bytes(tiny_gguf.read_bytes())
    done = profiler("run", str(odd), "-p", "8", "-n", "0", "-r", "1", "--idle", "0", "--no-bandwidth", "-o", "json",
                    cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["model_filename"] == str(odd)
    assert not list(tmp_path.glob("PWNED*"))
