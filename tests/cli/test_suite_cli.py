"""profiler run --suite: the suite's shapes reach the sweep, its score is printed, and shapes of
one's own are refused with one line."""

from __future__ import annotations

from click.testing import CliRunner

from profiler import api
from profiler.cli.app import cli
from profiler.errors import UserError
from profiler.measure.suites import mlperf_client
from profiler.results.schema import RunResult
from support.tests_support import make_row


def _run_with(monkeypatch, tmp_path, args):
    seen = {}

    def fake_profile(names, sweep, options, callbacks, resume=None, answer=None):
        seen["sweep"] = sweep
        rows = [make_row(model_name="tiny", n_prompt=s.n_prompt, n_gen=s.n_gen, test=s.test, random_tokens=True,
                         ttft_ms_samples=[100.0, 104.0], itl_ms_samples=[10.0] * s.n_gen + [10.4] * s.n_gen)
                for s in mlperf_client.SHAPES]
        return RunResult("r1", "2026-12-03T17:00:00Z", "profiler run", {}, rows)

    monkeypatch.setattr(api, "profile", fake_profile)
    result = CliRunner().invoke(cli, ["run", "tiny", "--no-score", "--reports-dir", str(tmp_path), *args])
    return result, seen


def test_suite_sets_the_shapes_and_prints_its_score(monkeypatch, tmp_path):
    result, seen = _run_with(monkeypatch, tmp_path, ["--suite", "mlperf-client", "-t", "1"])
    assert result.exit_code == 0, result.output
    assert seen["sweep"].prompt_gen == [(s.n_prompt, s.n_gen) for s in mlperf_client.SHAPES]
    assert seen["sweep"].n_threads == [1] and seen["sweep"].random_tokens
    assert "TPS, geometric mean" in result.output and "not an MLPerf result" in result.output


def test_suite_with_shapes_of_ones_own_is_refused(monkeypatch, tmp_path):
    result, _ = _run_with(monkeypatch, tmp_path, ["--suite", "localscore", "-p", "512"])
    assert isinstance(result.exception, UserError) and "drop -p/-n/-pg" in str(result.exception)
