"""profile() orchestration: failures are recorded per model, results saved after each test."""

from __future__ import annotations

import json

import pytest

from profiler import api
from profiler.backends.llama_cpp import LlamaCppBackend
from profiler.errors import UserError
from profiler.measure.plan import Sweep
from profiler.measure.session import EnergyOptions
from profiler.run import model_sweep
from profiler.run.options import Callbacks, RunOptions

NO_IDLE = EnergyOptions(idle_s=0)  # the idle-baseline window is tested in test_energy_e2e


class BreaksOnThirdDecode(LlamaCppBackend):
    decodes = 0

    def decode_one(self, token):
        BreaksOnThirdDecode.decodes += 1
        if BreaksOnThirdDecode.decodes == 3:
            raise RuntimeError("llama_decode failed with status -3")
        super().decode_one(token)


def test_runtime_failure_ends_only_that_models_run(tiny_gguf, tiny_gguf_tied, tmp_path, monkeypatch):
    monkeypatch.setattr(model_sweep, "create_backend", lambda name, verbose, onnx_options: BreaksOnThirdDecode())
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=False, energy=NO_IDLE, isolate=False)
    run = api.profile([str(tiny_gguf), str(tiny_gguf_tied)], Sweep(n_prompt=[8], n_gen=[4], repetitions=1), options)
    assert run.failures == [{"model": "tiny.gguf", "test": "tg4", "error": "RuntimeError: llama_decode failed with status -3"}]
    assert [(r.model_name, r.test) for r in run.rows] == [("tiny.gguf", "pp8"), ("tiny-tied.gguf", "pp8"), ("tiny-tied.gguf", "tg4")]
    saved = json.loads((tmp_path / run.run_id / "results.json").read_text())
    assert saved["failures"] == run.failures and len(saved["rows"]) == 3
    assert "Failed:" in (tmp_path / run.run_id / "results.md").read_text()


def test_bad_second_model_stops_before_anything_runs(tiny_gguf, tmp_path):
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=False, energy=NO_IDLE, isolate=False)
    with pytest.raises(UserError, match="model file not found"):
        api.profile([str(tiny_gguf), str(tmp_path / "missing.gguf")], Sweep(repetitions=1), options)
    assert not list(tmp_path.iterdir()), "nothing written half-way"


def test_results_are_rewritten_after_every_test(tiny_gguf, tmp_path):
    seen = []

    def on_row(row):
        saved = json.loads(next(tmp_path.glob("*/results.json")).read_text())
        seen.append(len(saved["rows"]))

    callbacks = Callbacks(row_done=on_row)
    options = RunOptions(reports_dir=tmp_path, bandwidth_probe=False, energy=NO_IDLE, isolate=False)
    api.profile([str(tiny_gguf)], Sweep(n_prompt=[8, 16], n_gen=[2], repetitions=1), options, callbacks)
    assert seen == [1, 2, 3]


def test_every_command_is_callable_from_python(tiny_gguf, tmp_path, isolated_env):
    """profile, compare, score and evaluate answer from Python what the CLI prints."""
    from profiler.quality.evaluate import EvalOptions
    from profiler.results.store import Store

    options = RunOptions(reports_dir=tmp_path / "reports", isolate=False, bandwidth_probe=False,
                         energy=EnergyOptions(idle_s=0.0))
    sweep = Sweep(n_prompt=[16], n_gen=[4], repetitions=2, n_threads=[1])
    first, second = (api.profile([str(tiny_gguf)], sweep, options) for _ in range(2))
    compared = api.compare(first.run_id, second.run_id, Store(options.db_path))
    assert sorted(c.test for c in compared) == ["pp16", "tg4"]
    assert all(c.speedup > 0 for c in compared)

    board = api.score([second.run_id], options.reports_dir)
    assert [s.config.model_name for s in board.scores] == ["tiny.gguf"]
    tg = next(r for r in second.rows if r.n_gen)
    assert board.scores[0].config.decode_tps == pytest.approx(tg.decode_ts)

    result = api.evaluate(str(tiny_gguf), EvalOptions(n_ctx=64, n_chunks=2, threads=1, save=False))
    assert result.perplexity is not None and result.perplexity.ppl > 1
