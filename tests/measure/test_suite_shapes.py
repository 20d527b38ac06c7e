"""Suites people already know (profiler/measure/suites): their shapes as the sources give them,
their formulas on worked examples, and how --suite composes with the sweep."""

from __future__ import annotations

import math

import pytest

from profiler.errors import UserError
from profiler.measure import suites
from profiler.measure.plan import Sweep, expand
from profiler.measure.suites import ShapeSamples, localscore, mlperf_client


def test_localscore_runs_the_nine_shapes_of_its_source():
    # llamafile localscore/localscore.cpp, get_baseline_test_configs
    assert [(s.n_prompt, s.n_gen) for s in localscore.SHAPES] == [
        (1024, 16), (4096, 256), (2048, 256), (2048, 768), (1024, 1024), (1280, 3072), (384, 1152), (64, 1024), (16, 1536)]


def test_localscore_formula_on_a_worked_example():
    # README's scale: 1000 t/s prompt, 100 t/s generation, 100 ms TTFT -> 10 x cbrt(1000 x 100 x 10) = 1000
    assert localscore.localscore(1000.0, 100.0, 100.0) == pytest.approx(1000.0)


def _localscore_like_their_summary(results: list[dict]) -> float:
    """getResultsSummary (localscore.cpp): arithmetic means over the tests, then 10 x cbrt(pp x tg x 1000 / ttft)."""
    pp = sum(r["prompt_tps"] for r in results) / len(results)
    tg = sum(r["gen_tps"] for r in results) / len(results)
    ttft = sum(r["ttft_ms"] for r in results) / len(results)
    return pow(pp * tg * (1000 / ttft), 1.0 / 3.0) * 10


def _samples(shapes, prompt_tps, itl_ms, reps=3, jitter=0.0):
    out = []
    for i, s in enumerate(shapes):
        scale = [1 + jitter * (r - 1) * (1 + i % 3) for r in range(reps)]
        out.append(ShapeSamples(s.n_prompt, s.n_gen, [s.n_prompt / prompt_tps * 1000 * f for f in scale],
                                [[itl_ms * f] * s.n_gen for f in scale]))
    return out


def test_localscore_score_matches_their_summary_of_the_same_tests():
    result = localscore.score(_samples(localscore.SHAPES, 2048.0, 10.0))
    # every test: prompt 2048 t/s, generation 100 t/s, TTFT = prompt time + the first decode (10 ms)
    theirs = [{"prompt_tps": 2048.0, "gen_tps": 100.0, "ttft_ms": s.n_prompt / 2.048 + 10} for s in localscore.SHAPES]
    score, prompt, gen, ttft = result.headline
    assert score.value == pytest.approx(_localscore_like_their_summary(theirs))
    assert score.value == pytest.approx(10 * (2048 * 100 * 1000 / (11984 / 9 / 2.048 + 10)) ** (1 / 3))
    assert (prompt.value, gen.value) == (pytest.approx(2048.0), pytest.approx(100.0))
    assert ttft.value == pytest.approx(11984 / 9 / 2.048 + 10)


def test_localscore_intervals_hold_the_score_and_say_why_when_missing():
    score = localscore.score(_samples(localscore.SHAPES, 2048.0, 10.0, reps=5, jitter=0.02)).headline[0]
    assert score.low < score.value < score.high
    assert score.high / score.low < 1.1
    one = localscore.score(_samples(localscore.SHAPES, 2048.0, 10.0, reps=1)).headline[0]
    assert one.interval is None and "one repetition" in one.unavailable


def test_mlperf_client_shapes_come_from_its_prompt_budgets():
    # v1.5 data/llama3/prompts: input = max_total_length - max_length, output = max_length (tg = output - 1)
    assert [(s.label, s.n_prompt, s.n_gen) for s in mlperf_client.SHAPES] == [
        ("Content Generation", 192, 255), ("Creative Writing", 512, 511), ("Summarization, Light", 896, 127),
        ("Summarization, Moderate", 1472, 255), ("Code Analysis", 2208, 127)]


def test_mlperf_client_tps_counts_the_tokens_after_the_first_and_takes_geometric_means():
    samples = []
    for i, s in enumerate(mlperf_client.SHAPES):
        itl = 10.0 * (i + 1)  # 100, 50, 33.3, 25, 20 t/s
        samples.append(ShapeSamples(s.n_prompt, s.n_gen, [200.0 * (i + 1)] * 2, [[itl] * s.n_gen] * 2))
    result = mlperf_client.score(samples)
    ttft, tps = result.headline
    assert [c["tps"].value for c in result.per_shape] == pytest.approx([100.0, 50.0, 100 / 3, 25.0, 20.0])
    assert tps.value == pytest.approx(math.prod([100.0, 50.0, 100 / 3, 25.0, 20.0]) ** (1 / 5))
    assert ttft.unit == "s" and ttft.value == pytest.approx(0.2 * math.prod(range(1, 6)) ** (1 / 5))
    assert "not an MLPerf result" in result.notes[0]


def test_a_suite_replaces_the_shapes_and_keeps_the_rest_of_the_sweep():
    sweep = suites.apply(Sweep(n_threads=[1, 2], repetitions="auto"), "localscore")
    assert sweep.random_tokens and sweep.repetitions == "auto" and sweep.n_threads == [1, 2]
    tests = expand(sweep, default_threads=2)
    assert len(tests) == 18 and {t.name for t in tests} == {s.test for s in localscore.SHAPES}
    with pytest.raises(UserError, match="unknown"):
        suites.apply(Sweep(), "geekbench")
