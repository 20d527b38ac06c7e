"""Issue #19.7: two KLDs rank two files only when measured against the same reference file, on
the same text, context and chunks, each with a known standard error."""

from __future__ import annotations

import math

import numpy as np
import pytest

from profiler.analysis import ranking
from profiler.analysis.accuracy import AccuracyScore
from profiler.quality import kld as kld_mod
from profiler.quality.evaluate import EvalResult, ModelIdentity, store_entries

SETTING = {"reference_sha256": "f" * 64, "reference_file_sha256": "e" * 64, "data_sha256": "d" * 64,
           "n_ctx": 512, "n_chunks": 40, "top_k": 128, "tail_samples": 64, "n_vocab": 49152}


def _evidence(key: str, kld: dict) -> ranking.Evidence:
    """Two files of one model tied on 100 tasks (30% each, unpaired), with one KLD line each."""
    accuracy = AccuracyScore("hellaswag", 30.0, "measured", 0, "profiler eval", n_tasks=100)
    return ranking.Evidence(key, accuracy, [{"metric": "kld", **kld}], n_params=134_515_008)


def _verdict(x: dict, y: dict) -> ranking.Verdict:
    return ranking.compare(_evidence("a", x), _evidence("b", y), "hellaswag")


def test_kld_lines_on_one_setting_rank_the_files():
    v = _verdict({**SETTING, "value": 0.01, "uncertainty": 0.001}, {**SETTING, "value": 0.40, "uncertainty": 0.02})
    assert (v.sign, v.measure) == (1, "KLD")


@pytest.mark.parametrize(("key", "other", "label"), [
    ("reference_file_sha256", "9" * 64, "reference file"),  # the same model saved twice: another reference file
    ("data_sha256", "8" * 64, "text"),
    ("n_ctx", 256, "n_ctx"),
    ("n_chunks", 4, "chunks"),  # a candidate scored on a --chunks subset of the reference
])
def test_kld_lines_on_different_settings_are_not_compared(key, other, label):
    v = _verdict({**SETTING, "value": 0.01, "uncertainty": 0.001},
                 {**SETTING, key: other, "value": 0.40, "uncertainty": 0.02})
    assert (v.sign, v.measure) == (0, "")
    assert v.detail == f"KLD not compared: the KLDs differ in {label}"


def test_top_k_must_match_for_a_top_k_reference_only():
    x = {**SETTING, "value": 0.01, "uncertainty": 0.001}
    y = {**SETTING, "top_k": 64, "value": 0.40, "uncertainty": 0.02}
    assert _verdict(x, y).detail == "KLD not compared: the KLDs differ in top-k"
    exact = {"top_k": 49152, "n_vocab": 49152, "tail_samples": 64}  # full vocabulary: exact whatever k
    assert _verdict({**x, **exact}, {**y, **exact, "top_k": 60000}).measure == "KLD"


def test_old_kld_lines_without_their_setting_are_not_compared_and_say_why():
    old = {"reference_sha256": "f" * 64, "value": 0.01, "uncertainty": 0.001}  # before issue #19.7
    v = _verdict(old, {**SETTING, "value": 0.40, "uncertainty": 0.02})
    assert (v.sign, v.measure) == (0, "")
    assert "lacks its reference file, text, n_ctx, chunks" in v.detail and "re-run profiler eval --kld" in v.detail
    order = ranking.QualityOrder([_evidence("a", old), _evidence("b", {**SETTING, "value": 0.4, "uncertainty": 0.02})],
                                 "hellaswag")
    assert order.cmp("a", "b") == 0
    assert any("KLD not compared: a KLD line lacks" in note for note in order.notes)


@pytest.mark.parametrize("se", [0.0, math.nan, None])
def test_a_kld_without_a_standard_error_is_not_testable(se):
    # llama-perplexity prints SE 0 for <= 10 tokens: a z-test on 0 would rank on any difference
    v = _verdict({**SETTING, "value": 0.01, "uncertainty": se}, {**SETTING, "value": 0.40, "uncertainty": se})
    assert (v.sign, v.measure) == (0, "")
    assert "no standard error" in v.detail


def test_store_lines_carry_the_kld_setting():
    reference = {"sha256": "f" * 64, "file_sha256": "e" * 64, "text": {"sha256": "d" * 64}, "n_ctx": 512,
                 "n_chunks": 40, "top_k": 128, "tail_samples": 64, "n_vocab": 49152}
    rng = np.random.default_rng(0)
    chunks = [rng.gamma(0.5, 0.02, 255) for _ in range(8)]  # scored on --chunks 8 of the reference's 40
    token = np.concatenate(chunks)
    result = kld_mod.summarise(token, token * 0, token + 1, token + 1, token > 0, [float(c.mean()) for c in chunks])
    result.reference = reference
    ev = EvalResult(run_id="r", created="now", command="eval", model=_identity(), settings={}, kld=result)
    (line,) = [e for e in store_entries(ev) if e["metric"] == "kld"]
    assert {k: line[k] for k in SETTING} == {**SETTING, "n_chunks": 8}
    assert line["n_tokens"] == 8 * 255 and line["uncertainty_chunks"] > 0


def _identity() -> ModelIdentity:
    return ModelIdentity(name="q4", path="q4.gguf", sha256="a" * 64, quant="Q4_1", n_params=134_515_008,
                         size_bytes=1, description="")
