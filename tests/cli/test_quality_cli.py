"""The eval / score / quantize commands end to end on tiny models (subprocesses, isolated dirs)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from support.tinymodel import WORDS


def _profiler(env_dir, *args, check=True):
    env = {**os.environ, "PROFILER_CACHE": str(env_dir / "cache"), "PROFILER_REPORTS": str(env_dir / "reports")}
    done = subprocess.run([sys.executable, "-m", "profiler", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=env_dir)
    if check and done.returncode != 0:
        raise AssertionError(f"exit {done.returncode}: {done.stderr}")
    return done


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(5)
    (d / "text.txt").write_text(" ".join(rng.choice(WORDS, 1200)) + "\n")
    lines = []
    for _ in range(8):
        lines += ["Topic: " + " ".join(rng.choice(WORDS, 6)), str(rng.integers(0, 4))]
        lines += [" ".join(rng.choice(WORDS, 3)) + "." for _ in range(4)]
    (d / "hs.txt").write_text("\n".join(lines) + "\n")
    return d


def test_eval_reference_kld_and_hellaswag(workdir, tiny_gguf, tiny_gguf_tied):
    ref = workdir / "ref.npz"
    done = _profiler(workdir, "eval", tiny_gguf, "-f", workdir / "text.txt", "-c", 64, "--chunks", 4,
                     "--save-reference", ref, "--json")
    first = json.loads(done.stdout)
    assert first["perplexity"]["n_chunks"] == 4 and first["perplexity"]["ppl"] > 1
    assert first["reference_saved"] == str(ref) and ref.exists()
    assert (workdir / "reports" / first["run_id"] / "quality.json").exists()
    assert (workdir / "reports" / first["run_id"] / "quality-samples.npz").exists()

    done = _profiler(workdir, "eval", tiny_gguf_tied, "--kld", ref, "--json")
    second = json.loads(done.stdout)
    assert second["kld"]["n_tokens"] == 4 * 31 and second["kld"]["mean_kld"] > 0
    assert second["kld"]["reference"]["sha256"] == first["model"]["sha256"]
    assert second["perplexity"]["ppl"] == pytest.approx(second["kld"]["ppl_q"], rel=1e-6)
    # the KLD line says what it is comparable with (issue #19.7): reference file, text, context, chunks
    done = _profiler(workdir, "eval", tiny_gguf_tied, "--kld", ref, "--chunks", 2, "--json")
    assert json.loads(done.stdout)["kld"]["n_chunks"] == 2
    stored = [json.loads(x) for x in (workdir / "cache" / "quality" / "measurements.jsonl").read_text().splitlines()]
    kld_lines = [x for x in stored if x["metric"] == "kld"]
    assert kld_lines[-2]["reference_file_sha256"] == hashlib.sha256(ref.read_bytes()).hexdigest()
    assert kld_lines[-2]["data_sha256"] == first["text"]["sha256"] and kld_lines[-2]["n_ctx"] == 64
    assert [x["n_chunks"] for x in kld_lines[-2:]] == [4, 2] and kld_lines[-1]["n_tokens"] == 2 * 31
    assert kld_lines[-2]["uncertainty_chunks"] > 0 and kld_lines[-2]["top_k"] == 128

    done = _profiler(workdir, "eval", tiny_gguf, "--hellaswag", workdir / "hs.txt", "--tasks", 5)
    assert "hellaswag:" in done.stdout and "/5 tasks" in done.stdout and "PPL" not in done.stdout
    lines = [json.loads(x) for x in (workdir / "cache" / "quality" / "measurements.jsonl").read_text().splitlines()]
    hs = [x for x in lines if x["metric"] == "hellaswag"]
    assert hs and hs[-1]["model_sha256"] == first["model"]["sha256"] and hs[-1]["n_tasks"] == 5
    # per-task outcomes for the paired test between files, in the subset's order
    assert len(hs[-1]["task_correct"]) == 5 and hs[-1]["task_correct"].count("1") == hs[-1]["n_correct"]
    assert hs[-1]["variant"] == "acc_norm_token" and hs[-1]["selection"].startswith("5 of 8")


def test_score_after_a_run_uses_the_measured_accuracy(workdir, tiny_gguf):
    _profiler(workdir, "eval", tiny_gguf, "--hellaswag", workdir / "hs.txt", "--tasks", 8)
    _profiler(workdir, "run", tiny_gguf, "-p", 16, "-n", 4, "-r", 1, "--no-bandwidth", "-o", "json")
    done = _profiler(workdir, "score", "--json", "--max-memory", "100GB", "--min-tps", "0.1")
    board = json.loads(done.stdout)
    s = board["scores"][0]
    assert s["accuracy"]["provenance"] == "measured" and s["accuracy"]["n_tasks"] == 8
    assert s["accuracy"]["inherited"] is False
    assert s["tokens_per_j"] is None or s["tokens_per_j"] > 0  # never a silent 0
    assert board["recommendation"]["best"] == s["configuration"]["key"]
    text = _profiler(workdir, "score", "--max-memory", "1KB").stdout
    assert "no recommendation" in text and "peak memory" in text


def test_user_errors_are_one_line(workdir, tiny_gguf):
    cases = [
        (["eval", workdir / "missing.gguf"], "error: model file not found"),
        (["eval", tiny_gguf, "-f", workdir / "text.txt", "-c", 4096], "error: the text has"),
        (["eval", tiny_gguf, "--kld", workdir / "nope.npz"], "error: KLD reference not found"),
        (["eval", tiny_gguf, "--hellaswag", workdir / "text.txt"], "error: HellaSwag file has"),
        (["score", "--run", "nope"], "error: no run 'nope'"),
        (["quantize", tiny_gguf, "--types", "q9_9"], "error: unknown quant type(s) q9_9"),
    ]
    for args, start in cases:
        done = _profiler(workdir, *args, check=False)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith(start) and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_run_ends_with_a_scoreboard_measured_on_the_file(tmp_path, tiny_gguf):
    (tmp_path / "text.txt").write_text("x")
    datasets = tmp_path / "cache" / "datasets"
    datasets.mkdir(parents=True)
    rng = np.random.default_rng(9)
    lines = []
    for _ in range(6):
        lines += ["Topic: " + " ".join(rng.choice(WORDS, 6)), "1"] + [" ".join(rng.choice(WORDS, 3)) for _ in range(4)]
    (datasets / "hellaswag_val_full.txt").write_text("\n".join(lines))  # stands in for a pulled copy
    done = _profiler(tmp_path, "run", tiny_gguf, "-p", 16, "-n", 4, "-r", 1, "--no-bandwidth", "--score-tasks", 4)
    out = done.stdout
    assert "measured 0-shot acc_norm per token, 4 tasks" in out  # the number's provenance and setting
    (s,) = json.loads(_profiler(tmp_path, "score", "--json").stdout)["scores"]  # the same board, as data
    a, c = s["accuracy"], s["configuration"]
    assert (a["provenance"], a["n_tasks"], a["inherited"]) == ("measured", 4, False)
    assert a["setting"].startswith("0-shot acc_norm per token, 4 of 6")
    assert f"{a['value_pct']:.1f}" in out
    if s["j_per_1k_tokens"] is None:  # energy is a number, or says why it is missing: never a silent blank or 0
        assert c["energy_note"].startswith("energy unavailable (") and "unavailable" in out
    else:
        assert s["j_per_1k_tokens"] > 0 and c["energy_note"].startswith(("measured", "ESTIMATED"))
        assert f"{s['j_per_1k_tokens']:.3g}" in out
    again = _profiler(tmp_path, "run", tiny_gguf, "-p", 16, "-n", 4, "-r", 1, "--no-bandwidth", "--score-tasks", 4)
    runs = list((tmp_path / "reports").glob("*/quality.json"))
    assert len(runs) == 1 and "measured 0-shot acc_norm per token, 4 tasks" in again.stdout  # measured once, then reused
    more = _profiler(tmp_path, "run", tiny_gguf, "-p", 16, "-n", 4, "-r", 1, "--no-bandwidth", "--score-tasks", 6)
    runs = list((tmp_path / "reports").glob("*/quality.json"))
    assert len(runs) == 2 and "measured 0-shot acc_norm per token, 6 tasks" in more.stdout  # fewer stored than asked


def test_run_without_task_data_says_where_accuracy_comes_from(tmp_path, tiny_gguf):
    done = _profiler(tmp_path, "run", tiny_gguf, "-p", 16, "-n", 4, "-r", 1, "--no-bandwidth")
    assert "HellaSwag data is not pulled" in done.stdout
    assert "no hellaswag score" in done.stdout


def test_an_unreadable_header_is_reported_not_taken_for_original_weights(workdir, tiny_gguf, monkeypatch):
    import errno

    from profiler.quality import evaluate as ev

    def failing_read(path):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setenv("PROFILER_CACHE", str(workdir / "cache"))
    monkeypatch.setattr(ev, "reconstructed_from", failing_read)
    result = ev.evaluate(str(tiny_gguf), ev.EvalOptions(text=str(workdir / "text.txt"), n_ctx=64, n_chunks=1, save=False))
    assert result.model.header_error == "OSError: [Errno 5] Input/output error"
    assert any("could not read tiny.gguf's GGUF header" in w and "Input/output error" in w for w in result.warnings)
    assert result.to_dict()["model"]["header_error"]  # kept in quality.json too
